"""The style encoder: a real image -> the style code the generator should draw it with.

BicycleGAN (Zhu et al. 2017) trains it beside the generator: the generator draws each
training mask with the code of its own real image, so L1 to that image no longer pulls
every code towards one average picture; a KL term keeps the encoded codes near N(0, 1),
where generation draws them; and the encoder must read a random code back from the
image drawn with it, so the generator cannot ignore random codes. Only training uses
the encoder: checkpoints generate with random (or the average) codes, as before.
"""

from __future__ import annotations

import torch
from torch import nn


class StyleEncoder(nn.Module):
    """``layers`` stride-2 convolutions (widths ``nef``, 2nef, 4nef, capped at 4nef),
    averaged over the image, then the mean and log-variance of a ``latent``-long code.

    No normalisation: instance norm would remove each channel's mean over the image,
    which is what the average keeps (the palette, the light), and the first run with it
    encoded next to nothing (KL 0.3 nats over 8 numbers after 30 epochs)."""

    def __init__(self, in_channels: int, latent: int, nef: int = 64, layers: int = 4):
        super().__init__()
        stages: list[nn.Module] = []
        width = in_channels
        for i in range(layers):
            new = nef * min(2**i, 4)
            stages += [nn.Conv2d(width, new, 4, stride=2, padding=1, padding_mode="reflect"),
                       nn.LeakyReLU(0.2, inplace=True)]
            width = new
        self.body = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.mean, self.log_var = nn.Linear(width, latent), nn.Linear(width, latent)
        # He init, not the networks' N(0, 0.02): without normalisation that would shrink the
        # image's signal 10^4-fold over four layers, and every image would start with one code
        for conv in self.body:
            if isinstance(conv, nn.Conv2d):
                nn.init.kaiming_normal_(conv.weight, a=0.2)
                nn.init.zeros_(conv.bias)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, log_var)``, each ``(N, latent)``; the log-variance is kept within
        [-8, 2] (an unnormalised network drifted it past 15, and exp() then overflowed)."""
        features = self.body(image)
        return self.mean(features), self.log_var(features).clamp(-8.0, 2.0)


def sample_codes(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A code from N(mean, exp(log_var)), differentiable in both (the reparameterisation trick)."""
    return mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, 1)), summed over the code, averaged over the batch."""
    return (-0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum(1)).mean()
