"""The ``patch`` discriminator: pix2pix's PatchGAN over (mask, image) pairs, and its
multi-scale stack (pix2pixHD).

Each returns, per scale, the list of its layers' feature maps with the patch logits
last, so the same pass serves the GAN loss and discriminator feature matching.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from satgan import SatganError
from satgan.config import Config
from satgan.models.conditioning import LabelProjection
from satgan.models.discriminators import DiscriminatorKind
from satgan.models.layers import OUTPUT_CHANNELS, conv_bias, init_weights, norm_layer
from satgan.settings import Settings, setting


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


@dataclass
class PatchSettings(Settings):
    """The PatchGAN's settings (``model.ndf`` sets its width, ``model.norm`` its norm)."""

    prefix = "discriminator."

    layers: int = setting(3, ge=1, le=8, arch=True, help="stride-2 stages (3 gives 70x70 patches)")
    scales: int = setting(1, ge=1, le=4, arch=True, help="PatchGANs on the pair at full, half, quarter... "
                                                        "resolution (pix2pixHD uses 2-3)")
    spectral_norm: bool = setting(False, arch=True, help="spectral norm on every convolution")


class PatchKind(DiscriminatorKind):
    """pix2pix's PatchGAN on (mask, image) pairs, at one scale or several."""

    name = "patch"
    settings = PatchSettings

    def min_crop(self, config: Config) -> int:
        s = config.discriminator
        return 3 * 2**s.layers * 2 ** (s.scales - 1)  # the coarsest scale still leaves a 2x2 map

    def crop_error(self, config: Config, least: int) -> str:
        s = config.discriminator
        return (f"a patch discriminator with scales={s.scales} and layers={s.layers} needs crops of at least {least} "
                f"pixels (got {config.data.crop}); lower discriminator.scales or discriminator.layers")

    def build(self, config: Config) -> nn.Module:
        m, s = config.model, config.discriminator
        net = MultiscaleDiscriminator(config.data.mask_channels + OUTPUT_CHANNELS, s.scales, ndf=m.ndf,
                                      n_layers=s.layers, norm=m.norm, spectral=s.spectral_norm,
                                      num_labels=len(m.labels) if m.condition == "city" else 0)
        return init_weights(net, m.init, m.init_gain)


KIND = PatchKind()
