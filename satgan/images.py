"""Converting images between their forms: uint8 on disk, [0, 1] for metrics, [-1, 1]
inside the models; and the control grids training shows."""

from __future__ import annotations

import numpy as np
import torch


def to_unit_range(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3) uint8`` to ``(N, 3, H, W)`` float in [0, 1] (what metrics take)."""
    return torch.from_numpy(np.require(images, requirements=["C", "W"])).permute(0, 3, 1, 2).float() / 255


def model_to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """Model images in [-1, 1] to [0, 1]."""
    return (images + 1) / 2


def control_grid(masks: torch.Tensor, fakes: torch.Tensor, reals: torch.Tensor) -> np.ndarray:
    """Rows of mask | generated | real (model tensors in [-1, 1]) as an ``(H, W, 3) uint8`` image."""
    from torchvision.utils import make_grid

    masks = masks.expand(-1, 3, -1, -1) if masks.shape[1] == 1 else masks
    rows = torch.stack([masks, fakes, reals], dim=1).flatten(0, 1)
    grid = make_grid(model_to_unit_range(rows), nrow=3, padding=2, pad_value=1.0).clamp(0, 1)
    return (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
