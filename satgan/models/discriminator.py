"""Discriminators over (mask, image) pairs: the PatchGAN and its multi-scale stack.

Each returns, per scale, the list of its layers' feature maps with the patch logits
last, so the same pass serves the GAN loss and discriminator feature matching.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from satgan.errors import SatganError
from satgan.models.conditioning import LabelProjection
from satgan.models.layers import conv_bias, norm_layer


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` stride-2 stages, one stride-1 stage, a 1-channel logit map.

    With 3 layers each logit sees a 70x70 patch of the input (the pix2pix default).
    ``num_labels`` > 0: the logits gain a label projection
    (:class:`~satgan.models.conditioning.LabelProjection`), so D judges (mask, image, label).
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch",
                 spectral: bool = False, num_labels: int = 0):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)

        def conv(i: int, o: int, stride: int, b: bool) -> nn.Module:
            layer = nn.Conv2d(i, o, kernel_size=4, stride=stride, padding=1, bias=b)
            return _spectral_norm(layer) if spectral else layer

        stages = [nn.Sequential(conv(in_channels, ndf, 2, True), nn.LeakyReLU(0.2, inplace=True))]
        width = ndf
        for i in range(1, n_layers + 1):
            new = ndf * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            stages.append(nn.Sequential(conv(width, new, stride, bias), make_norm(new),
                                        nn.LeakyReLU(0.2, inplace=True)))
            width = new
        stages.append(nn.Sequential(conv(width, 1, 1, True)))
        self.stages = nn.ModuleList(stages)
        self.projection = LabelProjection(num_labels, width) if num_labels else None

    def forward(self, x: torch.Tensor, label: torch.Tensor | None = None) -> list[torch.Tensor]:
        features = []
        for stage in self.stages[:-1]:
            x = stage(x)
            features.append(x)
        logits = self.stages[-1](x)
        if self.projection is not None:
            if label is None:
                raise SatganError("this discriminator is conditioned on a label: give one per pair")
            logits = logits + self.projection(x, label)
        return features + [logits]


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs on the input at full, half, quarter... resolution (pix2pixHD)."""

    def __init__(self, in_channels: int, num_d: int = 1, **patch_kwargs):
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(in_channels, **patch_kwargs) for _ in range(num_d))
        self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, mask: torch.Tensor, image: torch.Tensor,
                label: torch.Tensor | None = None) -> list[list[torch.Tensor]]:
        x = torch.cat([mask, image], dim=1)
        outputs = []
        for i, disc in enumerate(self.scales):
            if i:
                x = self.down(x)
            outputs.append(disc(x, label))
        return outputs
