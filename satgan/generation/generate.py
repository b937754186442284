"""``satgan generate``: one generation mode over a mask file, a folder of masks or a
pretransformed split, written as files (in seamless mode a GeoTIFF with the input's geo
tags and a JPEG preview). The modes themselves are in :mod:`satgan.generation.modes`.
"""

from __future__ import annotations

import glob
import re
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path

import torch

from satgan import SatganError, SatganWarning
from satgan.atomic import check_output_folder
from satgan.config import GenerateConfig
from satgan.data.arrays import MANIFEST, load_split, open_arrays, split_samples, tile_names
from satgan.data.dataset import label_indices
from satgan.data.readers import read_geotags, read_mask
from satgan.data.sources import mask_files
from satgan.data.writers import refuse_foreign, scaled_geotags, write_geotiff, write_image
from satgan.generation.loading import Generator, file_style, load_generator, named_city, run_model
from satgan.generation.modes import check_window, generate_grid, generate_resize, generate_seamless


def _generate_file(gen: Generator, path: Path, cfg: GenerateConfig, out: Path, scale: float) -> list[Path]:
    gen = file_style(gen, path)
    mask = read_mask(path, strict=True)  # single-band (or equal RGB channels) and binary-like
    stem = path.stem
    if cfg.mode == "resize":
        target = out / f"{stem}.png"
        write_image(target, generate_resize(gen, mask))
        return [target]
    if cfg.mode == "grid":
        tiles, assembled = generate_grid(gen, mask, cfg.grid, cfg.batch_size)
        cols = tiles[-1][1] + 1
        written = []
        for r, c, image in tiles:
            written.append(out / f"{stem}-{r * cols + c + 1}.png")
            write_image(written[-1], image)
        written.append(out / f"{stem}-grid.png")
        write_image(written[-1], assembled)
        return written
    image = generate_seamless(gen, mask, scale, cfg.overlap, cfg.batch_size, cfg.window, cfg.shared_norm)
    tif, preview = out / f"{stem}.tif", out / f"{stem}.preview.jpg"
    ratio = (mask.shape[0] / image.shape[0], mask.shape[1] / image.shape[1])  # exact, after rounding
    write_geotiff(tif, image, scaled_geotags(read_geotags(path), ratio))
    write_image(preview, image, cfg.preview_size)
    return [tif, preview]


def _targets(out: Path, stems: list[str], mode: str) -> list[Path]:
    """The files :func:`_generate_file` would write for masks named ``stems`` that exist
    already (a grid's tile count depends on the mask, so its tiles are found by pattern)."""
    found = []
    for stem in stems:
        if mode == "grid":
            found += [p for p in out.glob(f"{glob.escape(stem)}-*.png")
                      if re.fullmatch(rf"{re.escape(stem)}-(\d+|grid)\.png", p.name)]
        else:
            found += [out / f"{stem}{suffix}" for suffix in
                      ((".png",) if mode == "resize" else (".tif", ".preview.jpg"))]
    return found


def _generate_split(gen: Generator, root: Path, cfg: GenerateConfig, out: Path) -> list[Path]:
    """Every tile of a pretransformed split at its training scale and size (centred crops)."""
    written = []
    for batch in split_samples(root, cfg.split, gen.window, cfg.batch_size, cfg.limit):
        for name, image in zip(batch["names"], run_model(gen, batch["masks"], batch["cities"])):
            written.append(out / f"{name}.png")
            write_image(written[-1], image)
    return written


