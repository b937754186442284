"""Synthetic training sets: a generated image for every mask, written beside a copy of the
mask as a dataset any segmentation tool reads.

``synthesize(cfg)`` turns a folder of masks (e.g. ``satgan forge``'s output) into the
Inria layout, ``OUT/AerialImageDataset/train/images/<name>.tif`` with
``train/gt/<name>.tif`` (same names, GeoTIFF tags kept), or paired folders
``OUT/images/`` + ``OUT/masks/``. ``OUT/synthesize.json`` records the checkpoint's SHA-256
and settings and, per image, its source mask, seed, city and size. Whole masks are
generated in seamless mode at the checkpoint's training scale (the mask copy is brought
to the image's size), or each mask is resized to one tile (resize mode).

Each image has its own seed (from ``cfg.seed``, its mask's name and its variant), which
draws its dropout noise (``--dropout``) and, for a model that has them, its style code and
noise; ``cfg.variants`` > 1 writes several generations of every mask as ``<name>-v<k>``.
An interrupted run picks up where it stopped when started again with the same settings:
finished images whose mask is unchanged (SHA-256) are kept, nothing half-written is ever
read, and images an earlier run made from masks no longer there are removed.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from satgan import SatganError, SatganWarning, metrics
from satgan.atomic import check_apart, check_output_folder, write_json
from satgan.config import SynthesizeConfig
from satgan.data.readers import file_sha256, read_geotags, read_image, read_mask
from satgan.data.sources import INRIA_DIR, mask_files
from satgan.data.tiling import mask_coverage
from satgan.data.writers import scaled_geotags, write_geotiff, write_mask_tiff
from satgan.generation.loading import Generator, file_style, load_generator, named_city
from satgan.generation.modes import generate_resize, generate_seamless
from satgan.metrics import to_unit_range
from satgan.progress import progress_bar

MANIFEST = "synthesize.json"
RANDOM_CITY = "random"  # --city random: each image a city drawn from its own seed
SAVE_EVERY_S = 5.0  # how often the manifest is rewritten during a run (and always at the end)
# settings that change the images; the others (device, batch size) may differ when a run resumes
_IMAGE_SETTINGS = ("mode", "variants", "seed", "dropout", "city", "scale", "layout")


def dataset_folders(out: str | Path, layout: str) -> tuple[Path, Path]:
    """``(images, masks)`` folders of a synthesized dataset in ``layout``."""
    out = Path(out).expanduser()
    if layout == "inria":
        return out / INRIA_DIR / "train" / "images", out / INRIA_DIR / "train" / "gt"
    return out / "images", out / "masks"


def image_seed(seed: int, stem: str, variant: int) -> int:
    """The seed of one image: the same for the same mask name and variant in every run and
    in any order, so a resumed run draws what an uninterrupted one would."""
    return zlib.crc32(f"{seed}/{stem}/{variant}".encode())


def _styled(gen: Generator, cfg: SynthesizeConfig, path: Path, seed: int) -> Generator:
    """``gen`` drawing ``path`` with its own seed: its city (``cfg.city``; ``random``: one
    drawn from the seed; else its name's), style code and noise; its dropout drawn from the
    seed too."""
    city = gen.labels[seed % len(gen.labels)] if cfg.city == RANDOM_CITY else cfg.city
    if gen.latent or gen.noise:
        gen = gen.styled(city, seed)
    elif city is not None:
        gen = gen.styled(city)
    if cfg.dropout:
        torch.manual_seed(seed)
    return file_style(gen, path)


def _generate(gen: Generator, mask: np.ndarray, cfg: SynthesizeConfig, scale: float) -> np.ndarray:
    if cfg.mode == "resize":
        return generate_resize(gen, mask)
    return generate_seamless(gen, mask, scale, batch_size=cfg.batch_size)


def _write_pair(image: np.ndarray, mask: np.ndarray, source: Path, image_path: Path, mask_path: Path) -> None:
    """The image, then the mask brought to its size (threshold at half coverage), both with
    the source's geo tags scaled to their pixel size; each file appears whole or not at all."""
    small = mask_coverage(mask, image.shape[:2]) >= 128
    tags = scaled_geotags(read_geotags(source), (mask.shape[0] / image.shape[0], mask.shape[1] / image.shape[1]))
    write_geotiff(image_path, image, tags)
    write_mask_tiff(mask_path, small, tags)


def _check_apart(source: Path, masks_dir: Path, out: Path, layout: str) -> None:
    """The dataset must not be written among the masks, nor over them, nor hold them, nor
    go over a dataset that is not an earlier synthesis (a real one's images and masks)."""
    inputs = {source.resolve(), masks_dir.resolve()}
    written = [d.resolve() for d in dataset_folders(out, layout)]
    if any(d == p or d in p.parents for d in written for p in inputs):
        raise SatganError(f"{out}: its dataset folders would hold the masks in {masks_dir}: the masks would be "
                          "overwritten; choose another OUT")
    check_apart(out, [("the masks folder", source), ("the masks folder", masks_dir)], "OUT")
    if not (out / MANIFEST).exists():
        taken = [f for d in written if d.is_dir() for f in d.iterdir() if f.is_file()]
        if taken:
            raise SatganError(f"{out}: holds a dataset that satgan synthesize did not write ({taken[0]}); "
                              "choose another OUT")


def _check_resume(path: Path, settings: dict) -> dict:
    """The images an earlier run with the same settings finished (none without a manifest)."""
    if not path.exists():
        return {}
    try:
        earlier = json.loads(path.read_text())
        images = earlier["images"]
        before = earlier["settings"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SatganError(f"{path}: damaged ({exc}); remove it (and the folder's images) or choose another OUT") \
            from None
    differ = sorted(k for k in settings if before.get(k) != settings[k])
    if differ:
        shown = ", ".join(f"{k} {before.get(k)!r} -> {settings[k]!r}" for k in differ)
        raise SatganError(f"{path.parent}: holds a synthesis with other settings ({shown}); "
                          "choose another OUT, or the same settings to resume")
    return images


def synthesize(cfg: SynthesizeConfig, gen: Generator | None = None, progress: bool = True) -> dict:
    """Generate an image for every mask in ``cfg.masks`` into the dataset ``cfg.out`` (see
    the module's docstring). A mask that cannot be read is named in a warning and skipped.
    Returns ``{"root", "written", "kept", "removed", "failed", "images"}``."""
    source = Path(cfg.masks).expanduser()
    if not source.is_dir():
        raise SatganError(f"{source}: no such folder of masks")
    out = check_output_folder(cfg.out, inputs=[("the checkpoint", cfg.checkpoint)])
    files = mask_files(source)
    _check_apart(source, files[0].parent, out, cfg.layout)
    gen = gen or load_generator(cfg.checkpoint, cfg.device, cfg.dropout)
    if gen.labels and cfg.city is None:
        unnamed = [f.name for f in files if named_city(gen, f) is None]
        if unnamed:
            raise SatganError(f"{source}: which city to draw? {len(unnamed)} mask name(s) say none this model "
                              f"knows (e.g. {unnamed[0]}); give --city one of {', '.join(gen.labels)}")
    if cfg.city == RANDOM_CITY and not gen.labels:
        raise SatganError(f"--city {RANDOM_CITY}: this model is not conditioned on a city (train with "
                          "model.condition=city)")
    if cfg.city not in (None, RANDOM_CITY):
        gen.styled(cfg.city)  # an unknown city (or a model without cities) is an error before any work
    scale = cfg.scale if cfg.scale is not None else (gen.pixel_scale or 1.0)
    settings = {k: v for k, v in asdict(cfg).items() if k in _IMAGE_SETTINGS}
    settings.update(scale=scale if cfg.mode == "seamless" else None, checkpoint_sha256=file_sha256(cfg.checkpoint),
                    masks=str(source.resolve()))
    manifest_path = out / MANIFEST
    done = _check_resume(manifest_path, settings)
    made = [p for p in (out, *out.parents) if not p.exists()]  # what this run creates, deepest first
    images_dir, masks_dir = dataset_folders(out, cfg.layout)
    for folder in (images_dir, masks_dir):
        folder.mkdir(parents=True, exist_ok=True)
        for partial in folder.glob(".*.tmp-*"):  # a killed run's file being written: never finished
            partial.unlink(missing_ok=True)
    record = {"settings": settings, "checkpoint": str(Path(cfg.checkpoint).expanduser().resolve()),
              "model": {"condition": gen.config.model.condition, "labels": list(gen.labels),
                        "latent": gen.latent, "noise": gen.noise}, "images": dict(done)}
    write_json(manifest_path, record)  # the settings first: a rerun with others is refused, even after a kill
    jobs = [(f, k) for f in files for k in range(cfg.variants)]
    written, kept, failed, saved, digests = 0, 0, {}, time.monotonic(), {}
    for path, k in progress_bar(jobs, desc="synthesize", unit="image", disable=not progress):
        name = path.stem if cfg.variants == 1 else f"{path.stem}-v{k + 1}"
        image_path, mask_path = images_dir / f"{name}.tif", masks_dir / f"{name}.tif"
        digest = digests[path] = digests.get(path) or file_sha256(path)  # once per mask, not per variant
        if done.get(name, {}).get("mask_sha256") == digest and image_path.exists() and mask_path.exists():
            kept += 1
            continue
        seed = image_seed(cfg.seed, path.stem, k)
        try:
            styled = _styled(gen, cfg, path, seed)
            mask = read_mask(path, strict=True)
            image = _generate(styled, mask, cfg, scale)
        except SatganError as exc:
            if str(path) not in str(exc):
                exc = SatganError(f"{path}: {exc}")
            if len(files) == 1:
                raise exc from None
            failed[str(path)] = str(exc)
            warnings.warn(f"skipped: {exc}", SatganWarning, stacklevel=2)
            continue
        _write_pair(image, mask, path, image_path, mask_path)
        record["images"][name] = {"source": str(path.relative_to(source)), "mask_sha256": digest, "seed": seed,
                                  "variant": k + 1, "city": styled.city, "size": list(image.shape[:2])}
        written += 1
        if time.monotonic() - saved > SAVE_EVERY_S:
            write_json(manifest_path, record)
            saved = time.monotonic()
    if failed and not written and not kept:  # nothing usable: one error, not a list of each mask's
        first = next(iter(failed.values()))
        if made:  # OUT did not exist: every file in it is this run's, which made nothing
            shutil.rmtree(made[-1], ignore_errors=True)
        raise SatganError(f"{source}: none of the {len(files)} masks could be generated; the first: {first}")
    # what an earlier run made from masks that are gone (a forge redone smaller) leaves the dataset
    wanted = {path.stem if cfg.variants == 1 else f"{path.stem}-v{k + 1}" for path, k in jobs}
    stale = sorted(set(record["images"]) - wanted)
    for name in stale:
        (images_dir / f"{name}.tif").unlink(missing_ok=True)
        (masks_dir / f"{name}.tif").unlink(missing_ok=True)
        del record["images"][name]
    write_json(manifest_path, record)
    return {"root": str(out), "written": written, "kept": kept, "removed": len(stale), "failed": failed,
            "images": len(record["images"])}


def variant_diversity(out: str | Path, layout: str = "inria", inception: metrics.InceptionFeatures | None = None,
                      limit: int = 50) -> dict:
    """How different the variants of the same mask are in a synthesized dataset (written
    with ``variants`` >= 2): over up to ``limit`` masks, the mean over pairs of variants of
    the mean absolute pixel difference (images in [0, 1]) and, with ``inception``, of the
    distance between their Inception features."""
    import json

    record = json.loads((Path(out).expanduser() / MANIFEST).read_text())
    groups: dict[str, list[str]] = {}
    for name, info in sorted(record["images"].items()):
        groups.setdefault(info["source"], []).append(name)
    groups = {k: v for k, v in groups.items() if len(v) >= 2}
    if not groups:
        raise SatganError(f"{out}: no mask has two variants (synthesize with --variants 2 or more)")
    images_dir, _ = dataset_folders(out, layout)
    pixels, feats = [], []
    for names in list(groups.values())[:limit]:
        batch = to_unit_range(np.stack([read_image(images_dir / f"{n}.tif") for n in names]))
        f = metrics.features(inception, batch) if inception is not None else None
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                pixels.append(float((batch[i] - batch[j]).abs().mean()))
                if f is not None:
                    feats.append(float((f[i] - f[j]).norm()))
    out_ = {"masks": min(limit, len(groups)), "pixels": float(np.mean(pixels))}
    if feats:
        out_["inception"] = float(np.mean(feats))
    return out_
