"""The pretransform's output folder: what an earlier run left there, the finished parts
assembled into staged arrays and a manifest, and the commit that moves them into place
(the manifest last, so a folder with a manifest is complete)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

import satgan
from satgan import SatganError, SatganWarning
from satgan.atomic import check_apart, write_json
from satgan.config import PretransformConfig
from satgan.data.arrays import MANIFEST, PARTS, load_manifest
from satgan.data.readers import file_sha256
from satgan.data.sources import Source
from satgan.progress import progress_bar

FORMAT = 1


def _describe_difference(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys)


def prepare_out(out: Path, settings: dict, overwrite: bool) -> dict | None:
    """Check ``out``; return its manifest when it already holds this very pretransform.

    Nothing of an earlier output is deleted here: a new output replaces the old one only
    once it is complete (see :func:`commit`), so a run that fails leaves the old intact.
    """
    if out.exists() and not out.is_dir():
        raise SatganError(f"{out}: exists and is not a folder")
    check_apart(out, [("the source folder", settings["source"])], "OUT")
    manifest, parts_settings = out / MANIFEST, out / PARTS / "settings.json"
    _check_parts_are_ours(out / PARTS)
    done = None
    if manifest.exists():
        try:
            done = load_manifest(out)
        except SatganError:
            if not overwrite:
                raise  # a damaged output is replaced only with --overwrite
            if not manifest.is_file():  # a folder in its place is not satgan's to delete
                raise SatganError(f"{manifest}: is not a file; satgan replaces only a manifest it wrote: move it "
                                  "away, or choose another OUT") from None
    if done is None and not manifest.exists() and not (out / PARTS).exists() and out.is_dir() \
            and any(out.iterdir()):
        raise SatganError(f"{out}: folder is not empty and holds no satgan pretransform; choose a new or empty OUT")
    if done is not None and done["settings"] == settings and _outputs_intact(out, done):
        return done
    if done is not None and done["settings"] != settings and not overwrite:
        raise SatganError(
            f"{out} holds a pretransform made with other settings "
            f"({_describe_difference(done['settings'], settings)}); "
            "pass --overwrite to replace it, or choose another OUT"
        )
    if parts_settings.exists() and _read_json(parts_settings) != settings:
        # An unfinished run with other settings (say, a file was fixed after an error):
        # its parts are only a cache of work, so start over instead of refusing.
        print(f"{out}: discarding an unfinished run made with other settings")
        shutil.rmtree(out / PARTS)
    (out / PARTS).mkdir(parents=True, exist_ok=True)
    write_json(parts_settings, settings)
    return None


def _check_parts_are_ours(parts: Path) -> None:
    """``OUT/.parts`` is satgan's staging only where an earlier run wrote its ``settings.json``
    there (or left it empty): anything else by that name is never used nor deleted."""
    if not parts.exists() and not parts.is_symlink():
        return
    if parts.is_symlink() or not parts.is_dir() or (
            not (parts / "settings.json").is_file() and any(parts.iterdir())):
        raise SatganError(f"{parts}: not a staging folder of satgan pretransform (no settings.json in it); "
                          "satgan never deletes what it did not write: move it away, or choose another OUT")


def _read_json(path: Path) -> object:
    """A staging file's JSON, or None where it is damaged (the staging is then redone)."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _outputs_intact(out: Path, manifest: dict) -> bool:
    for split, info in manifest["splits"].items():
        for name, shape in (("images.npy", info["image_shape"]), ("masks.npy", info["mask_shape"])):
            try:
                arr = np.load(out / split / name, mmap_mode="r")
            except (OSError, ValueError):
                return False
            if list(arr.shape) != shape:
                return False
    return True

def commit(out: Path, manifest: dict) -> None:
    """Move the staged arrays into place and write the manifest last.

    Killed half-way, the folder has no manifest but still its ``.parts``; the same command
    then stages and commits again, with the same bytes.
    """
    previous = out / MANIFEST
    old = _read_json(previous) if previous.is_file() else None
    old_splits = old.get("splits", {}) if isinstance(old, dict) and isinstance(old.get("splits"), dict) else {}
    previous.unlink(missing_ok=True)  # from here until the end, the folder is visibly unfinished
    for split in old_splits:
        if split not in manifest["splits"]:
            for name in ("images.npy", "masks.npy"):
                (out / split / name).unlink(missing_ok=True)
    for split in manifest["splits"]:
        (out / split).mkdir(exist_ok=True)
        for name in ("images.npy", "masks.npy"):
            os.replace(out / PARTS / split / name, out / split / name)
    write_json(out / MANIFEST, manifest)
    shutil.rmtree(out / PARTS, ignore_errors=True)


