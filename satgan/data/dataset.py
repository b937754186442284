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
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from satgan.config import DataConfig
from satgan.data.pretransform import load_manifest
from satgan.errors import SatganError


class PairDataset(Dataset):
    """Mask/image pairs of one split of a pretransformed folder.

    Each item is a dict: ``mask`` ``(C, crop, crop)`` float in [-1, 1] with C = 1 or 3
    (``config.mask_channels``), ``image`` ``(3, crop, crop)`` float in [-1, 1], and
    ``index``. With ``augment=False`` the crop is centred and nothing is flipped (for
    validation).
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
        self.manifest = load_manifest(self.root)
        splits = self.manifest["splits"]
        if split not in splits:
            raise SatganError(f"{self.root}: no split {split!r}; it has {', '.join(splits)}")
        self.split = split
        self.info = splits[split]
        self.size = self.info["image_shape"][1]
        crop = self.config.crop
        if not 0 < crop <= self.size:
            raise SatganError(
                f"crop {crop} does not fit the {self.size}x{self.size} tiles of {self.root}; "
                f"use a crop of at most {self.size}, or pretransform with --size {crop} or more"
            )
        if self.config.mask_channels not in (1, 3):
            raise SatganError(f"mask_channels must be 1 or 3 (got {self.config.mask_channels})")
        self.epoch = 0
        self._images: np.ndarray | None = None
        self._masks: np.ndarray | None = None

    def __len__(self) -> int:
        return self.info["count"]

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's augmentations (the same epoch and seed give the same ones)."""
        self.epoch = epoch

    def sample_info(self, index: int) -> dict:
        """Where sample ``index`` came from: source file, city, tile row/column, building fraction."""
        return self.info["samples"][index]

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        # Opened on first use, so each DataLoader worker maps the files itself.
        if self._images is None:
            self._images = np.load(self.root / self.info["images"], mmap_mode="r")
            self._masks = np.load(self.root / self.info["masks"], mmap_mode="r")
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
        c, s = self.config.crop, self.size
        if self.augment:
            rng = np.random.default_rng([self.config.seed, self.epoch, index])
            y, x = rng.integers(0, s - c + 1, size=2)
        else:
            y = x = (s - c) // 2
        image = images[index, y : y + c, x : x + c]
        mask = masks[index, y : y + c, x : x + c]
        if self.augment:
            if self.config.flip and rng.random() < 0.5:
                image, mask = image[:, ::-1], mask[:, ::-1]
            if self.config.flip and rng.random() < 0.5:
                image, mask = image[::-1], mask[::-1]
            if self.config.rot90:
                k = int(rng.integers(4))
                image, mask = np.rot90(image, k), np.rot90(mask, k)
        image_t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)
        mask_t = torch.from_numpy(np.ascontiguousarray(mask))[None].float().div_(127.5).sub_(1.0)
        if self.config.mask_channels == 3:
            mask_t = mask_t.expand(3, c, c)
        return {"mask": mask_t, "image": image_t, "index": index}
