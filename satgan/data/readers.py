"""Read images and masks of any common format into one in-memory convention.

Images come back as ``(H, W, 3) uint8`` RGB; masks as ``(H, W) bool`` (True =
building). TIFFs are read with tifffile (LZW/Deflate need imagecodecs, a
requirement), everything else with Pillow. Oddities a user's folder may hold are
converted with a warning that names the file (RGBA, 16-bit, noisy JPEG masks); what
cannot be converted raises :class:`SatganError` naming the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from satgan import SatganError, SatganWarning

TIFF_SUFFIXES = {".tif", ".tiff"}
IMAGE_SUFFIXES = TIFF_SUFFIXES | {".png", ".jpg", ".jpeg", ".webp", ".bmp"}

# GeoTIFF tags: ModelPixelScale, ModelTiepoint, ModelTransformation, GeoKeyDirectory,
# GeoDoubleParams, GeoAsciiParams, GDAL metadata and nodata.
GEO_TAG_CODES = (33550, 33922, 34264, 34735, 34736, 34737, 42112, 42113)


# A mask is binary-like when at most 2% of its pixels are mid-grey (32-223): JPEG noise
# around 0/255 edges stays well below that, a photo or a probability map does not.
BINARY_MARGIN = 32
MAX_MIDDLE_FRACTION = 0.02


def _warn(message: str) -> None:
    warnings.warn(message, SatganWarning, stacklevel=3)


def _unreadable(path: Path, exc: Exception) -> SatganError:
    return SatganError(
        f"{path}: cannot be read ({type(exc).__name__}: {exc}); the file is truncated, corrupt or not an image"
    )


def memory_bytes() -> int:
    """This machine's memory in bytes (16 GiB where it cannot be read)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 16 << 30


def _check_fits(path: Path, shape: tuple[int, ...], itemsize: int) -> None:
    """Refuse, before allocating, an image whose header claims more bytes than a quarter of this
    machine's memory holds (a corrupt header, or a mosaic to cut up first)."""
    need = int(np.prod(shape, dtype=np.float64)) * itemsize
    if need > memory_bytes() // 4:
        size = "x".join(str(s) for s in shape[:2])
        raise SatganError(f"{path}: too large to hold in memory ({size} pixels, {need / 2**30:.1f} GiB by its "
                          "header); cut it into smaller files, or check that the file is not corrupt")


@contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """tifffile logs what it finds wrong with a file; satgan reports it once, itself."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def _read_array(path: Path) -> tuple[np.ndarray, bool]:
    """Decode ``path`` to an array; also say whether its values are palette indices."""
    if not path.is_file():
        raise SatganError(f"{path}: no such file")
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                palette = page.photometric == tifffile.PHOTOMETRIC.PALETTE
                _check_fits(path, page.shape, page.dtype.itemsize if page.dtype is not None else 1)
                arr = page.asarray()
                if page.planarconfig == tifffile.PLANARCONFIG.SEPARATE and arr.ndim == 3:
                    arr = np.moveaxis(arr, 0, -1)
            return arr, palette
        with Image.open(path) as img:
            _check_fits(path, (img.size[1], img.size[0], len(img.getbands())), 1)
            palette = img.mode in ("P", "PA")
            if palette:
                return np.asarray(img.getchannel(0) if img.mode == "PA" else img), True
            if img.mode == "1":
                return np.asarray(img.convert("L")), False
            if img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):  # 3-4 channels that are not RGB(A)
                return np.asarray(img.convert("RGB")), False
            return np.asarray(img), False
    except SatganError:
        raise
    except (MemoryError, Image.DecompressionBombError) as exc:
        raise SatganError(f"{path}: too large to hold in memory ({type(exc).__name__}); cut it into smaller files, "
                          "or check that the file is not corrupt") from None
    except Exception as exc:  # decoders raise many types; the user needs the file name
        raise _unreadable(path, exc) from exc


def _to_uint8(arr: np.ndarray, path: Path) -> np.ndarray:
    """Scale integer or float pixels of other depths to uint8."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        top = int(arr.max()) if arr.size else 0
        if top <= 255:
            return arr.astype(np.uint8)
        # Scale by the bit depth the data uses (e.g. 11-bit satellite data in uint16),
        # the same for every pixel, so the relative brightness of the scene is kept.
        bits = max(8, int(top).bit_length())
        _warn(f"{path}: {arr.dtype} pixels ({bits}-bit data) scaled to 8 bits")
        return (arr.astype(np.float32) * (255.0 / (2**bits - 1)) + 0.5).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        top = float(np.nanmax(arr)) if arr.size else 0.0
        scale = 255.0 if top <= 1.0 else 1.0
        _warn(f"{path}: float pixels scaled to 8 bits (x{scale:g}, clipped to 0-255)")
        return np.clip(np.nan_to_num(arr) * scale + 0.5, 0, 255).astype(np.uint8)
    raise SatganError(f"{path}: unsupported pixel type {arr.dtype}")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an RGB image as ``(H, W, 3) uint8``.

    Grey images are repeated to three channels; an alpha channel is dropped and
    16-bit or float data is scaled to 8 bits, each with a :class:`SatganWarning`.
    """
    path = Path(path)
    arr, palette = _read_array(path)
    if palette:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGB"))
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise SatganError(f"{path}: expected an RGB image, got an array of shape {arr.shape}")
    if arr.shape[2] == 4:
        _warn(f"{path}: 4-channel image, alpha channel dropped (RGBA to RGB)")
        arr = arr[:, :, :3]
    elif arr.shape[2] == 2:
        _warn(f"{path}: grey + alpha image, alpha channel dropped")
        arr = arr[:, :, :1]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(_to_uint8(arr, path))


def mask_from_array(arr: np.ndarray, path: str | os.PathLike, palette: bool = False,
                    strict: bool = False) -> np.ndarray:
    """Turn a decoded mask array into ``(H, W) bool`` (True = building).

    0/255, 0/1 and any other two-level mask with 0 as background map to ``> 0``;
    palette masks to index > 0; RGB masks use the brightest channel; masks with
    more levels (JPEG noise) are thresholded at half range, with a warning.
    ``strict`` (for generation, where a wrong input would silently give a wrong image):
    RGB masks must have equal channels and grey levels must be binary-like.
    """
    path = Path(path)
    if palette:
        if arr.ndim != 2:
            raise SatganError(f"{path}: palette mask with unexpected shape {arr.shape}")
        return arr > 0
    if arr.ndim == 3:
        if arr.shape[2] in (2, 4):  # drop alpha
            arr = arr[:, :, :-1]
        if strict and arr.shape[2] > 1 and not (arr == arr[:, :, :1]).all():
            raise SatganError(
                f"{path}: not a single-band mask ({arr.shape[2]} channels that differ); "
                "expected one band of 0 (background) and 255 or 1 (building)"
            )
        arr = arr.max(axis=2)
    if arr.ndim != 2:
        raise SatganError(f"{path}: expected a single-band mask, got an array of shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    arr = _to_uint8(arr, path) if arr.dtype != np.uint8 else arr
    lo, hi = int(arr.min()), int(arr.max())
    if lo == hi:
        if lo not in (0, 1, 255):
            raise SatganError(
                f"{path}: mask holds the single value {lo}; expected 0 (background) and 255 or 1 (building)"
            )
        return arr > 0
    building = arr > 0
    # Two levels with 0 as background (0/255, 0/1, 0/k): every non-zero pixel is the top level.
    if lo == 0 and np.count_nonzero(building) == np.count_nonzero(arr == hi):
        return building
    levels = np.flatnonzero(np.bincount(arr.ravel(), minlength=256))
    if strict and len(levels) == 2:  # two levels, neither 0: which one is background is a guess
        raise SatganError(f"{path}: mask levels {lo} and {hi}, no 0 background; expected 0 and 255 or 1")
    middle = np.count_nonzero((arr >= BINARY_MARGIN) & (arr <= 255 - BINARY_MARGIN)) / arr.size
    if strict and middle > MAX_MIDDLE_FRACTION:
        raise SatganError(
            f"{path}: not a binary-like mask ({middle:.0%} of its pixels are mid-grey, {len(levels)} grey "
            "levels); expected 0 (background) and 255 or 1 (building), is it a photo or a probability map?"
        )
    _warn(
        f"{path}: mask is not 0 plus one building level (it has {len(levels)} grey levels; "
        "JPEG noise?); thresholded at 128 (half range)"
    )
    return arr >= 128


def read_mask(path: str | os.PathLike, strict: bool = False) -> np.ndarray:
    """Read a building mask of any supported kind as ``(H, W) bool`` (``strict``: see
    :func:`mask_from_array`)."""
    arr, palette = _read_array(Path(path))
    return mask_from_array(arr, path, palette, strict)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header only."""
    path = Path(path)
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                return int(page.imagelength), int(page.imagewidth)
        with Image.open(path) as img:
            width, height = img.size
            return height, width
    except Exception as exc:
        raise _unreadable(path, exc) from exc


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (what a forge's or a synthesis's record says it was made from)."""
    digest = hashlib.sha256()
    with open(Path(path).expanduser(), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_geotags(path: str | os.PathLike) -> list[tuple[int, int, int, object]]:
    """The GeoTIFF tags of ``path`` as tifffile ``extratags`` (code, dtype, count, value).

    Empty for files that are not TIFFs or carry no geo tags. Passing the result to
    :func:`tifffile.imwrite` writes the same georeferencing on an output.
    """
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return []
    with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        out = []
        for code in GEO_TAG_CODES:
            tag = tags.get(code)
            if tag is not None:
                out.append((code, int(tag.dtype), int(tag.count), tag.value))
        return out
