"""What a trained generator is measured against or sampled through: the flat-colour
baseline, and pix2pix's dropout as a source of noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from satgan.data.arrays import split_samples
from satgan.generation.loading import run_model


class FlatFill:
    """The flat-colour baseline: building pixels one colour, the rest another (blended by
    the mask's coverage at tile edges). Colours are the means of the real images."""

    def __init__(self, building: np.ndarray, background: np.ndarray):
        self.building, self.background = np.asarray(building, np.float32), np.asarray(background, np.float32)

    @classmethod
    def from_split(cls, root: str | Path, split: str, limit: int | None = None) -> FlatFill:
        weight = np.zeros(2)
        total = np.zeros((2, 3))
        for batch in split_samples(root, split, None, 64, limit):
            cover = batch["masks"].astype(np.float64)[..., None] / 255
            pixels = batch["images"].astype(np.float64)
            total[0] += (pixels * cover).sum((0, 1, 2))
            total[1] += (pixels * (1 - cover)).sum((0, 1, 2))
            weight += [cover.sum(), (1 - cover).sum()]
        means = total / np.maximum(weight, 1e-9)[:, None]
        return cls(means[0], means[1])

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        cover = masks.astype(np.float32)[..., None] / 255
        return (cover * self.building + (1 - cover) * self.background + 0.5).astype(np.uint8)


class DropoutNoise:
    """A generator loaded with its dropout on (``load_generator(..., dropout=True)``) whose
    noise is drawn from ``seed`` at each call: pix2pix's own source of variety."""

    def __init__(self, gen, seed: int):
        self.gen, self.seed, self.calls = gen, seed, 0
        self.labels, self.latent, self.city = gen.labels, gen.latent, gen.city
        self.window, self.multiple = gen.window, gen.multiple

    def __call__(self, masks: np.ndarray, cities: list[str] | None = None) -> np.ndarray:
        torch.manual_seed(self.seed * 1_000_003 + self.calls)
        self.calls += 1
        return run_model(self.gen, masks, cities)
