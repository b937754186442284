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
    check_manifest(manifest, path)
    return manifest


# -- the manifest's schema: every field a reader takes, and its type -------------------------------
def _is_int(v: object, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _is_fraction(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1  # NaN fails both


def _is_inner_path(v: object) -> bool:
    """A path relative to the folder that stays inside it (``train/images.npy``)."""
    return isinstance(v, str) and bool(v) and not Path(v).is_absolute() and ".." not in Path(v).parts


def _shown(v: object) -> str:
    text = json.dumps(v) if isinstance(v, (list, dict)) else repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


# field -> (check, what it must be); optional fields are checked where present (older
# folders may lack them: settings, format, content_hash, a sample's mask and bounds)
TOP_FIELDS = {"format": (lambda v: _is_int(v, 1), "a format number"), "satgan_version": (str, "a text"),
              "content_hash": (str, "a text"), "config": (dict, "an object"), "subset_of": (dict, "an object")}
SETTINGS_FIELDS = {"grid": (lambda v: _is_int(v, 1), "an integer of at least 1"),
                   "size": (lambda v: _is_int(v, 1), "an integer of at least 1"),
                   "min_density": (_is_fraction, "a fraction from 0 to 1"), "source": (str, "a path")}
SPLIT_FIELDS = {"count": (lambda v: _is_int(v, 1), "an integer of at least 1"),
                "images": (_is_inner_path, "a path inside the folder, like 'train/images.npy'"),
                "masks": (_is_inner_path, "a path inside the folder, like 'train/masks.npy'"),
                "image_shape": (lambda v: isinstance(v, list) and len(v) == 4 and all(_is_int(n, 1) for n in v)
                                and v[1] == v[2] and v[3] == 3, "[count, size, size, 3]"),
                "samples": (list, "a list of the tiles")}
OPTIONAL_SPLIT_FIELDS = {"mask_shape": (lambda v: isinstance(v, list) and len(v) == 3 and all(_is_int(n, 1) for n in v),
                                        "[count, size, size]"),
                         "tiles_before_filter": (_is_int, "an integer"),
                         "fractions_before_filter": (list, "a list of fractions"), "sha256": (dict, "an object")}
SAMPLE_FIELDS = {"source": (str, "a path"), "city": (str, "a text"), "row": (_is_int, "an integer"),
                 "col": (_is_int, "an integer"), "fraction": (_is_fraction, "a fraction from 0 to 1")}
OPTIONAL_SAMPLE_FIELDS = {"mask": (str, "a path"), "bounds": (lambda v: isinstance(v, list) and len(v) == 4
                                                              and all(_is_int(n) for n in v), "[y0, y1, x0, x1]")}


def _plain_sample(s: object) -> bool:
    """What :data:`SAMPLE_FIELDS` and :data:`OPTIONAL_SAMPLE_FIELDS` check, in one expression
    (a manifest may list 100,000 tiles; ``type(v) is int`` rules out booleans)."""
    return (type(s) is dict and type(s.get("source")) is str and type(s.get("city")) is str
            and type(s.get("row")) is int and s["row"] >= 0 and type(s.get("col")) is int and s["col"] >= 0
            and _is_fraction(s.get("fraction")) and ("mask" not in s or type(s["mask"]) is str)
            and ("bounds" not in s or OPTIONAL_SAMPLE_FIELDS["bounds"][0](s["bounds"])))


def check_manifest(manifest: object, path: Path) -> dict:
    """``manifest`` (as read from ``path``) checked against the schema pretransform writes:
    one :class:`SatganError` naming the file and the first field that is missing or of the
    wrong type (``DATA/manifest.json: splits.train.count must be an integer of at least 1,
    got '12'``), or whose counts disagree. Fills in ``settings`` where an old folder has none."""
    root = path.parent

    def wrong(field: str, what: str, value: object = None, missing: bool = False) -> SatganError:
        got = "it is missing" if missing else f"got {_shown(value)}"
        return SatganError(f"{path}: {field} must be {what}, {got}; {_remake(root)}")

    def check(record: dict, fields: dict, prefix: str, required: bool) -> None:
        for key, (test, what) in fields.items():
            if key not in record:
                if required:
                    raise wrong(prefix + key, what, missing=True)
                continue
            value = record[key]
            ok = isinstance(value, test) and not isinstance(value, bool) if isinstance(test, type) else test(value)
            if not ok:
                raise wrong(prefix + key, what, value)

    if not isinstance(manifest, dict) or "splits" not in manifest:
        raise SatganError(f"{path}: not a satgan manifest (no splits); {_remake(root)}")
    check(manifest, TOP_FIELDS, "", required=False)
    settings = manifest.setdefault("settings", {})
    if not isinstance(settings, dict):
        raise wrong("settings", "an object", settings)
    check(settings, SETTINGS_FIELDS, "settings.", required=False)
    splits = manifest["splits"]
    if not isinstance(splits, dict) or not splits:
        raise wrong("splits", "an object of one or more splits ({\"train\": {...}})", splits)
    for name, info in splits.items():
        where = f"splits.{name}"
        if not isinstance(info, dict):
            raise wrong(where, "an object (count, images, masks, image_shape, samples)", info)
        check(info, SPLIT_FIELDS, f"{where}.", required=True)
        check(info, OPTIONAL_SPLIT_FIELDS, f"{where}.", required=False)
        count, shape = info["count"], info["image_shape"]
        for field, n in (("image_shape", shape[0]), ("samples", len(info["samples"])),
                         ("mask_shape", info.get("mask_shape", [count])[0])):
            if n != count:
                raise SatganError(f"{path}: {where}.{field} holds {n} tiles where {where}.count says {count}; "
                                  f"{_remake(root)}")
        if info.get("mask_shape", shape[:3])[1:] != shape[1:3]:
            raise wrong(f"{where}.mask_shape", f"{shape[:3]} (image_shape without its channels)", info["mask_shape"])
        for i, sample in enumerate(info["samples"]):
            if _plain_sample(sample):
                continue  # the common case, fast; the checks below say what is wrong
            if not isinstance(sample, dict):
                raise wrong(f"{where}.samples[{i}]", "an object (source, city, row, col, fraction)", sample)
            check(sample, SAMPLE_FIELDS, f"{where}.samples[{i}].", required=True)
            check(sample, OPTIONAL_SAMPLE_FIELDS, f"{where}.samples[{i}].", required=False)
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
        if not path.is_file():
            what = "is a folder, not an array file" if path.is_dir() else "is missing"
            raise SatganError(f"{path}: {what} (the manifest lists it); {_remake(root)}")
        try:
            arr = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            # numpy calls any file without its magic string "pickled data", with advice to load it unsafely
            with open(path, "rb") as f:
                why = exc if f.read(6) == b"\x93NUMPY" else "not a numpy array file"
            raise SatganError(f"{path}: cannot be read ({why}); {_remake(root)}") from None
        if arr.dtype == np.uint8 and arr.ndim == len(want) and list(arr.shape[1:]) == list(want[1:]) \
                and len(arr) != want[0]:
            raise SatganError(f"{path}: holds {len(arr)} tiles where the manifest says {want[0]} (its count); "
                              f"{_remake(root)}")
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
