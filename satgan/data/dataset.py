"""``PairDataset``: training samples straight from the pretransformed arrays.

The arrays are opened with ``np.load(mmap_mode="r")``: nothing is read until a sample
is asked for, and then only its crop. Augmentation (joint random crop, flips, optional
90-degree rotations) is the same for mask and image. Its randomness is a function of
``(seed, epoch, index)`` only, so a run is reproducible for a seed, whatever the number
of DataLoader workers, and no two workers ever share augmentations. Call
:meth:`PairDataset.set_epoch` at each epoch, as with ``DistributedSampler``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from satgan import SatganError
from satgan.config import Config, DataConfig
from satgan.data.arrays import load_split, open_arrays


class PairDataset(Dataset):
    """Mask/image pairs of one split of a pretransformed folder.

    Each item is a dict: ``mask`` ``(C, crop, crop)`` float in [-1, 1] with C = 1 or 3
    (``config.mask_channels``), ``image`` ``(3, crop, crop)`` float in [-1, 1], and
    ``index``; after :meth:`set_labels`, also ``label``, the position of the sample's
    city among the labels. With ``augment=False`` the crop is centred and nothing is
    flipped (for validation).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        config: DataConfig | None = None,
        augment: bool = True,
    ):
        self.root = Path(root).expanduser()
        self.config = config or DataConfig()
        self.augment = augment
        self.manifest, self.info = load_split(self.root, split)
        self.split = split
        self.size = self.info["image_shape"][1]
        crop = self.config.crop
        if not 0 < crop <= self.size:
            raise SatganError(
                f"crop {crop} does not fit the {self.size}x{self.size} tiles of {self.root}; "
                f"use a crop of at most {self.size}, or pretransform with --size {crop} or more"
            )
        open_arrays(self.root, self.info)  # a damaged file is named now, not in a DataLoader worker
        self.epoch = 0
        self.labels: list[str] = []
        self._label_index: list[int] = []
        self._images: np.ndarray | None = None
        self._masks: np.ndarray | None = None

    def __len__(self) -> int:
        return self.info["count"]

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's augmentations (the same epoch and seed give the same ones)."""
        self.epoch = epoch

    @property
    def cities(self) -> list[str]:
        """Every sample's city (its style label), in order."""
        return [s.get("city", "") for s in self.info["samples"]]

    def set_labels(self, labels: list[str]) -> None:
        """Give each item a ``label``: its city's position in ``labels`` (a city not among
        them is an error naming it and the known ones)."""
        self.labels = list(labels)
        self._label_index = label_indices(self.cities, self.labels, f"{self.root} ({self.split} split): ")

    def sample_info(self, index: int) -> dict:
        """Where sample ``index`` came from: source file, city, tile row/column, building fraction."""
        return self.info["samples"][index]

    @property
    def pixel_scale(self) -> float | None:
        """Source pixels per tile pixel (median over the split), e.g. 3.5 for 1000 px Inria
        tiles resized to 286; ``None`` where the manifest records no tile bounds (an older format)."""
        sides = [max(b[1] - b[0], b[3] - b[2]) for b in (s.get("bounds") for s in self.info["samples"]) if b]
        return float(np.median(sides)) / self.size if sides else None

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        # Opened on first use, so each DataLoader worker maps the files itself.
        if self._images is None:
            self._masks, self._images = open_arrays(self.root, self.info)
        return self._images, self._masks

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_images"] = state["_masks"] = None
        return state

    def __getitem__(self, index: int) -> dict:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} samples")
        index %= n
        images, masks = self._arrays()
        c, s, cfg = self.config.crop, self.size, self.config
        if self.augment:
            draw = _random_words(cfg.seed, self.epoch, index)
            y, x = next(draw) % (s - c + 1), next(draw) % (s - c + 1)
            bits = next(draw)
            hflip, vflip = cfg.flip and bits & 1, cfg.flip and bits & 2
            turns = (bits >> 2) % 4 if cfg.rot90 else 0
        else:
            y = x = (s - c) // 2
            hflip = vflip = turns = 0
        # Copy the crop out of the memory map once; flip horizontally in torch (numpy is
        # slow at reversing 3-byte pixels); vertical flips and turns are free views; then
        # one pass to float CHW. About 5x faster than reading float32 files per item.
        image = np.ascontiguousarray(images[index, y : y + c, x : x + c])
        mask = np.ascontiguousarray(masks[index, y : y + c, x : x + c])
        if hflip:
            image = torch.from_numpy(image).flip(1).numpy()
            mask = torch.from_numpy(mask).flip(1).numpy()
        if vflip:
            image, mask = image[::-1], mask[::-1]
        if turns:
            image, mask = np.rot90(image, turns), np.rot90(mask, turns)
        image_t = torch.from_numpy(_to_model_range(image.transpose(2, 0, 1)))
        mask_t = torch.from_numpy(_to_model_range(mask[None]))
        if cfg.mask_channels == 3:
            mask_t = mask_t.expand(3, c, c)
        item = {"mask": mask_t, "image": image_t, "index": index}
        if self.labels:
            item["label"] = self._label_index[index]
        return item


