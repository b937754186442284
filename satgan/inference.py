"""Generation from masks with a trained checkpoint: resized, as an NxN grid, or seamless.

``load_generator`` rebuilds the generator a checkpoint describes; it turns building
masks (``bool``, or uint8 coverage 0-255) into ``uint8`` RGB images. Three modes:

- :func:`generate_resize`: the whole mask resized to the model's input size.
- :func:`generate_grid`: NxN tiles, each resized and generated, and the tiles reassembled.
- :func:`generate_seamless`: a sliding window over a mask of any size at a chosen pixel
  scale, with overlapping windows blended by Hann (sin^2) weights, so no window border
  shows. It streams by rows of windows: beside the uint8 output, only one band of rows
  as tall as a window is held in float32.

:func:`generate` runs one of these over a mask file, a folder of masks or a pretransformed
split and writes the results (a GeoTIFF with the input's geo tags and a JPEG preview in
seamless mode).
"""

from __future__ import annotations

import math
import os
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from satgan.atomic import check_output_folder
from satgan.checkpoint import load_checkpoint
from satgan.config import Config, GenerateConfig
from satgan.data.arrays import MANIFEST, load_split, open_arrays, split_samples
from satgan.data.labels import label_indices
from satgan.data.readers import read_geotags, read_mask
from satgan.data.sources import inria_city, mask_files
from satgan.data.tiling import grid_shape, mask_coverage, tile_bounds
from satgan.data.writers import scaled_geotags, write_geotiff, write_image
from satgan.errors import SatganError, SatganWarning
from satgan.metrics import shifted_psnr
from satgan.models.conditioning import StyledGenerator, noise_fields, random_codes
from satgan.models.factory import build_generator, input_multiple
from satgan.models.filters import unsharp_mask
from satgan.models.shared_norm import SharedStatistics
from satgan.runtime import resolve_device
from satgan.settings import defaults

OVERLAP = defaults(GenerateConfig)["overlap"]
CONTEXT = 768  # seamless windows' side by default, when the scene allows: see seamless_window
# A scene's shared normalisation statistics come from a quarter of its windows (rounded
# up), at most 8: about a quarter more work on a scene of tens of windows, a few percent
# on hundreds, half on a scene of two (one window alone records nothing): see generate_seamless
STAT_SHARE, STAT_WINDOWS = 0.25, 8


