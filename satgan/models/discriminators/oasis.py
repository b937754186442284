"""The segmentation discriminator of OASIS (Schönfeld et al., ICLR 2021, "You Only Need
Adversarial Supervision for Semantic Image Synthesis").

Instead of one real/fake verdict per patch, the discriminator labels every pixel of an
image as one of the mask's classes or as *fake*: here 0 fake, 1 background, 2 building.
On real images it learns to segment buildings (a task with a signal on every pixel,
which keeps it from sitting at chance); the generator is paid when the discriminator
reads its image as the mask it was given, so alignment is the adversarial objective
itself, not a side term. The discriminator sees the image alone: the mask is its target.

Its losses are here too: the class-balanced (N+1)-class cross-entropy and the LabelMix
consistency term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from satgan import SatganError
from satgan.config import Config
from satgan.models.discriminators import DiscriminatorKind, Prediction
from satgan.settings import Settings, setting

FAKE, BACKGROUND, BUILDING = 0, 1, 2
CLASSES = 3


def mask_classes(mask: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) masks in [-1, 1] -> (N, H, W) class indices: building where the mask is
    bright, background elsewhere (cut-out or padded regions, at 0, are background)."""
    return torch.where(mask.float().mean(1) > 0, BUILDING, BACKGROUND)


def class_weights(classes: torch.Tensor, balance: float) -> torch.Tensor:
    """Per-pixel weights that make each class present in the batch count alike:
    ``(pixels / (classes present x pixels of the class)) ** balance`` (OASIS: balance 1;
    0: every pixel alike). Buildings are about a sixth of the pixels of geocompass."""
    if balance == 0:
        return torch.ones_like(classes, dtype=torch.float32)
    counts = torch.bincount(classes.flatten(), minlength=CLASSES).float()
    present = (counts > 0).sum()
    per_class = (classes.numel() / (present * counts.clamp(min=1))) ** balance
    return per_class[classes]


def segmentation_gan_loss(logits: torch.Tensor, classes: torch.Tensor, as_real: bool, balance: float) -> torch.Tensor:
    """(N+1)-class cross-entropy: toward the mask's classes (``as_real``; weighted by
    :func:`class_weights`) or toward *fake* everywhere."""
    logits = logits.float()
    if not as_real:
        return F.cross_entropy(logits, torch.full_like(classes, FAKE))
    return (F.cross_entropy(logits, classes, reduction="none") * class_weights(classes, balance)).mean()


