"""Fixed image filters on model tensors ``(N, C, H, W)``: a Gaussian blur, and the unsharp
mask that generation can apply to a generator's output (``model.sharpen``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The unsharp mask's blur, in output pixels: the detail an L1-trained generator leaves
# soft is 2-4 px across (docs/RESULTS.md, "Realism on geocompass").
SHARPEN_SIGMA = 2.0


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each channel blurred by a Gaussian of ``sigma`` pixels (separable, reflect padding)."""
    radius = max(1, min(int(3 * sigma + 0.5), min(x.shape[-2:]) - 1))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = (kernel / kernel.sum()).repeat(x.shape[1], 1, 1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(-1, 1, 1, 2 * radius + 1),
                 groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(-1, 1, 2 * radius + 1, 1),
                    groups=x.shape[1])


def unsharp_mask(x: torch.Tensor, amount: float, sigma: float = SHARPEN_SIGMA) -> torch.Tensor:
    """``x`` plus ``amount`` times what a blur of ``sigma`` pixels removes from it: edges and
    detail about ``sigma`` to ``2 sigma`` pixels across gain contrast, uniform areas and
    the mean stay as they are. ``amount`` 0 returns ``x`` itself; the result is not clamped."""
    if amount == 0:
        return x
    return x + amount * (x - gaussian_blur(x, sigma))