def assemble(out: Path, source: Source, jobs: list, settings: dict, cfg: PretransformConfig) -> dict:
    """Join the parts of each split into its two arrays (staged in ``.parts``); return the manifest.
    ``jobs``: the pretransform's jobs in order, each with its ``split``, ``pair`` and ``part`` file."""
    s = cfg.size
    splits: dict[str, dict] = {}
    for split in source.splits:
        split_jobs = [j for j in jobs if j.split == split]
        counts, before = [], []
        for job in split_jobs:
            with np.load(job.part) as part:
                counts.append(len(part["rows"]))
                before.extend(part["all_fractions"].tolist())
        if sum(counts) == 0:
            raise SatganError(
                f"split {split!r} is empty after filtering: none of its {len(before)} tiles has a "
                f"building fraction of at least min_density={cfg.min_density} (the highest is "
                f"{max(before):.3f}); lower --min-density"
            )
        splits[split] = {"jobs": split_jobs, "counts": counts, "before": before}

    manifest_splits = {}
    for split, info in splits.items():
        n = sum(info["counts"])
        samples = []
        # staged beside the parts; commit moves them into place once every split is ready
        img_path, mask_path = out / PARTS / split / "images.npy", out / PARTS / split / "masks.npy"
        images = np.lib.format.open_memmap(img_path, mode="w+", dtype=np.uint8, shape=(n, s, s, 3))
        masks = np.lib.format.open_memmap(mask_path, mode="w+", dtype=np.uint8, shape=(n, s, s))
        at = 0
        for job in progress_bar(info["jobs"], desc=f"write {split}", unit="pair", leave=False):
            with np.load(job.part) as part:
                k = len(part["rows"])
                images[at : at + k] = part["images"]
                masks[at : at + k] = part["masks"]
                # parts staged by an older satgan have no bounds; the sample then has none either
                tile_px = part["bounds"].tolist() if "bounds" in part.files else [None] * k
                for r, c, f, b in zip(part["rows"], part["cols"], part["fractions"], tile_px):
                    samples.append({
                        "source": str(job.pair.image.relative_to(source.root)),
                        "mask": str(job.pair.mask.relative_to(source.root)),
                        "city": job.pair.city,
                        "row": int(r),
                        "col": int(c),
                        **({"bounds": b} if b is not None else {}),  # y0, y1, x0, x1 in the source
                        "fraction": round(float(f), 6),
                    })
            at += k
        images.flush()
        masks.flush()
        del images, masks
        hashes = {"images": file_sha256(img_path), "masks": file_sha256(mask_path)}
        manifest_splits[split] = {
            "count": n,
            "images": f"{split}/images.npy",
            "masks": f"{split}/masks.npy",
            "image_shape": [n, s, s, 3],
            "mask_shape": [n, s, s],
            "sha256": hashes,
            "tiles_before_filter": len(info["before"]),
            "fractions_before_filter": [round(f, 6) for f in info["before"]],
            "samples": samples,
        }
    content = hashlib.sha256(
        json.dumps({k: v["sha256"] for k, v in manifest_splits.items()}, sort_keys=True).encode()
    ).hexdigest()
    manifest = {
        "format": FORMAT,
        "satgan_version": satgan.__version__,
        "settings": settings,
        "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("out", "workers", "overwrite")},
        "splits": manifest_splits,
        "content_hash": content,
    }
    for split, info in manifest_splits.items():
        if info["count"] < 0.05 * info["tiles_before_filter"]:
            warnings.warn(
                f"split {split!r} keeps {info['count']} of {info['tiles_before_filter']} tiles "
                f"at min_density={cfg.min_density}",
                SatganWarning,
                stacklevel=2,
            )
    return manifest
