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

from satgan.models.layers import norm_layer


class StyleEncoder(nn.Module):
    """``layers`` stride-2 convolutions (widths ``nef``, 2nef, 4nef, capped at 4nef),
    averaged over the image, then the mean and log-variance of a ``latent``-long code."""

    def __init__(self, in_channels: int, latent: int, nef: int = 64, layers: int = 4, norm: str = "instance"):
        super().__init__()
        make_norm = norm_layer(norm)
        stages: list[nn.Module] = []
        width = in_channels
        for i in range(layers):
            new = nef * min(2**i, 4)
            stages += [nn.Conv2d(width, new, 4, stride=2, padding=1, padding_mode="reflect")]
            if i:  # the first stage is not normalised, as in the discriminator
                stages.append(make_norm(new))
            stages.append(nn.LeakyReLU(0.2, inplace=True))
            width = new
        self.body = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.mean, self.log_var = nn.Linear(width, latent), nn.Linear(width, latent)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, log_var)``, each ``(N, latent)``."""
        features = self.body(image)
        return self.mean(features), self.log_var(features)


def sample_codes(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A code from N(mean, exp(log_var)), differentiable in both (the reparameterisation trick)."""
    return mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, 1)), summed over the code, averaged over the batch."""
    return (-0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum(1)).mean()
