"""Building segmenters: networks from an RGB image to one channel of building logits, in
three builds that share as little as possible, because a network that takes part in
training must never be the one that scores it (docs/evaluation.md, "Judges"):

- ``unet`` (:class:`BuildingSegmenter`): the reference segmenter, the first judge;
- ``dilated`` (:class:`DilatedSegmenter`): the second judge, a dilated residual network with
  group norm, no pooling pyramid and no skips, trained from another seed;
- ``lite1`` (:class:`LiteSegmenter`): a light decoder on frozen ImageNet EfficientNet-Lite1
  features, the segmenter of the alignment loss (``loss.seg_weight``).

The U-Net is lighter than the pix2pix U-Net the generator uses: a stride-2 stem, so the network works
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


class _DilatedBlock(nn.Module):
    def __init__(self, channels: int, dilation: int):
        super().__init__()
        groups = max(1, channels // 8)
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.GroupNorm(groups, channels), nn.SiLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.GroupNorm(groups, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x + self.body(x))


class DilatedSegmenter(nn.Module):
    """Two stride-2 convolutions to 1/4 of the input, then residual blocks of growing
    dilation (1, 2, 4, 8, 1: a receptive field of about 250 px without pooling) at that
    resolution, a 1x1 head and a bilinear upsampling. Group norm and SiLU where the U-Net
    has batch norm and ReLU: a judge built unlike the first one."""

    DILATIONS = (1, 2, 4, 8, 1)

    def __init__(self, width: int = 16):
        super().__init__()
        wide = 2 * width
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.SiLU(inplace=True),
                                  nn.Conv2d(width, wide, 3, 2, 1, bias=False), nn.GroupNorm(max(1, wide // 8), wide),
                                  nn.SiLU(inplace=True))
        self.blocks = nn.Sequential(*[_DilatedBlock(wide, d) for d in self.DILATIONS])
        self.head = nn.Conv2d(wide, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.head(self.blocks(self.stem(x))), size=x.shape[-2:], mode="bilinear",
                             align_corners=False)


class LiteSegmenter(nn.Module):
    """A feature-pyramid decoder (1x1 laterals of ``width`` channels, summed top-down, a 3x3
    convolution, a 1x1 head at 1/4 of the input) on frozen EfficientNet-Lite1 features.
    The encoder stays in eval mode and takes no gradient; :meth:`load_encoder` copies its
    ImageNet weights in (the decoder alone is trained)."""

    def __init__(self, width: int = 16):
        super().__init__()
        from satgan.models.efficientnet_lite import LITE1, TAP_CHANNELS, EfficientNetLite

        self.encoder = EfficientNetLite(LITE1).requires_grad_(False)
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in TAP_CHANNELS)
        self.fuse = nn.Sequential(*_conv(width, width))
        self.head = nn.Conv2d(width, 1, 1)

    def load_encoder(self, path=None) -> LiteSegmenter:
        from satgan.models.efficientnet_lite import LITE1, find_lite_weights, load_lite_weights

        found = find_lite_weights(LITE1, path, setting="the Lite1 weights file",
                                  needed_by="the lite1 segmenter (loss.seg_weight)")
        load_lite_weights(self.encoder, found, setting="the Lite1 weights file")
        return self

    def train(self, mode: bool = True) -> LiteSegmenter:
        super().train(mode)
        self.encoder.eval()  # frozen: its batch-norm statistics stay ImageNet's
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        y = self.lateral[-1](features[-1])
        for lateral, f in zip(reversed(self.lateral[:-1]), reversed(features[:-1]), strict=True):
            y = lateral(f) + F.interpolate(y, size=f.shape[-2:], mode="bilinear", align_corners=False)
        return F.interpolate(self.head(self.fuse(y)), size=x.shape[-2:], mode="bilinear", align_corners=False)


NETWORKS = {"unet": BuildingSegmenter, "dilated": DilatedSegmenter, "lite1": LiteSegmenter}


def segmenter_network(architecture: str = "unet", width: int = 16) -> nn.Module:
    """An untrained segmenter of ``architecture`` (the lite1 encoder with its ImageNet weights)."""
    if architecture not in NETWORKS:
        raise ValueError(f"unknown segmenter architecture {architecture!r}; choose from {', '.join(NETWORKS)}")
    net = NETWORKS[architecture](width)
    return net.load_encoder() if isinstance(net, LiteSegmenter) else net
