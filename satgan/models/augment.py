"""Differentiable augmentation of the discriminator's inputs (DiffAugment, Zhao et al. 2020).

With a few hundred training pairs a discriminator memorises the real images and its
verdicts stop teaching the generator anything. Showing it randomly translated,
cut-out and recoloured pairs, the same transform for the real and the generated pair
of a sample and for the mask and the image of a pair, keeps it honest; since every
transform is differentiable, the generator still learns through it. Images are in
[-1, 1]; the mask keeps its colour (only the geometric transforms touch it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TRANSLATION = 1 / 8  # largest shift, as a fraction of the side
CUTOUT = 1 / 2  # side of the cut-out square, as a fraction of the side


def augment_pairs(masks: torch.Tensor, images: list[torch.Tensor], policies: list[str]) -> tuple:
    """``masks`` (B, C, H, W) and each of ``images`` (B, 3, H, W), transformed together:
    sample i gets one draw of each policy, applied to its mask and to image i of every
    tensor in ``images`` (the generated and the real one). Returns (masks, [images])."""
    if not policies:
        return masks, images
    b, _, h, w = masks.shape
    device = masks.device
    if "color" in policies:
        bright = torch.rand(b, 1, 1, 1, device=device) - 0.5
        sat = torch.rand(b, 1, 1, 1, device=device) * 2
        contrast = torch.rand(b, 1, 1, 1, device=device) + 0.5
        images = [_color(x, bright, sat, contrast) for x in images]
    if "translation" in policies:
        shift = (torch.rand(b, 2, device=device) * 2 - 1) * TRANSLATION * 2  # in [-1, 1] grid units
        theta = torch.zeros(b, 2, 3, device=device)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, :, 2] = shift
        grid = F.affine_grid(theta, list(masks.shape), align_corners=False)
        move = lambda x: F.grid_sample(x, grid.to(x.dtype), mode="nearest", padding_mode="zeros",  # noqa: E731
                                       align_corners=False)
        masks, images = move(masks), [move(x) for x in images]
    if "cutout" in policies:
        ch, cw = int(h * CUTOUT), int(w * CUTOUT)
        cy = torch.randint(0, h - ch + 1, (b, 1, 1), device=device)
        cx = torch.randint(0, w - cw + 1, (b, 1, 1), device=device)
        ys = torch.arange(h, device=device).view(1, h, 1)
        xs = torch.arange(w, device=device).view(1, 1, w)
        keep = ~((ys >= cy) & (ys < cy + ch) & (xs >= cx) & (xs < cx + cw))
        keep = keep[:, None].to(masks.dtype)
        masks, images = masks * keep, [x * keep.to(x.dtype) for x in images]
    return masks, images


def _color(x: torch.Tensor, bright: torch.Tensor, sat: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
    x = x + bright.to(x.dtype)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * sat.to(x.dtype) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * contrast.to(x.dtype) + mean
