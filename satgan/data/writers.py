"""Writing images: PNG/JPEG (optionally shrunk, for previews) and GeoTIFFs carrying an
input's geo tags, always atomically (a reader never sees half a file). Every image satgan
writes says so in its metadata (:data:`SOFTWARE`), so a command can tell its own earlier
outputs, which it may replace, from a user's files of the same names, which it must not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from satgan import SatganError
from satgan.atomic import atomic_path

SOFTWARE = "satgan"  # PNG text "Software", JPEG comment, TIFF Software tag

PIXEL_SCALE_TAG = 33550  # GeoTIFF ModelPixelScale: ground units per pixel
TIEPOINT_TAG = 33922  # GeoTIFF ModelTiepoint: a pixel and where it lies on the ground
TRANSFORMATION_TAG = 34264  # GeoTIFF ModelTransformation: a 4x4 pixel-to-model matrix


def scaled_geotags(tags: list[tuple], scale: tuple[float, float]) -> list[tuple]:
    """Geo tags for an output coarser than the input by ``scale`` = (rows, columns) input
    pixels per output pixel: the pixel size (and a transformation matrix's pixel terms)
    multiplied accordingly; everything else, and everything at scale 1, unchanged. The
    tie point of pixel (0, 0) stays where it was."""
    sy, sx = scale
    if sy == sx == 1:
        return tags
    out = []
    for code, dtype, count, value in tags:
        if code == PIXEL_SCALE_TAG:
            value = (value[0] * sx, value[1] * sy, *value[2:])
        elif code == TRANSFORMATION_TAG:
            m = list(value)
            for i, f in ((0, sx), (4, sx), (8, sx), (1, sy), (5, sy), (9, sy)):
                m[i] *= f
            value = tuple(m)
        out.append((code, dtype, count, value))
    return out


def window_geotags(tags: list[tuple], top: int, left: int) -> list[tuple]:
    """Geo tags for the window of an input whose upper-left pixel is the input's (``top``,
    ``left``): the tie point (or a transformation's translation) moved there; the pixel
    size unchanged. No tags give no tags."""
    if top == left == 0:
        return tags
    scale = next((v for c, _, _, v in tags if c == PIXEL_SCALE_TAG), None)
    out = []
    for code, dtype, count, value in tags:
        if code == TIEPOINT_TAG and scale is not None and len(value) >= 6:
            i, j, k, x, y, z = value[:6]
            value = (i, j, k, x + left * scale[0], y - top * scale[1], z, *value[6:])
        elif code == TRANSFORMATION_TAG:
            m = list(value)
            m[3] += left * m[0] + top * m[1]
            m[7] += left * m[4] + top * m[5]
            value = tuple(m)
        out.append((code, dtype, count, value))
    return out


def write_geotiff(path: Path, image: np.ndarray, tags: list[tuple]) -> None:
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, image, photometric="rgb", compression="zlib", extratags=tags, metadata=None,
                         software=SOFTWARE)


def write_mask_tiff(path: Path, mask: np.ndarray, tags: list[tuple]) -> None:
    """A ``bool`` (or already 0/255 ``uint8``) mask as a 0/255 LZW GeoTIFF with ``tags``, atomically."""
    data = mask if mask.dtype == np.uint8 else mask.astype(bool).view(np.uint8) * np.uint8(255)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, data, photometric="minisblack", compression="lzw", predictor=True, extratags=tags,
                         metadata=None, software=SOFTWARE)


def write_image(path: Path, image: np.ndarray, max_side: int | None = None) -> None:
    """PNG or JPEG (by suffix), atomically; ``max_side`` shrinks it first (previews)."""
    img = Image.fromarray(image)
    if max_side and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.LANCZOS)
    with atomic_path(path) as tmp:
        if path.suffix.lower() in (".jpg", ".jpeg"):
            img.save(tmp, quality=92, comment=SOFTWARE.encode())
        else:
            info = PngInfo()
            info.add_text("Software", SOFTWARE)
            img.save(tmp, pnginfo=info)


def written_by_satgan(path: Path) -> bool:
    """Whether the image file ``path`` says satgan wrote it (its metadata, not its name)."""
    try:
        with Image.open(path) as img:
            found = img.info.get("Software") or img.info.get("comment") or getattr(img, "tag_v2", {}).get(305)
    except Exception:  # noqa: BLE001 - a file Pillow cannot open is not one of ours
        return False
    found = found.decode(errors="replace") if isinstance(found, bytes) else str(found or "")
    return found == SOFTWARE


def refuse_foreign(paths: list[Path], what: str, overwrite: bool = False) -> None:
    """Refuse, before anything is written, to replace existing files among ``paths`` that
    satgan did not write (a user's files of the same names), unless ``overwrite``."""
    if overwrite:
        return
    foreign = [p for p in paths if p.exists() and not (p.is_file() and written_by_satgan(p))]
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise SatganError(f"{foreign[0]}{more}: already there and not written by satgan {what}; it would be "
                          f"replaced: move it, choose another folder, or pass --overwrite to replace it")