def _to_model_range(pixels: np.ndarray) -> np.ndarray:
    """uint8 0-255 to a new float32 array in [-1, 1], in the input's memory order: for an
    image that is channels-last, which costs a third of a transposing copy; the
    DataLoader's batch stacking lays it out anyway."""
    out = pixels.astype(np.float32)
    out *= np.float32(1 / 127.5)
    out -= np.float32(1.0)
    return out


_MASK64 = (1 << 64) - 1


def _random_words(seed: int, epoch: int, index: int):
    """64-bit random words from (seed, epoch, index) alone (SplitMix64).

    A counter-based generator: no state is shared between samples or workers, and it
    costs a few microseconds where building a numpy Generator costs tens.
    """
    state = (seed * 0x9E3779B97F4A7C15 + epoch * 0xD1B54A32D192ED03 + index * 0x8CB92BA72F3D8DD7) & _MASK64
    while True:
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        yield z ^ (z >> 31)


def label_indices(names: Sequence[str], labels: Sequence[str], where: str = "") -> list[int]:
    """Each name's position in ``labels``; an unknown name is one clear error listing the known ones."""
    lookup = {label: i for i, label in enumerate(labels)}
    unknown = sorted({n for n in names if n not in lookup})
    if unknown:
        raise SatganError(f"{where}unknown {'label' if len(unknown) == 1 else 'labels'} "
                          f"{', '.join(map(repr, unknown))}; this model knows: {', '.join(labels)}")
    return [lookup[n] for n in names]


_EPOCH_STREAMS = 100_003  # a prime: seed * this + epoch gives every (seed, epoch) its own shuffle


class EpochSampler(Sampler[int]):
    """A shuffled order that depends only on (seed, epoch): the same in a resumed run.

    Under DDP, rank r takes every world-th index, so the ranks' batches together are
    exactly the single-process batch. ``start`` skips the samples of batches already
    trained in this epoch (resuming mid-epoch).
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1):
        self.size, self.seed, self.rank, self.world = size, seed, rank, world
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _order(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * _EPOCH_STREAMS + self.epoch)
        order = torch.randperm(self.size, generator=g).tolist()
        usable = len(order) - len(order) % self.world  # every rank gets as many samples
        return order[self.start : usable][self.rank :: self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self._order())

    def __len__(self) -> int:
        return len(self._order())


def with_city_labels(config: Config, cities: list[str]) -> Config:
    """``config`` with ``model.labels`` set to the training cities (sorted), where not given;
    given labels must include every training city."""
    if not config.model.labels:
        return replace(config, model=replace(config.model, labels=sorted(set(cities))))
    label_indices(cities, config.model.labels, "model.labels: the training split has ")
    return config
