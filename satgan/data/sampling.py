"""The order training visits samples in: reproducible per (seed, epoch), shardable, resumable."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

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
