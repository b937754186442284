"""A pretransformed folder holding a seeded subset of another's train split.

Scarce-label experiments need a folder that holds *only* the N real pairs a generator and a
segmenter may learn from, so that nothing else can leak into either: ``satgan subset`` copies
N train tiles (the first N of a seeded permutation, the same draw as segbench's real subsets)
and every other split whole, with a manifest of its own (its own content hash) that records
where the tiles came from.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from satgan import SatganError
from satgan.atomic import check_output_folder, make_staging, sweep_staging, write_json
from satgan.data.arrays import MANIFEST, PARTS, load_manifest, open_arrays
from satgan.data.readers import file_sha256

TRAIN = "train"
REAL_STREAM = 0  # the stream of real subsets: seed s picks the same tiles here and in segbench


def spread(items: list, count: int) -> list:
    """At most ``count`` of ``items``, evenly spaced from the first to the last (all of them
    when there are no more): a sample that covers a sorted list."""
    if len(items) <= count:
        return list(items)
    if count <= 1:
        return list(items[:count])
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def subset(total: int, size: int, seed: int, stream: int = REAL_STREAM) -> np.ndarray:
    """The first ``size`` of a permutation of ``range(total)`` drawn for ``seed`` (and
    ``stream``). Subsets of one seed are nested: a smaller size is a prefix."""
    return np.random.default_rng([seed, stream]).permutation(total)[:size]


def subset_indices(total: int, count: int, seed: int) -> np.ndarray:
    """:func:`subset`'s real tiles for ``seed``, in the order of the source folder."""
    return np.sort(subset(total, count, seed))


def not_arrays(folder: Path) -> list[str]:
    """What ``folder`` holds besides a pretransformed folder's own files (its manifest, each
    split's arrays, pretransform's parts): a user's files, named relative to it."""
    try:
        splits = load_manifest(folder)["splits"].values()
    except SatganError:
        splits = []
    own = {MANIFEST, PARTS} | {info[key] for info in splits for key in ("images", "masks")}
    own |= {str(Path(name).parent) for name in own}
    found = []
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if name not in own and not name.startswith(PARTS + os.sep):
            found.append(name + ("/" if path.is_dir() else ""))
    return [n for n in found if not any(n.startswith(f) for f in found if f.endswith("/") and f != n)]


def subset_folder(source: str | Path, out: str | Path, count: int, seed: int = 0, overwrite: bool = False) -> dict:
    """Write ``out``: ``count`` tiles of ``source``'s train split and its other splits whole.
    Returns the new manifest. The folder is assembled beside ``out``, in a staging folder
    marked as satgan's (:func:`~satgan.atomic.make_staging`), and moved into place at the
    end, so an interrupted run leaves no half-written folder; ``out`` and ``source`` never
    nest, so replacing one never touches the other."""
    source = Path(source).expanduser().resolve()
    manifest = load_manifest(source)
    if TRAIN not in manifest["splits"]:
        raise SatganError(f"{source}: no {TRAIN} split to draw from; it has {', '.join(manifest['splits'])}")
    total = manifest["splits"][TRAIN]["count"]
    if not 1 <= count <= total:
        raise SatganError(f"--count {count}: {source}'s {TRAIN} split has {total} tiles; give 1 to {total}")
    out = Path(check_output_folder(out, "OUT", inputs=[("the source folder", source)])).expanduser().resolve()
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise SatganError(f"{out}: exists and is not empty; give an empty folder or --overwrite")
        if not (out / MANIFEST).is_file():
            raise SatganError(f"{out}: not a pretransformed folder; --overwrite only replaces one")
        foreign = not_arrays(out)
        if foreign:
            raise SatganError(f"{out}: holds files a pretransformed folder does not ({', '.join(foreign[:3])}"
                              f"{', ...' if len(foreign) > 3 else ''}); --overwrite replaces the whole folder, so "
                              "move them out first or choose another OUT")
    rows = subset_indices(total, count, seed)
    sweep_staging(out.parent, f"{out.name}.", precious=("old",))
    stage = make_staging(out.parent, f"{out.name}.")
    new, old = stage / "new", stage / "old"
    splits = {}
    try:
        for split, info in manifest["splits"].items():
            masks, images = open_arrays(source, info)
            keep = rows if split == TRAIN else np.arange(info["count"])
            (new / split).mkdir(parents=True)
            entry = {**info, "count": len(keep), "image_shape": [len(keep), *images.shape[1:]],
                     "mask_shape": [len(keep), *masks.shape[1:]],
                     "samples": [info["samples"][int(i)] for i in keep]}
            for key, array in (("images", images), ("masks", masks)):
                np.save(new / split / f"{key}.npy", np.ascontiguousarray(array[keep]))
            entry["sha256"] = {key: file_sha256(new / split / f"{key}.npy") for key in ("images", "masks")}
            splits[split] = entry
        content = hashlib.sha256(json.dumps({k: v["sha256"] for k, v in splits.items()},
                                            sort_keys=True).encode()).hexdigest()
        origin = {"root": str(source), "content_hash": manifest.get("content_hash"), "split": TRAIN,
                  "count": count, "seed": seed}
        # in the settings too, so satgan pretransform never takes this folder for its own full output
        made = {**manifest, "settings": {**manifest["settings"], "subset_of": origin}, "splits": splits,
                "content_hash": content, "subset_of": {**origin, "indices": rows.tolist()}}
        write_json(new / MANIFEST, made)
        if out.exists():  # the old folder goes aside first (into the staging folder), so no moment leaves neither
            os.rename(out, old)
            try:
                os.rename(new, out)
            except BaseException:
                os.rename(old, out)
                raise
        else:
            os.rename(new, out)
    finally:
        if old.exists() and not out.exists():  # the earlier folder could not be put back: never delete it
            raise SatganError(f"{out}: replacing it failed and so did putting the earlier folder back; it is in "
                              f"{old}: move it back")
        shutil.rmtree(stage, ignore_errors=True)
    return made
