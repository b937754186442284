"""Discriminators as plug-ins: one module per kind, each a :class:`DiscriminatorKind`.

A kind owns everything that differs between discriminators: its settings (the config's
``discriminator`` section, a :class:`~satgan.settings.Settings` class), the smallest crop
it judges, its checks across settings, its network, its adversarial loss and its
accuracy, and any extra term of D's loss. :mod:`satgan.models.objective` and
:mod:`satgan.config` call these without knowing which kind they hold.

The kinds are listed once, in :data:`satgan.config.training.DISCRIMINATORS` (name ->
the module whose ``KIND`` it is, imported when first asked for);
:func:`satgan.config.register_discriminator` adds one from anywhere. A new kind is one
module here, a subclass of :class:`DiscriminatorKind`, and one line in that list.

Every network is called as ``D(mask, image, label)`` and returns, per scale, its
feature maps with the logits last, so feature matching and mode seeking in D's space
work with any kind. The defaults below are the PatchGAN's per-patch GAN loss.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from satgan.config import Config
from satgan.models.losses import gan_loss
from satgan.settings import Settings

Prediction = list[list[torch.Tensor]]  # per scale: feature maps, then logits


class DiscriminatorKind:
    """The interface of a discriminator kind, with a per-patch GAN loss as the default."""

    name: ClassVar[str]
    settings: ClassVar[type[Settings]]  # the config's ``discriminator`` section for this kind
    # D's loss: the mean of its real and fake terms (pix2pix halves the sum, so D learns at
    # half the generator's rate) or their sum (OASIS)
    halve_loss: ClassVar[bool] = True

    def min_crop(self, config: Config) -> int:
        """The smallest training crop this discriminator can judge."""
        raise NotImplementedError

    def crop_error(self, config: Config, least: int) -> str:
        """The message for a crop below :meth:`min_crop` (``least``): what to change."""
        return (f"a {self.name} discriminator needs crops of at least {least} pixels (got data.crop="
                f"{config.data.crop}); raise data.crop")

    def check(self, config: Config) -> None:
        """Checks across settings beyond the crop (raise :class:`~satgan.SatganError`)."""

    def build(self, config: Config) -> nn.Module:
        """The network, initialised, called as ``D(mask, image, label)``."""
        raise NotImplementedError

    def loss(self, pred: Prediction, mask: torch.Tensor, as_real: bool, config: Config,
             for_discriminator: bool = True) -> torch.Tensor:
        """The adversarial loss of ``pred`` judged as real (``as_real``) or fake."""
        return gan_loss(pred, as_real, config.loss.gan_mode, for_discriminator)

    @torch.no_grad()
    def accuracy(self, pred: Prediction, mask: torch.Tensor, is_real: bool, config: Config) -> torch.Tensor:
        """The share of ``pred``'s verdicts on the right side: real pairs called real,
        generated ones fake."""
        threshold = 0.5 if config.loss.gan_mode == "lsgan" else 0.0
        return torch.stack([((scale[-1].float() > threshold) == is_real).float().mean() for scale in pred]).mean()

    def extra_loss(self, D: nn.Module, mask: torch.Tensor, fake: torch.Tensor, real: torch.Tensor,
                   pred_fake: Prediction, pred_real: Prediction, label: torch.Tensor | None,
                   config: Config) -> dict[str, tuple[float, torch.Tensor]]:
        """Extra terms of D's loss by name, as (weight, unweighted term); none by default."""
        return {}
