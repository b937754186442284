"""Cut image/mask pairs into tiles once, and store them as memory-mappable training arrays.

For each split, ``OUT/<split>/images.npy`` holds ``(N, S, S, 3) uint8`` tiles and
``OUT/<split>/masks.npy`` ``(N, S, S) uint8`` building coverage (0-255: the fraction
of each output pixel's area that is building). ``OUT/manifest.json`` records, per
sample, the source file, city, tile row and column and building fraction, plus the
settings and a content hash.

How the work is organised, and why:

* each pair is one job; a job reads one pair, cuts its tiles and writes them to
  ``OUT/.parts/<split>/<n>.npz`` under a temporary name, then renames. Workers hold one
  pair each, so memory stays bounded whatever the dataset size;
* a rerun after a kill finds the finished parts and does only the rest;
* the arrays are then assembled part by part into ``open_memmap`` files staged in
  ``.parts``, moved into place once every split is ready, and the manifest is written
  last: a folder with a manifest is complete, and an earlier output is replaced only
  by a finished new one. The output does not depend on the number of workers or on
  interruptions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import satgan
from satgan.atomic import atomic_path, check_output_folder, write_json
from satgan.config import PretransformConfig
from satgan.data.arrays import MANIFEST, PARTS, load_manifest
from satgan.data.readers import file_sha256, image_size, read_image, read_mask
from satgan.data.sources import Pair, Source, open_source
from satgan.data.tiling import grid_shape, mask_coverage, resize_image, tile_bounds
from satgan.errors import SatganError, SatganWarning
from satgan.parallel import process_pool
from satgan.progress import progress_bar

FORMAT = 1
MIN_TILE = 8  # pixels; a smaller tile holds nothing to learn from
MAX_TILE_ASPECT = 1.5  # tiles are resized to squares; beyond this they look stretched


def _size_mismatch(pair: Pair, image_hw: tuple[int, int], mask_hw: tuple[int, int]) -> SatganError:
    return SatganError(
        f"{pair.image} is {image_hw[0]}x{image_hw[1]} but its mask {pair.mask} is "
        f"{mask_hw[0]}x{mask_hw[1]}; image and mask must have the same size"
    )


# -- one pair: the unit of work ----------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    split: str
    pair: Pair
    part: Path
    grid: int
    size: int
    min_density: float


def _run_job(job: _Job) -> None:
    """Read one pair, cut and resize its tiles, write them as one part file (atomically)."""
    image, mask = read_image(job.pair.image), read_mask(job.pair.mask)
    if image.shape[:2] != mask.shape:  # headers agreed (checked before), the pixels do not
        raise _size_mismatch(job.pair, image.shape[:2], mask.shape)
    mask255 = mask.view(np.uint8) * np.uint8(255)  # once per pair, not once per tile
    images, masks, rows, cols, bounds, kept_fractions, all_fractions = [], [], [], [], [], [], []
    for r, c, y0, y1, x0, x1 in tile_bounds(*mask.shape, job.grid):
        tile_mask = mask[y0:y1, x0:x1]
        fraction = np.count_nonzero(tile_mask) / tile_mask.size
        all_fractions.append(fraction)
        if fraction < job.min_density:
            continue
        images.append(resize_image(image[y0:y1, x0:x1], job.size))
        masks.append(mask_coverage(mask255[y0:y1, x0:x1], job.size))
        rows.append(r)
        cols.append(c)
        bounds.append((y0, y1, x0, x1))
        kept_fractions.append(fraction)
    s = job.size
    with atomic_path(job.part) as tmp:
        np.savez(
            tmp,
            images=np.stack(images) if images else np.zeros((0, s, s, 3), np.uint8),
            masks=np.stack(masks) if masks else np.zeros((0, s, s), np.uint8),
            rows=np.array(rows, np.int32),
            cols=np.array(cols, np.int32),
            bounds=np.array(bounds, np.int64).reshape(-1, 4),
            fractions=np.array(kept_fractions, np.float64),
            all_fractions=np.array(all_fractions, np.float64),
        )


# -- checks before any work ----------------------------------------------------------------
def _check_config(cfg: PretransformConfig) -> None:
    if cfg.grid < 1:
        raise SatganError(f"grid must be 1 or more (got {cfg.grid})")
    if cfg.size < cfg.crop:
        raise SatganError(
            f"size {cfg.size} is below the training crop {cfg.crop}; "
            f"use --size {cfg.crop} or more (286 for the default crop of 256), or a smaller --crop"
        )
    if not 0.0 <= cfg.min_density <= 1.0:
        raise SatganError(f"min_density is a building fraction between 0 and 1 (got {cfg.min_density})")
    if cfg.workers < 1:
        raise SatganError(f"workers must be 1 or more (got {cfg.workers})")
    if cfg.labels and cfg.labels.lower().endswith(".csv") and not Path(cfg.labels).expanduser().is_file():
        raise SatganError(f"{cfg.labels}: no such label file (a CSV of stem,label rows)")


def _check_pairs(source: Source, cfg: PretransformConfig) -> None:
    """Sizes from file headers only: catch mismatched pairs and bad grids before the work."""
    for pair in progress_bar(source.pairs, desc="check", unit="pair", leave=False):
        shape, mask_shape = image_size(pair.image), image_size(pair.mask)
        if shape != mask_shape:
            raise _size_mismatch(pair, shape, mask_shape)
        rows, cols = grid_shape(*shape, cfg.grid)
        th, tw = shape[0] // rows, shape[1] // cols
        if min(th, tw) < MIN_TILE:
            raise SatganError(
                f"grid {cfg.grid} cuts {pair.image} ({shape[0]}x{shape[1]}) into {th}x{tw} tiles; "
                f"choose a grid of at most {min(shape) // MIN_TILE}"
            )
        if max(th, tw) / min(th, tw) > MAX_TILE_ASPECT:
            raise SatganError(
                f"grid {cfg.grid} cuts {pair.image} ({shape[0]}x{shape[1]}) into {th}x{tw} tiles, "
                f"which resizing to {cfg.size}x{cfg.size} would stretch; try another grid"
            )


def _settings(source: Source, cfg: PretransformConfig) -> dict:
    """What determines the output: any change means a different pretransform."""
    listing = hashlib.sha256()
    for p in source.pairs:
        for path in (p.image, p.mask):
            st = path.stat()  # an edit that keeps the size still changes the time
            listing.update(f"{p.split}|{p.city}|{path.relative_to(source.root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return {
        "format": FORMAT,
        "source": str(source.root.resolve()),
        "source_kind": source.kind,
        "source_files": listing.hexdigest(),
        "grid": cfg.grid,
        "size": cfg.size,
        "min_density": cfg.min_density,
        "val": cfg.val,
    }


def _describe_difference(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys)


def _prepare_out(out: Path, settings: dict, overwrite: bool) -> dict | None:
    """Check ``out``; return its manifest when it already holds this very pretransform.

    Nothing of an earlier output is deleted here: a new output replaces the old one only
    once it is complete (see :func:`_commit`), so a run that fails leaves the old intact.
    """
    if out.exists() and not out.is_dir():
        raise SatganError(f"{out}: exists and is not a folder")
    manifest, parts_settings = out / MANIFEST, out / PARTS / "settings.json"
    done = None
    if manifest.exists():
        try:
            done = load_manifest(out)
        except SatganError:
            if not overwrite:
                raise  # a damaged output is replaced only with --overwrite
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


# -- the whole job ------------------------------------------------------------------------
def pretransform(cfg: PretransformConfig) -> dict:
    """Pretransform ``cfg.source`` into ``cfg.out``; return the manifest (also in ``OUT/manifest.json``).

    A rerun with the same settings finishes an interrupted run or, if the output is
    complete, returns at once. Other settings are refused unless ``cfg.overwrite``.
    """
    _check_config(cfg)
    check_output_folder(cfg.out, "OUT")
    source = open_source(cfg.source, val=cfg.val, skip_unpaired=cfg.skip_unpaired, labels=cfg.labels)
    _check_pairs(source, cfg)
    settings = _settings(source, cfg)
    out = Path(cfg.out).expanduser()
    done = _prepare_out(out, settings, cfg.overwrite)
    if done is not None:
        shutil.rmtree(out / PARTS, ignore_errors=True)
        print(f"{out}: already pretransformed with these settings")
        return done

    jobs = [_Job(pair.split, pair, out / PARTS / pair.split / f"{order:07d}.npz", cfg.grid, cfg.size,
                 cfg.min_density) for order, pair in enumerate(source.pairs)]
    for split in source.splits:
        (out / PARTS / split).mkdir(parents=True, exist_ok=True)
    todo = [job for job in jobs if not job.part.exists()]
    with progress_bar(total=len(jobs), initial=len(jobs) - len(todo), desc="pretransform", unit="pair") as bar:
        if cfg.workers > 1 and len(todo) > 1:
            with process_pool(min(cfg.workers, len(todo))) as pool:
                for _ in pool.imap_unordered(_run_job, todo):
                    bar.update()
        else:
            for job in todo:
                _run_job(job)
                bar.update()

    try:
        manifest = _assemble(out, source, jobs, settings, cfg)
    except SatganError:
        shutil.rmtree(out / PARTS, ignore_errors=True)  # an empty split: this run's work is moot
        raise
    _commit(out, manifest)
    return manifest


def _commit(out: Path, manifest: dict) -> None:
    """Move the staged arrays into place and write the manifest last.

    Killed half-way, the folder has no manifest but still its ``.parts``; the same command
    then stages and commits again, with the same bytes.
    """
    previous = out / MANIFEST
    old = _read_json(previous) if previous.is_file() else None
    old_splits = old.get("splits", {}) if isinstance(old, dict) and isinstance(old.get("splits"), dict) else {}
    if previous.is_dir():
        shutil.rmtree(previous)
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


def _assemble(out: Path, source: Source, jobs: list[_Job], settings: dict, cfg: PretransformConfig) -> dict:
    """Join the parts of each split into its two arrays (staged in ``.parts``); return the manifest."""
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
        # staged beside the parts; _commit moves them into place once every split is ready
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
