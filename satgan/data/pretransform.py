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
  by a finished new one (:mod:`satgan.data.staging`). The output does not depend on
  the number of workers or on interruptions.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from satgan import SatganError
from satgan.atomic import atomic_path, check_output_folder
from satgan.config import PretransformConfig
from satgan.data.arrays import PARTS
from satgan.data.readers import image_size, read_image, read_mask
from satgan.data.sources import Pair, Source, open_source
from satgan.data.staging import FORMAT, assemble, commit, prepare_out
from satgan.data.tiling import grid_shape, mask_coverage, resize_image, tile_bounds
from satgan.progress import process_pool, progress_bar

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
    fresh = not out.exists() or not any(out.iterdir())  # a failure leaves nothing of this run in a fresh OUT
    done = prepare_out(out, settings, cfg.overwrite)
    if done is not None:
        shutil.rmtree(out / PARTS, ignore_errors=True)
        print(f"{out}: already pretransformed with these settings")
        return done

    jobs = [_Job(pair.split, pair, out / PARTS / pair.split / f"{order:07d}.npz", cfg.grid, cfg.size,
                 cfg.min_density) for order, pair in enumerate(source.pairs)]
    for split in source.splits:
        (out / PARTS / split).mkdir(parents=True, exist_ok=True)
    todo = [job for job in jobs if not job.part.exists()]
    try:
        with progress_bar(total=len(jobs), initial=len(jobs) - len(todo), desc="pretransform", unit="pair") as bar:
            if cfg.workers > 1 and len(todo) > 1:
                with process_pool(min(cfg.workers, len(todo))) as pool:
                    for _ in pool.imap_unordered(_run_job, todo):
                        bar.update()
            else:
                for job in todo:
                    _run_job(job)
                    bar.update()
    except SatganError:  # a bad file: parts an interrupted run left stay for the rerun; a fresh OUT goes
        if fresh:
            shutil.rmtree(out / PARTS, ignore_errors=True)
            if out.is_dir() and not any(out.iterdir()):
                out.rmdir()
        raise

    try:
        manifest = assemble(out, source, jobs, settings, cfg)
    except SatganError:
        shutil.rmtree(out / PARTS, ignore_errors=True)  # an empty split: this run's work is moot
        raise
    commit(out, manifest)
    return manifest


