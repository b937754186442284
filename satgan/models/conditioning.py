"""Style conditioning: which city a mask is drawn as, and a random style code.

A *style vector* is the one-hot city label (``model.condition=city``) followed by a
random code of ``model.latent`` numbers (for different images of one mask). The
generator takes it through every normalisation layer: each :class:`StyleNorm` scales
and shifts its normalised features by a learned linear function of the style
(conditional instance norm, Dumoulin et al. 2017), so a style changes the whole image,
not only what the first convolution sees, which instance norm would wash out. The
discriminator takes the label by projection (Miyato and Koyama 2018): its logit gains the
inner product of a learned label embedding with its last features.

One style vector per image; a seamless scene gives every window the same one, so the
windows agree on the city and the code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from satgan import SatganError
from satgan.models.layers import StyleNorm, gaussian_blur


class StyledGenerator(nn.Module):
    """A generator called as ``G(mask, label, code, noise)``: ``label`` ``(N,)`` label
    indices (when it has labels) and ``code`` ``(N, latent)`` style codes (default: zeros,
    the average style) reach its :class:`StyleNorm` layers; ``noise`` ``(N, channels, H, W)``
    per-pixel noise (default: drawn from torch's generator) goes in beside the mask, so
    the network has something to draw texture from where the mask is uniform (a
    convolution of a constant is a constant)."""

    def __init__(self, net: nn.Module, num_labels: int = 0, latent: int = 0, noise: int = 0, noise_blur: float = 0.0):
        super().__init__()
        self.net, self.num_labels, self.latent, self.noise = net, num_labels, latent, noise
        self.noise_blur = noise_blur
        if (num_labels or latent) and not any(isinstance(m, StyleNorm) for m in net.modules()):
            raise SatganError("a generator with labels or a style code needs StyleNorm layers")

    def forward(self, mask: torch.Tensor, label: torch.Tensor | None = None, code: torch.Tensor | None = None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        if self.noise:
            if noise is None:
                noise = torch.randn(mask.shape[0], self.noise, *mask.shape[2:], device=mask.device, dtype=mask.dtype)
            mask = torch.cat([mask, smooth_noise(noise.to(mask.device, mask.dtype), self.noise_blur)], dim=1)
        if not (self.num_labels or self.latent):
            return self.net(mask)
        if self.latent and code is None:
            code = mask.new_zeros(mask.shape[0], self.latent)
        style = style_vectors(label, self.num_labels, code if self.latent else None).to(mask.device)
        if style.shape[0] != mask.shape[0]:
            raise SatganError(f"{style.shape[0]} styles for {mask.shape[0]} masks")
        norms = [m for m in self.net.modules() if isinstance(m, StyleNorm)]  # this copy's own (EMA deep-copies)
        for m in norms:
            m.style = style
        try:
            return self.net(mask)
        finally:
            for m in norms:
                m.style = None


def smooth_noise(noise: torch.Tensor, sigma: float) -> torch.Tensor:
    """White noise blurred by a Gaussian of ``sigma`` pixels and scaled back to unit
    variance (a 2-D Gaussian of ``sigma`` keeps 1 / (4 pi sigma^2) of white noise's
    variance): blobs about ``2 sigma`` across instead of grain. Shift-equivariant, so the
    windows of a seamless scene, cut from one field, agree away from their borders.
    ``sigma`` 0 returns ``noise`` itself."""
    if not sigma:
        return noise
    return gaussian_blur(noise, sigma) * (2 * math.sqrt(math.pi) * sigma)


def noise_fields(count: int, channels: int, height: int, width: int, seed: int) -> torch.Tensor:
    """``(count, channels, height, width)`` N(0, 1) noise from ``seed``: field ``i`` is the
    same whatever ``count`` is (each has its own generator), so an image's noise does not
    depend on how many are generated with it."""
    # torch seeds must fit 64 bits: large seeds (a style seed times a mask's checksum) wrap
    gens = (torch.Generator().manual_seed((seed * 1_000_003 + i) % (1 << 63)) for i in range(count))
    return torch.stack([torch.randn(channels, height, width, generator=g) for g in gens])


def style_dim(labels: Sequence[str], latent: int) -> int:
    """Length of the style vector: one entry per label, then the code."""
    return len(labels) + latent


def style_vectors(label_index: torch.Tensor | None, num_labels: int, code: torch.Tensor | None) -> torch.Tensor:
    """``(N, num_labels + latent)``: one-hot labels (``(N,)`` indices) then the codes ``(N, latent)``."""
    parts = []
    if num_labels:
        if label_index is None:
            raise SatganError("this generator is conditioned on a label: give one per image")
        parts.append(nn.functional.one_hot(label_index.long(), num_labels).float())
    if code is not None:
        parts.append(code.float())
    if not parts:
        raise SatganError("no style: the generator has neither labels nor a code")
    return torch.cat(parts, dim=1)


def random_codes(count: int, latent: int, seed: int) -> torch.Tensor:
    """Style codes ``(count, latent)`` drawn from N(0, 1) from ``seed`` (the same seed, the same codes)."""
    return torch.randn(count, latent, generator=torch.Generator().manual_seed(seed))


class LabelProjection(nn.Module):
    """The projection discriminator's label term: per patch, the inner product of a label
    embedding with the features, averaged over 2x2 neighbours to match the logit map (the
    last 4x4 stride-1 convolution makes the map one smaller than the features)."""

    def __init__(self, num_labels: int, channels: int):
        super().__init__()
        self.embed = nn.Embedding(num_labels, channels)
        nn.init.zeros_(self.embed.weight)  # starts as the unconditional discriminator

    def forward(self, features: torch.Tensor, label_index: torch.Tensor) -> torch.Tensor:
        inner = (self.embed(label_index.long())[:, :, None, None] * features).sum(1, keepdim=True)
        return nn.functional.avg_pool2d(inner, 2, stride=1)
