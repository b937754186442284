"""An exponential moving average of the generator's weights, the network that generates.

Averaging the weights over the last few hundred steps smooths away the oscillation a
small-data GAN's generator goes through, at no training cost. The decay warms up
(``(1 + n) / (10 + n)`` after n updates, as TensorFlow's ``ExponentialMovingAverage``)
so that short runs are not dominated by the random initial weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of ``net`` whose weights follow ``net``'s with ``decay`` per update."""

    def __init__(self, net: nn.Module, decay: float):
        self.net = copy.deepcopy(net).eval().requires_grad_(False)
        self.decay, self.updates = decay, 0

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for mine, theirs in zip(self.net.parameters(), net.parameters(), strict=True):
            mine.lerp_(theirs, 1 - decay)
        for mine, theirs in zip(self.net.buffers(), net.buffers(), strict=True):
            mine.copy_(theirs)  # normalisation statistics are averages already

    def state_dict(self) -> dict:
        return {"weights": self.net.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["weights"])
        self.updates = state["updates"]