def generate(cfg: GenerateConfig, gen: Generator | None = None) -> dict:
    """Run ``cfg.mode`` over ``cfg.input`` (a mask file, a folder of masks, or a
    pretransformed folder) into ``cfg.out``. A file that cannot be read is named in a
    warning and skipped; the rest are still generated. Returns what was written and what failed."""
    source = Path(cfg.input).expanduser()
    if not source.exists():
        raise SatganError(f"{source}: no such mask file or folder")
    # never the input, inside the input folder nor holding it
    out = check_output_folder(cfg.out, inputs=[("the input folder" if source.is_dir() else "the input mask", source),
                                               ("the checkpoint", cfg.checkpoint)])
    gen = gen or load_generator(cfg.checkpoint, cfg.device, cfg.dropout)
    if cfg.sharpen is not None:
        gen = replace(gen, sharpen=cfg.sharpen)
    if cfg.truncation != 1:
        if not gen.latent:
            raise SatganError(f"--truncation {cfg.truncation}: this model has no style code to scale "
                              "(train with model.latent)")
        gen = replace(gen, truncation=cfg.truncation)
    if cfg.dropout:
        torch.manual_seed(cfg.seed)
    if cfg.city == "all":
        if not gen.labels:
            raise SatganError("--city all: this model is not conditioned on a city (train with model.condition=city)")
        made = not out.exists()
        try:
            results = [generate(replace(cfg, city=city, out=str(out / city)), gen) for city in gen.labels]
        except SatganError:
            if made and out.is_dir() and not any(out.iterdir()):  # leave nothing behind that this call made
                out.rmdir()
            raise
        return {"written": [p for r in results for p in r["written"]],
                "failed": {f"{city}: {k}": v for city, r in zip(gen.labels, results) for k, v in r["failed"].items()},
                "scale": results[0]["scale"], "cities": list(gen.labels)}
    if cfg.city is not None or cfg.style_seed is not None:
        gen = gen.styled(cfg.city or gen.city, cfg.style_seed)
    scale = cfg.scale if cfg.scale is not None else (gen.pixel_scale or 1.0)
    if source.is_dir() and (source / MANIFEST).exists():
        if cfg.mode != "resize":
            raise SatganError(f"{source} holds pretransformed tiles: use --mode resize (tiles are generated as is)")
        manifest, info = load_split(source, cfg.split)
        open_arrays(source, info)  # damaged data is named before anything is written
        if gen.labels and gen.city is None:  # each tile drawn as its own city: every one must be known
            label_indices([s["city"] for s in info["samples"]], gen.labels, f"{source}: give --city; ")
        names = tile_names(manifest, cfg.split)[:cfg.limit]
        refuse_foreign([out / f"{name}.png" for name in names], "generate", cfg.overwrite)
        out.mkdir(parents=True, exist_ok=True)
        return {"written": [str(p) for p in _generate_split(gen, source, cfg, out)], "failed": {}, "scale": None}
    files = mask_files(source) if source.is_dir() else [source]
    if any(f.parent.resolve() == out.resolve() for f in files):
        raise SatganError(f"--out {out} is where the masks are: outputs would replace them; choose another folder")
    twins = sorted(stem for stem, n in Counter(f.stem for f in files).items() if n > 1)
    if twins:
        raise SatganError(f"{source}: masks {twins} share a name with different suffixes; their outputs would collide")
    if cfg.mode == "seamless" and cfg.window is not None:
        check_window(gen, cfg.window)  # before anything is written
    if gen.labels and gen.city is None:
        unnamed = [f.name for f in files if named_city(gen, f) is None]
        if unnamed:
            raise SatganError(f"{source}: which city to draw? {len(unnamed)} mask name(s) say none this model knows "
                              f"(e.g. {unnamed[0]}); give --city one of {', '.join(gen.labels)}, or --city all")
    refuse_foreign(_targets(out, [f.stem for f in files], cfg.mode), "generate", cfg.overwrite)
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    written, failed = [], {}
    for path in files:
        try:
            written += _generate_file(gen, path, cfg, out, scale)
        except SatganError as exc:
            if str(path) not in str(exc):  # name the file the error is about
                exc = SatganError(f"{path}: {exc}")
            if len(files) == 1:
                if made and not any(out.iterdir()):  # leave nothing behind that this call made
                    out.rmdir()
                raise exc from None
            failed[str(path)] = str(exc)
            warnings.warn(f"skipped: {exc}", SatganWarning, stacklevel=2)
    return {"written": [str(p) for p in written], "failed": failed, "scale": scale if cfg.mode == "seamless" else None}
