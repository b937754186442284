"""The segmentation discriminator of OASIS (Schönfeld et al., ICLR 2021, "You Only Need
Adversarial Supervision for Semantic Image Synthesis").

Instead of one real/fake verdict per patch, the discriminator labels every pixel of an
image as one of the mask's classes or as *fake*: here 0 fake, 1 background, 2 building.
On real images it learns to segment buildings (a task with a signal on every pixel,
which keeps it from sitting at chance); the generator is paid when the discriminator
reads its image as the mask it was given, so alignment is the adversarial objective
itself, not a side term. The discriminator sees the image alone: the mask is its target.

Helpers here are the losses: the class-balanced (N+1)-class cross-entropy and the LabelMix
consistency term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

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


def labelmix_loss(mixed_logits: torch.Tensor, real_logits: torch.Tensor, fake_logits: torch.Tensor,
                  choose: torch.Tensor) -> torch.Tensor:
    """The discriminator's verdict on a LabelMix image should mix its verdicts on the two
    sources by the same map (a consistency regulariser on D)."""
    target = choose * real_logits.float() + (1 - choose) * fake_logits.float()
    return F.mse_loss(mixed_logits.float(), target)


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
