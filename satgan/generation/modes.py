"""The three ways to generate one mask: resized, as an NxN grid, or seamless.

- :func:`generate_resize`: the whole mask resized to the model's input size.
- :func:`generate_grid`: NxN tiles, each resized and generated, and the tiles reassembled.
- :func:`generate_seamless`: a sliding window over a mask of any size at a chosen pixel
  scale, with overlapping windows blended by Hann (sin^2) weights, so no window border
  shows. It streams by rows of windows: beside the uint8 output, only one band of rows
  as tall as a window is held in float32.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from satgan import SatganError
from satgan.config import GenerateConfig
from satgan.data.readers import memory_bytes
from satgan.data.tiling import grid_shape, mask_coverage, tile_bounds
from satgan.generation.loading import Generator, in_batches
from satgan.models.shared_norm import SharedStatistics
from satgan.settings import defaults

OVERLAP = defaults(GenerateConfig)["overlap"]
CONTEXT = 768  # seamless windows' side by default, when the scene allows: see seamless_window
# A scene's shared normalisation statistics come from a quarter of its windows (rounded
# up), at most 8: about a quarter more work on a scene of tens of windows, a few percent
# on hundreds, half on a scene of two (one window alone records nothing): see generate_seamless
STAT_SHARE, STAT_WINDOWS = 0.25, 8


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
    need = h * w * (3 + 4)  # the image, and the mask's coverage as floats
    if need > memory_bytes() // 4:
        raise SatganError(f"the mask is {mask.shape[0]}x{mask.shape[1]} pixels at scale {scale:g}: a scene of {h}x{w} "
                          f"pixels ({need / 2**30:.1f} GiB) does not fit in a quarter of this machine's memory; use "
                          "a larger scale (mask pixels per output pixel)")
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
