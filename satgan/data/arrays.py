"""Reading pretransformed folders: the manifest, its splits, and tiles from the arrays.

A pretransformed folder (written by :mod:`satgan.data.pretransform`) holds
``manifest.json`` and, per split, ``<split>/images.npy`` ``(N, S, S, 3) uint8`` and
``<split>/masks.npy`` ``(N, S, S) uint8`` coverage. Everything that reads tiles back
(the training dataset, generation, evaluation, galleries) comes through here, and a
damaged folder gives one message naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from satgan import SatganError

MANIFEST = "manifest.json"
PARTS = ".parts"


def _remake(root: Path) -> str:
    return f"rerun satgan pretransform with --overwrite to rebuild {root}"


def load_manifest(root: str | Path) -> dict:
    """The manifest of a pretransformed folder, or a clear error saying how to make one."""
    root = Path(root).expanduser()
    path = root / MANIFEST
    if not path.is_file():
        hint = ""
        if (root / PARTS).exists():
            hint = " (an interrupted run: rerun the same satgan pretransform command to finish it)"
        if path.exists():
            raise SatganError(f"{path}: is not a file; {_remake(root)}")
        raise SatganError(
            f"{root}: not a pretransformed folder, no {MANIFEST}{hint}; "
            "make one with: satgan pretransform SOURCE OUT --grid N --size S"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SatganError(f"{path}: damaged ({type(exc).__name__}: {exc}); {_remake(root)}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("splits"), dict) \
            or not isinstance(manifest.setdefault("settings", {}), dict):
        raise SatganError(f"{path}: not a satgan manifest (no splits); {_remake(root)}")
    return manifest


def load_split(root: str | Path, split: str) -> tuple[dict, dict]:
    """The manifest and the entry of ``split``, or a clear error naming the splits there are."""
    manifest = load_manifest(root)
    if split not in manifest["splits"]:
        raise SatganError(f"{Path(root).expanduser()}: no split {split!r}; it has {', '.join(manifest['splits'])}")
    return manifest, manifest["splits"][split]


def open_arrays(root: str | Path, info: dict) -> tuple[np.ndarray, np.ndarray]:
    """The split's ``masks`` and ``images`` arrays, memory-mapped, checked against the
    manifest (a truncated or foreign file is named)."""
    root = Path(root).expanduser()
    out = []
    mask_shape = info.get("mask_shape", info["image_shape"][:3])
    for key, want in (("masks", mask_shape), ("images", info["image_shape"])):
        path = root / info[key]
        try:
            arr = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise SatganError(f"{path}: cannot be read ({exc}); {_remake(root)}") from None
        if arr.dtype != np.uint8 or list(arr.shape) != list(want):
            raise SatganError(f"{path}: holds {arr.dtype} {tuple(arr.shape)}, the manifest says uint8 {tuple(want)}; "
                              f"{_remake(root)}")
        out.append(arr)
    return out[0], out[1]


def source_mask(root: str | Path, split: str, index: int = 0) -> Path:
    """The whole source mask file that sample ``index`` of ``split`` was cut from."""
    manifest, info = load_split(root, split)
    if not info["samples"]:
        raise SatganError(f"{Path(root).expanduser()}: split {split!r} has no samples")
    return Path(manifest["settings"]["source"]) / info["samples"][index]["mask"]


def tile_names(manifest: dict, split: str) -> list[str]:
    """``<source stem>`` for whole images, ``<stem>-<k>`` (k = 1.. in row order) for grid tiles."""
    samples = manifest["splits"][split]["samples"]
    grid = manifest["settings"].get("grid", 1)
    cols: dict[str, int] = {}
    for s in samples:
        cols[s["source"]] = max(cols.get(s["source"], grid), s["col"] + 1)
    names = []
    for s in samples:
        stem = Path(s["source"]).stem
        names.append(stem if grid == 1 else f"{stem}-{s['row'] * cols[s['source']] + s['col'] + 1}")
    return names


def centre_crops(root: Path, info: dict, rows: slice | list[int], side: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks ``(B, side, side)`` and images ``(B, side, side, 3)`` of the split ``info``
    describes: the given samples, centre-cropped (read from the memory-mapped arrays)."""
    size = info["image_shape"][1]
    if side > size:
        raise SatganError(f"{root}: tiles of {size} px are smaller than the {side} px this generator needs")
    at = (size - side) // 2
    window = (rows, slice(at, at + side), slice(at, at + side))
    masks, images = open_arrays(root, info)
    return np.ascontiguousarray(masks[window]), np.ascontiguousarray(images[window])


def split_samples(root: str | Path, split: str, side: int | None = None, batch_size: int = 16,
                  limit: int | None = None) -> Iterator[dict]:
    """Batches of a pretransformed split: ``masks`` (B, S, S) uint8 coverage, ``images``
    (B, S, S, 3) uint8, ``names``, ``cities``; S = ``side`` (centred crops), or the whole tile."""
    root = Path(root).expanduser()
    manifest, info = load_split(root, split)
    names = tile_names(manifest, split)
    n = info["count"] if limit is None else min(limit, info["count"])
    for i in range(0, n, batch_size):
        j = min(i + batch_size, n)
        masks, images = centre_crops(root, info, slice(i, j), side or info["image_shape"][1])
        yield {"masks": masks, "images": images, "names": names[i:j],
               "cities": [s["city"] for s in info["samples"][i:j]]}
