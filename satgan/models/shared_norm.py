"""One set of instance-normalisation statistics for every window of a scene.

Instance norm normalises each input by its own mean and variance. For a seamless scene
that means every window rescales its features by statistics of its own content, and
the deepest layers (a few positions per window) decide differently wherever the
windows fall: a lattice. :class:`SharedStatistics` records the statistics over a sample
of the scene's windows once, then makes every instance norm use them, so the network
becomes the same fixed function at every window position (as batch norm in eval mode
already is).

The statistics are recorded in one pass, while the layers before each one still
normalise every window by itself; applied, those earlier layers change, so deeper
layers see inputs that are close to, not exactly, what was recorded. Recording layer by
layer would match exactly at several times the cost and was no better for the windows'
agreement (42.1 dB shift consistency against 42.9, docs/BENCHMARKS.md); on five unseen
scenes the one-pass statistics score as per-window normalisation does (docs/RESULTS.md).

Layers that see fewer than :data:`MIN_POSITIONS` positions per window (the deepest ones
of a small window: a 128 px window reaches 1x1 in a 16-wide U-Net) keep normalising each
window by itself: a variance pooled over a few windows of a few positions each is close
to 0, and dividing by it would blow every other window up (a 143 px scene drawn in four
128 px windows came out white).

    stats = SharedStatistics(net)
    with stats.recording():
        net(sample_windows)          # any number of calls
    with stats.applied():
        out = net(window)            # normalised with the recorded statistics
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

MIN_POSITIONS = 16  # a 4x4 feature map: fewer positions per window give no usable variance


def instance_norms(net: nn.Module) -> list[nn.InstanceNorm2d]:
    """The instance norms of ``net`` that normalise by their input's own statistics."""
    return [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d) and not m.track_running_stats]


class SharedStatistics:
    """Per-channel means and variances of every instance norm's input, pooled over all the
    windows seen while :meth:`recording`, and applied to every window in :meth:`applied`."""

    def __init__(self, net: nn.Module):
        self.layers = instance_norms(net)
        self._sums: dict[int, list] = {}  # layer index -> [sum of means, sum of mean squares, windows]

    @property
    def recorded(self) -> bool:
        return bool(self._sums)

    @contextmanager
    def recording(self) -> Iterator[SharedStatistics]:
        def hook(index: int):
            def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
                x = inputs[0].float()
                if x.shape[2] * x.shape[3] < MIN_POSITIONS:
                    return  # too small to share: this layer normalises each window by itself
                moments = [x.mean((2, 3)).sum(0), x.square().mean((2, 3)).sum(0), x.shape[0]]
                if index in self._sums:
                    moments = [a + b for a, b in zip(self._sums[index], moments)]
                self._sums[index] = moments
            return record

        handles = [m.register_forward_pre_hook(hook(i)) for i, m in enumerate(self.layers)]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def statistics(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``index``'s pooled mean and variance, shaped ``(1, C, 1, 1)``."""
        mean_sum, square_sum, count = self._sums[index]
        mean = mean_sum / count
        var = (square_sum / count - mean.square()).clamp_min(0)
        return mean[None, :, None, None], var[None, :, None, None]

    @contextmanager
    def applied(self) -> Iterator[SharedStatistics]:
        """Every instance norm normalises with the recorded statistics (nothing changes
        if none were recorded). The layers are restored on exit, to whatever they were
        (so uses nest)."""
        patched = []
        try:
            for index, layer in enumerate(self.layers):
                if index not in self._sums:
                    continue
                patched.append((layer, layer.__dict__.get("forward")))
                layer.forward = _fixed_norm(layer, *self.statistics(index))  # an instance attribute shadows the class's
            yield self
        finally:
            for layer, before in reversed(patched):
                if before is None:
                    del layer.forward
                else:
                    layer.forward = before


def _fixed_norm(layer: nn.InstanceNorm2d, mean: torch.Tensor, var: torch.Tensor):
    def forward(x: torch.Tensor) -> torch.Tensor:
        y = (x - mean.to(x.dtype)) * torch.rsqrt(var.to(x.dtype) + layer.eps)
        if layer.affine:
            y = y * layer.weight[None, :, None, None] + layer.bias[None, :, None, None]
        return y
    return forward