def labelmix(classes: torch.Tensor, real: torch.Tensor, fake: torch.Tensor,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """LabelMix: per sample, each class region is taken from the real or the fake image
    at random. Returns the mixed images and the (N, 1, H, W) map (1: from the real image)."""
    n = classes.shape[0]
    pick = torch.randint(0, 2, (n, CLASSES), device=classes.device, generator=generator)
    choose = pick.gather(1, classes.flatten(1)).view_as(classes)[:, None].to(real.dtype)
    return choose * real + (1 - choose) * fake, choose


def building_regions(buildings: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool -> (N, H, W) int64 region ids, unique across the batch: one per
    building (8-connected) and one for each sample's ground; found on the tensor's device
    by spreading each building pixel's index to its neighbours until nothing changes."""
    n, h, w = buildings.shape
    inside = buildings.unsqueeze(1).float()
    ids = torch.arange(1, n * h * w + 1, device=buildings.device, dtype=torch.float64).view(n, 1, h, w) * inside
    while True:
        spread = F.max_pool2d(ids, 3, 1, 1) * inside
        if torch.equal(spread, ids):
            break
        ids = spread
    ground = n * h * w + 1 + torch.arange(n, device=buildings.device, dtype=torch.float64).view(n, 1, 1, 1)
    return torch.where(inside > 0, ids, ground)[:, 0].long()


def building_labelmix(classes: torch.Tensor, real: torch.Tensor, fake: torch.Tensor,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """LabelMix per building: the ground and each building (connected component) of each
    sample taken from the real or the fake image at random. With two classes, class-wise
    LabelMix makes half its mixes all real or all fake; per building, nearly every mix
    holds both. Returns the mixed images and the (N, 1, H, W) map (1: from the real image)."""
    regions = building_regions(classes == BUILDING)
    _, dense = torch.unique(regions, return_inverse=True)  # ids 0..K-1
    pick = torch.randint(0, 2, (int(dense.max()) + 1,), device=classes.device, generator=generator)
    choose = pick[dense][:, None].to(real.dtype)
    return choose * real + (1 - choose) * fake, choose


def labelmix_loss(mixed_logits: torch.Tensor, real_logits: torch.Tensor, fake_logits: torch.Tensor,
                  choose: torch.Tensor) -> torch.Tensor:
    """The discriminator's verdict on a LabelMix image should mix its verdicts on the two
    sources by the same map (a consistency regulariser on D)."""
    target = choose * real_logits.float() + (1 - choose) * fake_logits.float()
    return F.mse_loss(mixed_logits.float(), target)


def labelmix_term(D: nn.Module, mask: torch.Tensor, fake: torch.Tensor, real: torch.Tensor, pred_fake: Prediction,
                  pred_real: Prediction, label: torch.Tensor | None, weight: float, mix=labelmix,
                  scale: int = 0) -> dict[str, tuple[float, torch.Tensor]]:
    """D's LabelMix term (``mix``: by class or :func:`building_labelmix`) on its per-pixel
    logits, the last entry of ``scale``; nothing where ``weight`` is 0."""
    if weight <= 0:
        return {}
    mixed, choose = mix(mask_classes(mask), real.detach(), fake)
    term = labelmix_loss(D(mask, mixed, label)[scale][-1], pred_real[scale][-1], pred_fake[scale][-1], choose)
    return {"D_labelmix": (weight, term)}


class ResidualBlock(nn.Module):
    """Two pre-activated 3x3 convolutions and a shortcut (1x1 where the width changes), all
    spectrally normalised, halved by average pooling with ``down``. Without the shortcut,
    a dozen spectrally normalised layers shrank the signal until the verdict was the
    bias alone: the same on every image (LabelMix consistency 0, real pixels called fake)."""

    def __init__(self, in_ch: int, out_ch: int, down: bool):
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv2d(in_ch, out_ch, 3, 1, 1))
        self.conv2 = spectral_norm(nn.Conv2d(out_ch, out_ch, 3, 1, 1))
        self.shortcut = spectral_norm(nn.Conv2d(in_ch, out_ch, 1)) if in_ch != out_ch else nn.Identity()
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.leaky_relu(self.conv1(F.leaky_relu(x, 0.2)), 0.2))
        s = self.shortcut(x)
        if self.down:
            y, s = F.avg_pool2d(y, 2), F.avg_pool2d(s, 2)
        return y + s


class SegmentationDiscriminator(nn.Module):
    """A U-Net of residual blocks (spectral norm, LeakyReLU) from an image to (N, 3, H, W)
    class logits.

    Its stem has stride 2 and the logits are upsampled bilinearly at the end, as the
    reference segmenter's (:mod:`satgan.models.segmenter`): buildings are tens of pixels
    across, and the full-resolution level would cost three quarters of the work on a CPU.
    ``width``: the first level's channels, doubling per level up to 8x; ``levels``: the
    stride-2 stages, stem included (the input side must be a multiple of 2**levels).
    ``D(mask, image)`` returns one "scale": the decoder's feature maps with the logits
    last, the layout every satgan discriminator returns (for feature matching)."""

    def __init__(self, width: int = 64, levels: int = 4):
        super().__init__()
        widths = [width * min(2**i, 8) for i in range(levels)]
        self.stem = ResidualBlock(3, widths[0], down=True)
        self.down = nn.ModuleList(ResidualBlock(widths[i], widths[i + 1], down=True) for i in range(levels - 1))
        self.up = nn.ModuleList(ResidualBlock(widths[i + 1] + widths[i], widths[i], down=False)
                                for i in range(levels - 1))
        self.head = nn.Conv2d(widths[0], CLASSES, 1)

    def forward(self, mask: torch.Tensor, image: torch.Tensor,
                label: torch.Tensor | None = None) -> list[list[torch.Tensor]]:
        skips = [self.stem(image)]
        for block in self.down:
            skips.append(block(skips[-1]))
        x, features = skips.pop(), []
        for block in reversed(self.up):
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
            features.append(x)
        logits = F.interpolate(self.head(x), size=image.shape[-2:], mode="bilinear", align_corners=False)
        return [features + [logits]]


@dataclass
class OasisSettings(Settings):
    """The OASIS discriminator's settings (``model.ndf`` sets its first level's width)."""

    prefix = "discriminator."

    levels: int = setting(3, ge=1, le=8, arch=True, help="the U-Net's stride-2 levels, stem included (the crop "
                                                        "must be a multiple of 2**levels)")
    class_balance: float = setting(1.0, ge=0, le=1, help="weight each class's pixels by (share of the classes / "
                                                         "share of the class) ** this (1: OASIS's balancing; "
                                                         "0: every pixel alike)")
    labelmix_weight: float = setting(10.0, ge=0, help="LabelMix consistency of the discriminator (OASIS: 10)")


class OasisKind(DiscriminatorKind):
    """A U-Net labelling every pixel background, building or fake."""

    name = "oasis"
    settings = OasisSettings
    halve_loss = False  # OASIS sums its two cross-entropies

    def min_crop(self, config: Config) -> int:
        return 2 * 2**config.discriminator.levels

    def crop_error(self, config: Config, least: int) -> str:
        return (f"the oasis discriminator's {config.discriminator.levels} levels need crops of at least {least} "
                f"pixels (got {config.data.crop}); lower discriminator.levels")

    def check(self, config: Config) -> None:
        levels = config.discriminator.levels
        if config.model.condition == "city":
            raise SatganError("model.discriminator=oasis does not take city labels; use model.discriminator=patch "
                              "or projected with model.condition=city")
        if config.data.crop % 2**levels:
            raise SatganError(f"the oasis discriminator's {levels} levels need a crop that is a multiple of "
                              f"{2**levels} (got {config.data.crop}); lower discriminator.levels")

    def build(self, config: Config) -> nn.Module:
        # PyTorch's own initialisation: spectral norm sets every convolution's scale, and
        # N(0, 0.02) left the head's logits near 0 whatever the image
        return SegmentationDiscriminator(config.model.ndf, config.discriminator.levels)

    def loss(self, pred: Prediction, mask: torch.Tensor, as_real: bool, config: Config,
             for_discriminator: bool = True) -> torch.Tensor:
        """(N+1)-class cross-entropy toward the mask's classes (as real) or toward *fake*."""
        return segmentation_gan_loss(pred[0][-1], mask_classes(mask), as_real, config.discriminator.class_balance)

    @torch.no_grad()
    def accuracy(self, pred: Prediction, mask: torch.Tensor, is_real: bool, config: Config) -> torch.Tensor:
        """The share of pixels on the right side of *fake*."""
        called_real = pred[0][-1].argmax(1) != FAKE
        return (called_real == is_real).float().mean()

    def extra_loss(self, D: nn.Module, mask: torch.Tensor, fake: torch.Tensor, real: torch.Tensor,
                   pred_fake: Prediction, pred_real: Prediction, label: torch.Tensor | None,
                   config: Config) -> dict[str, tuple[float, torch.Tensor]]:
        return labelmix_term(D, mask, fake, real, pred_fake, pred_real, label, config.discriminator.labelmix_weight)


KIND = OasisKind()
