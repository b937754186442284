"""The building segmenter: a light U-Net from an RGB image to one channel of building logits.

Lighter than the pix2pix U-Net the generator uses: a stride-2 stem, so the network works
at half resolution and its logits are upsampled bilinearly at the end (buildings are tens
of pixels across; the half-resolution boundary costs little IoU and saves three quarters
of the work), then 3x3 convolutions in pairs, max-pool down, bilinear up, widths
``w, 2w, 4w, 8w``. It has to learn from a few hundred tiles in minutes on a CPU, and it
judges images, it does not draw them. Inputs are ``(B, 3, H, W)`` in [-1, 1] with H and W
multiples of :data:`MULTIPLE`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 3  # poolings after the stem: the bottom level is 1/16 of the input
MULTIPLE = 2 ** (LEVELS + 1)


def _conv(in_ch: int, out_ch: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True)]


def _double_conv(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(*_conv(in_ch, out_ch, stride), *_conv(out_ch, out_ch))


class BuildingSegmenter(nn.Module):
    """U-Net of base width ``width``; returns ``(B, 1, H, W)`` logits for ``(B, 3, H, W)`` inputs."""

    def __init__(self, width: int = 16):
        super().__init__()
        widths = [width * 2**i for i in range(LEVELS + 1)]
        self.down = nn.ModuleList([_double_conv(3, widths[0], stride=2)] +
                                  [_double_conv(widths[i], widths[i + 1]) for i in range(LEVELS)])
        self.up = nn.ModuleList([_double_conv(widths[i + 1] + widths[i], widths[i]) for i in range(LEVELS)])
        self.head = nn.Conv2d(widths[0], 1, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in reversed(self.up):
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return F.interpolate(self.head(x), size=size, mode="bilinear", align_corners=False)