# -- the generator ----------------------------------------------------------------------------
@dataclass
class Generator:
    """A generator rebuilt from a checkpoint, ready to turn masks into images."""

    net: nn.Module
    config: Config
    device: torch.device
    window: int  # the training crop: the input side generation uses by default
    multiple: int  # input sides must be multiples of this (2^depth for a U-Net)
    pixel_scale: float | None  # source pixels per training pixel, when the checkpoint knows
    labels: tuple[str, ...] = ()  # the cities a conditioned generator draws (empty: not conditioned)
    latent: int = 0  # length of its style code (0: none)
    city: str | None = None  # the city every image is drawn as, unless a call gives one per image
    code: torch.Tensor | None = None  # the style code of every image (None: zeros, the average style)
    noise_seed: int = 0  # a generator fed noise: where its noise comes from (the same seed, the same images)
    sharpen: float = 0.0  # unsharp-mask amount of every output (model.sharpen; 0: the network's own)
    # the style code scaled by this (StyleGAN's truncation): 1 its full variety, 0 the average style; the
    # noise stays at the strength training saw (scaled noise is an input the generator never met)
    truncation: float = 1.0

    def styled(self, city: str | None = None, seed: int | None = None) -> Generator:
        """This generator drawing every image as ``city``, with the style code and the noise
        drawn from ``seed`` (the same seed, the same images; ``None``: the average code and
        noise seed 0). One style for every image and window: a seamless scene stays one city."""
        if city is not None:
            if not self.labels:
                raise SatganError(f"this model is not conditioned on a city (asked for {city!r}); "
                                  "train with model.condition=city")
            label_indices([city], self.labels, "city: ")
        if seed is not None and not (self.latent or self.noise):
            raise SatganError("this model has no style code or noise to draw (train with model.latent or model.noise)")
        code = random_codes(1, self.latent, seed)[0] if seed is not None and self.latent else None
        return replace(self, city=city, code=code, noise_seed=seed or 0)

    @property
    def noise(self) -> int:
        """Channels of per-pixel noise the generator takes beside the mask (0: none)."""
        return getattr(self.net, "noise", 0)

    def noise_field(self, height: int, width: int) -> torch.Tensor | None:
        """The noise of a whole ``height`` x ``width`` scene ``(channels, H, W)``, from
        :attr:`noise_seed`; windows cut theirs from it, so overlapping windows see the same
        noise where they overlap. ``None`` for a generator without noise."""
        return noise_fields(1, self.noise, height, width, self.noise_seed)[0] if self.noise else None

    @torch.inference_mode()
    def __call__(self, masks: np.ndarray, cities: list[str] | None = None,
                 noise: torch.Tensor | None = None) -> np.ndarray:
        """``(N, H, W)`` masks (bool, or uint8 coverage 0-255) to ``(N, H, W, 3) uint8`` images;
        a conditioned generator draws each as its city in ``cities`` (default: :attr:`city`);
        a generator fed noise takes ``noise`` ``(N, channels, H, W)`` (default: each image's
        drawn from :attr:`noise_seed` and its mask's bytes, so it does not depend on the
        batch)."""
        if masks.dtype == bool:
            masks = masks.view(np.uint8) * np.uint8(255)
        x = torch.from_numpy(np.require(masks, requirements=['C', 'W'])).to(self.device, torch.float32)[:, None]
        x = x / 127.5 - 1
        if self.config.data.mask_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if isinstance(self.net, StyledGenerator):
            if self.noise and noise is None:  # each image's own, from its mask: batching changes nothing
                noise = torch.cat([noise_fields(1, self.noise, *m.shape, self.noise_seed * 1_000_003 + zlib.crc32(m))
                                   for m in np.ascontiguousarray(masks)])
            y = self.net(x, self._labels(len(x), cities), self._codes(len(x)), noise)
        else:
            y = self.net(x)
        y = unsharp_mask(y.float(), self.sharpen).clamp(-1, 1)
        return ((y + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def _labels(self, n: int, cities: list[str] | None) -> torch.Tensor | None:
        if not self.labels:
            return None
        if cities is None:
            if self.city is None:
                raise SatganError(f"this model draws a chosen city: give one of {', '.join(self.labels)} "
                                  "(--city NAME, or --city all)")
            cities = [self.city] * n
        return torch.tensor(label_indices(cities, self.labels, "city: "), device=self.device)

    def _codes(self, n: int) -> torch.Tensor | None:
        if not self.latent or self.code is None:
            return None
        return (self.code * self.truncation).to(self.device).expand(n, self.latent)


def as_city(model, city: str):
    """``model`` drawing ``city`` where it is a conditioned generator that was given none
    (an unknown city is an error naming the known ones); any other model as it is."""
    if not getattr(model, "labels", ()) or model.city is not None:
        return model
    label_indices([city], model.labels, "city: ")
    return replace(model, city=city)


def run_model(model, masks: np.ndarray, cities: list[str] | None = None,
              noise: torch.Tensor | None = None) -> np.ndarray:
    """``model`` over ``masks``; a conditioned generator draws each mask as its city in
    ``cities``, unless it was given one city for all (:meth:`Generator.styled`); a
    generator fed noise takes ``noise``; baselines ignore both."""
    if noise is not None:
        return model(masks, cities if getattr(model, "city", None) is None else None, noise)
    if getattr(model, "labels", ()) and getattr(model, "city", None) is None:
        return model(masks, cities)
    return model(masks)


def generator_from_config(config: Config, device: str = "auto", seed: int = 0) -> Generator:
    """An untrained generator of ``config``'s architecture (initialized from ``seed``):
    the baseline a trained one must beat."""
    torch.manual_seed(seed)
    return _ready(build_generator(config), config, device, None, False)


def load_generator(path: str | os.PathLike, device: str = "auto", dropout: bool = False) -> Generator:
    """The generator of checkpoint ``path``, in eval mode (deterministic). ``dropout``
    keeps pix2pix's dropout active as a noise source (normalization stays in eval mode)."""
    ckpt = load_checkpoint(path)
    net = build_generator(ckpt.config)
    try:
        net.load_state_dict(ckpt.generator)
    except (RuntimeError, TypeError, AttributeError) as exc:
        weights = ckpt.generator if isinstance(ckpt.generator, dict) else {}
        missing = [k for k in net.state_dict() if k not in weights]
        detail = f"missing {', '.join(missing[:5])}" if missing else str(exc).splitlines()[0]
        raise SatganError(f"{ckpt.path}: the generator weights do not fit the checkpoint's own config "
                          f"({detail})") from None
    return _ready(net, config=ckpt.config, device=device, pixel_scale=ckpt.pixel_scale, dropout=dropout)


def _ready(net: nn.Module, config: Config, device: str, pixel_scale: float | None, dropout: bool) -> Generator:
    dev = resolve_device(device)
    net = net.to(dev).eval()
    if dropout:
        for m in net.modules():
            if isinstance(m, nn.Dropout):
                m.train()
    m = config.model
    labels = tuple(m.labels) if m.condition == "city" else ()
    return Generator(net, config, dev, config.data.crop, input_multiple(config), pixel_scale, labels, m.latent,
                     sharpen=m.sharpen)


def in_batches(model, masks: list[np.ndarray] | np.ndarray, batch_size: int,
               cities: list[str] | None = None, noise: list[torch.Tensor] | None = None) -> np.ndarray:
    """``model`` (masks to images, a :class:`Generator` or a baseline) over ``masks`` in
    batches (each drawn as its city in ``cities``, for a conditioned generator, and with
    its ``noise``, for a generator fed noise)."""
    return np.concatenate([run_model(model, np.stack(masks[i : i + batch_size]),
                                     cities[i : i + batch_size] if cities is not None else None,
                                     torch.stack(noise[i : i + batch_size]) if noise is not None else None)
                           for i in range(0, len(masks), batch_size)])


# -- modes ----------------------------------------------------------------------------------
def generate_resize(gen: Generator, mask: np.ndarray) -> np.ndarray:
    """The whole mask resized (area coverage) to the model's input size, generated."""
    return gen(mask_coverage(mask, gen.window)[None])[0]


def generate_grid(gen: Generator, mask: np.ndarray, grid: int, batch_size: int = 8) -> tuple[list, np.ndarray]:
    """NxN tiles (N across the shorter side), each resized to the input size and generated.
    Returns ``[(row, col, image), ...]`` and the tiles reassembled in scene order."""
    rows, cols = grid_shape(*mask.shape, grid)
    if mask.shape[0] < rows or mask.shape[1] < cols:
        raise SatganError(f"a {grid}x{grid} grid cuts a {mask.shape[0]}x{mask.shape[1]} mask into empty tiles")
    bounds = tile_bounds(*mask.shape, grid)
    tiles = [mask_coverage(mask[y0:y1, x0:x1], gen.window) for _, _, y0, y1, x0, x1 in bounds]
    images = in_batches(gen, tiles, batch_size)
    w = gen.window
    assembled = np.zeros((rows * w, cols * w, 3), np.uint8)
    for (r, c, *_), image in zip(bounds, images):
        assembled[r * w : (r + 1) * w, c * w : (c + 1) * w] = image
    return [(r, c, image) for (r, c, *_), image in zip(bounds, images)], assembled


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Window offsets covering ``length`` with at least ``overlap`` (a fraction) between
    neighbours, spread evenly so the first starts at 0 and the last ends at ``length``."""
    if length <= window:
        return [0]
    step = window * (1 - overlap)
    n = math.ceil((length - window) / step - 1e-9) + 1
    return [round(i * (length - window) / (n - 1)) for i in range(n)]


def hann_weights(window: int) -> np.ndarray:
    """2-D blending weights, sin^2 of the half-pixel-shifted position: smooth, largest in
    the middle, small but never zero at the border (so a border pixel covered by one
    window only keeps its value)."""
    w = np.sin(np.pi * (np.arange(window) + 0.5) / window) ** 2
    return np.outer(w, w).astype(np.float32)


def check_window(gen: Generator, window: int) -> int:
    """``window`` if this generator can take it (a positive multiple of its input multiple)."""
    if window < 1 or window % gen.multiple:
        raise SatganError(f"window {window} must be a positive multiple of {gen.multiple} for this generator")
    return window


def seamless_window(gen: Generator, height: int, width: int, window: int | None = None) -> int:
    """The window side for a seamless scene of ``height`` x ``width`` output pixels:
    ``window`` if given (checked), else the largest multiple of the generator's input
    multiple up to ``max(CONTEXT, gen.window)`` that fits the scene. Windows larger than
    the training crop see more context around every pixel, so neighbouring windows agree
    (no lattice; docs/BENCHMARKS.md), at about the same cost per output pixel."""
    if window is not None:
        win = check_window(gen, window)
    else:
        win = min(max(CONTEXT, gen.window), height, width) // gen.multiple * gen.multiple
        win = max(win, gen.window)
    if height < win or width < win:
        raise SatganError(
            f"the scene is {height}x{width} output pixels: smaller than the {win}-pixel window; "
            f"use a smaller scale or the resize mode"
        )
    return win


def sample_windows(ys: list[int], xs: list[int], count: int) -> list[tuple[int, int]]:
    """``count`` window positions spread evenly over the row-major grid ``ys`` x ``xs``
    (all of them when there are no more; the middle one when ``count`` is 1)."""
    every = [(y, x) for y in ys for x in xs]
    if len(every) <= count:
        return every
    if count == 1:
        return [every[len(every) // 2]]
    return [every[round(i * (len(every) - 1) / (count - 1))] for i in range(count)]


def generate_seamless(gen: Generator, mask: np.ndarray, scale: float = 1.0, overlap: float = OVERLAP,
                      batch_size: int = 8, window: int | None = None, shared_norm: bool = True,
                      noise: torch.Tensor | None = None) -> np.ndarray:
    """An image of the whole mask at ``1/scale`` of its size (``scale`` = mask pixels per
    output pixel; the checkpoint's ``pixel_scale`` reproduces the training scale).

    Windows of ``window`` pixels (default: :func:`seamless_window`) overlap by at least
    ``overlap`` and are blended with Hann weights. Rows of windows are generated one at
    a time; finished output rows are written to the uint8 result as soon as no later
    window touches them, so float memory is one band of ``window`` rows. ``batch_size``
    counts training-crop-sized windows per forward pass (fewer larger windows go at once,
    so memory does not grow with the window).

    ``shared_norm``: a generator with instance norm first records its normalisation
    statistics over a quarter of the windows (rounded up, at most 8) spread over the scene, then generates
    every window with those (:class:`~satgan.models.shared_norm.SharedStatistics`), so
    no window rescales its features by its own content and the windows agree (no
    lattice; docs/BENCHMARKS.md). Off: each window normalises itself, as in training.

    A generator fed noise (``model.noise``) takes ``noise`` ``(channels, H, W)`` at the
    output size (default: :meth:`Generator.noise_field`): one field for the whole scene,
    which every window cuts its own from, so windows agree where they overlap.
    """
    if not 0 <= overlap < 1:
        raise SatganError(f"overlap must be in [0, 1) (got {overlap})")
    if scale <= 0:
        raise SatganError(f"scale must be positive (got {scale})")
    h, w = max(1, round(mask.shape[0] / scale)), max(1, round(mask.shape[1] / scale))
    try:
        win = seamless_window(gen, h, w, window)
    except SatganError as exc:
        raise SatganError(f"the mask is {mask.shape[0]}x{mask.shape[1]} pixels at scale {scale:g}: {exc}") from None
    small = mask_coverage(mask, (h, w))  # at scale 1, the mask as 0/255
    per_pass = max(1, batch_size * gen.window**2 // win**2)
    ys, xs = window_starts(h, win, overlap), window_starts(w, win, overlap)
    field = noise if noise is not None else gen.noise_field(h, w)  # one noise for the whole scene
    if field is not None and tuple(field.shape[1:]) != (h, w):
        raise SatganError(f"noise of {tuple(field.shape[1:])} pixels for a {h}x{w} scene")

    def windows(at: list[tuple[int, int]]) -> tuple[list[np.ndarray], list[torch.Tensor] | None]:
        crops = [small[y : y + win, x : x + win] for y, x in at]
        return crops, ([field[:, y : y + win, x : x + win] for y, x in at] if field is not None else None)

    stats = SharedStatistics(gen.net)
    if shared_norm and stats.layers and len(ys) * len(xs) > 1:  # one window's own statistics are its own
        with stats.recording():
            count = min(STAT_WINDOWS, math.ceil(len(ys) * len(xs) * STAT_SHARE))
            crops, noise = windows(sample_windows(ys, xs, count))
            in_batches(gen, crops, per_pass, noise=noise)
    with stats.applied():
        return _blend_windows(gen, small, win, ys, xs, per_pass, windows)


def _blend_windows(gen: Generator, small: np.ndarray, win: int, ys: list[int], xs: list[int],
                   per_pass: int, windows) -> np.ndarray:
    h, w = small.shape
    weight = hann_weights(win)
    out = np.empty((h, w, 3), np.uint8)
    acc = np.zeros((win, w, 3), np.float32)  # the band of rows [ys[k], ys[k] + win)
    wsum = np.zeros((win, w), np.float32)
    for k, y in enumerate(ys):
        tiles, noise = windows([(y, x) for x in xs])
        images = in_batches(gen, tiles, per_pass, noise=noise)
        for x, image in zip(xs, images):
            acc[:, x : x + win] += image.astype(np.float32) * weight[:, :, None]
            wsum[:, x : x + win] += weight
        done = (ys[k + 1] if k + 1 < len(ys) else y + win) - y  # rows no later window touches
        out[y : y + done] = np.clip(acc[:done] / wsum[:done, :, None] + 0.5, 0, 255).astype(np.uint8)
        acc[: win - done], wsum[: win - done] = acc[done:], wsum[done:]  # numpy copies overlapping slices safely
        acc[win - done :], wsum[win - done :] = 0, 0
    return out


def shifted_scenes(gen: Generator, mask: np.ndarray, scale: float = 1.0, overlap: float = OVERLAP,
                   batch_size: int = 8, shift: int | None = None, window: int | None = None,
                   shared_norm: bool = True) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The seamless scene of ``mask`` generated twice, the second time with every window
    ``shift`` output pixels further on (default: half a window stride, the worst case for
    a lattice). Returns both scenes, the shift (pixel (y + shift, x + shift) of the first
    shows what pixel (y, x) of the second does) and the window side both used.

    The mask is brought to the output scale once and the second scene cut from that, so
    both see exactly the same input pixels at any ``scale`` (cropping the full-size mask
    would need a shift that is a whole number of mask pixels too).
    """
    if scale <= 0:
        raise SatganError(f"scale must be positive (got {scale})")
    small = mask_coverage(mask, (max(1, round(mask.shape[0] / scale)), max(1, round(mask.shape[1] / scale))))
    win = seamless_window(gen, *small.shape, window)
    shift = shift or max(1, round(win * (1 - overlap)) // 2)
    if window is None and min(small.shape) - shift < win:  # one window for both: one the shifted scene holds
        win = seamless_window(gen, small.shape[0] - shift, small.shape[1] - shift)
    field = gen.noise_field(*small.shape)  # the second scene sees the same noise at the same place
    first = generate_seamless(gen, small, 1.0, overlap, batch_size, win, shared_norm, field)
    second = generate_seamless(gen, small[shift:, shift:], 1.0, overlap, batch_size, win, shared_norm,
                               field[:, shift:, shift:] if field is not None else None)
    return first, second, shift, win


def shift_consistency(gen: Generator, mask: np.ndarray, scale: float = 1.0, overlap: float = OVERLAP,
                      batch_size: int = 8, shift: int | None = None, window: int | None = None,
                      shared_norm: bool = True) -> float:
    """Whether a seamless scene depends on where its windows fall: PSNR in dB between the
    two :func:`shifted_scenes` on their common area, away from the borders (half a window:
    a pixel nearer the scene's edge is generated by windows that reach the edge, with
    less context in one scene than in the other). A generator whose output does not
    depend on the windows gives a high figure; one that decides per window shows a
    lattice and a low one."""
    first, second, shift, win = shifted_scenes(gen, mask, scale, overlap, batch_size, shift, window, shared_norm)
    return shifted_psnr(first, second, shift, shift, margin=win // 2)


# -- files ----------------------------------------------------------------------------------
def named_city(gen: Generator, path: Path) -> str | None:
    """The city an Inria-style mask name says (``austin12``), if this generator knows it."""
    city = inria_city(path.stem)
    return city if city in gen.labels else None


def file_style(gen: Generator, path: str | os.PathLike) -> Generator:
    """``gen`` drawing the mask file ``path`` as the city its Inria-style name says
    (``austin12``), where it is conditioned and was given no city."""
    path = Path(path)
    if not gen.labels or gen.city is not None:
        return gen
    city = named_city(gen, path)
    if city is None:
        raise SatganError(f"{path}: which city to draw? The name says none this model knows; "
                          f"give --city one of {', '.join(gen.labels)}, or --city all")
    return as_city(gen, city)


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
    out = check_output_folder(cfg.out)
    if source.is_dir() and (out.resolve() == source.resolve() or source.resolve() in out.resolve().parents):
        raise SatganError(f"--out {out} is inside the input folder {source}: outputs would mix with the data; "
                          "choose another folder")
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
        info = load_split(source, cfg.split)[1]
        open_arrays(source, info)  # damaged data is named before anything is written
        if gen.labels and gen.city is None:  # each tile drawn as its own city: every one must be known
            label_indices([s["city"] for s in info["samples"]], gen.labels, f"{source}: give --city; ")
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
