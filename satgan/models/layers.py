"""Building blocks shared by the generators and discriminators: normalization,
upsampling, weight initialization."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from satgan import SatganError

OUTPUT_CHANNELS = 3  # the generator draws RGB
NORMS = ("batch", "instance", "none")
UPSAMPLES = ("deconv", "resize")
INITS = ("normal", "xavier", "kaiming", "orthogonal")
BLUR_TAPS = (3, 5)


def norm_layer(kind: str, style_dim: int = 0):
    """A constructor ``f(channels) -> nn.Module`` for the normalization ``kind``.

    batch: learnable affine and running statistics; instance: neither (as pix2pix);
    none: identity. ``style_dim`` > 0: each followed by a style-dependent scale and
    shift (:class:`~satgan.models.conditioning.StyleNorm`).
    """
    if kind == "batch":
        make = functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    elif kind == "instance":
        make = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    elif kind == "none":
        make = lambda channels: nn.Identity()  # noqa: E731
    else:
        raise SatganError(f"unknown norm {kind!r}; choose from {', '.join(NORMS)}")
    if style_dim:
        return lambda channels: StyleNorm(make(channels), channels, style_dim)
    return make


def conv_bias(norm: str) -> bool:
    """Batch norm's shift makes a convolution bias redundant; other norms keep it."""
    return norm != "batch"


def upsample_conv(in_ch: int, out_ch: int, kind: str, bias: bool, kernel: int = 4,
                  padding: str = "zeros") -> nn.Module:
    """Double the spatial size: a transposed convolution (``deconv``; 4x4, or 3x3 as in the
    ResNet generator) or bilinear upsampling then a 3x3 convolution (``resize``, which
    avoids the checkerboard artefacts of transposed convolutions)."""
    if kind == "deconv":
        return nn.ConvTranspose2d(in_ch, out_ch, kernel_size=kernel, stride=2, padding=1,
                                  output_padding=kernel % 2, bias=bias)
    if kind == "resize":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1, padding=1, bias=bias, padding_mode=padding),
        )
    raise SatganError(f"unknown upsample {kind!r}; choose from {', '.join(UPSAMPLES)}")


class Blur(nn.Module):
    """A fixed binomial low-pass filter (``taps`` 3 or 5 per side), per channel, stride 1.

    Put before a stride-2 convolution it removes what the subsampling would alias, so a
    shift of the input by a few pixels shifts the output instead of changing it (Zhang,
    "Making convolutional networks shift-invariant again", 2019): the windows of a
    seamless scene then agree wherever they fall.
    """

    def __init__(self, channels: int, taps: int = 3, padding: str = "zeros"):
        super().__init__()
        if taps not in BLUR_TAPS:
            raise SatganError(f"unknown blur size {taps}; choose from {', '.join(map(str, BLUR_TAPS))}")
        row = torch.tensor([1.0, 2.0, 1.0] if taps == 3 else [1.0, 4.0, 6.0, 4.0, 1.0])
        kernel = torch.outer(row, row) / row.sum() ** 2
        self.register_buffer("kernel", kernel.expand(channels, 1, taps, taps).clone(), persistent=False)
        self.channels, self.pad = channels, taps // 2
        self.mode = "constant" if padding == "zeros" else padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = self.mode
        if mode == "reflect" and min(x.shape[-2:]) <= self.pad:  # the innermost stages can be 2x2
            mode = "replicate"
        x = nn.functional.pad(x, (self.pad,) * 4, mode=mode)
        return nn.functional.conv2d(x, self.kernel.to(x.dtype), groups=self.channels)


def init_weights(net: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialize conv and linear weights (``normal`` N(0, gain), ``xavier``, ``kaiming``,
    ``orthogonal``), biases to 0, and batch-norm scales to N(1, gain)."""
    if kind not in INITS:
        raise SatganError(f"unknown init {kind!r}; choose from {', '.join(INITS)}")

    def visit(m: nn.Module) -> None:
        if parametrize.is_parametrized(m, "weight"):  # spectral norm: initialize the raw weight
            weight = m.parametrizations.weight.original
        else:
            weight = getattr(m, "weight", None)
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and weight is not None:
            if kind == "normal" or isinstance(m, nn.Linear):  # linear: style modulations, small whatever the kind
                nn.init.normal_(weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)

    with torch.no_grad():
        net.apply(visit)
    return net


# The unsharp mask's blur, in output pixels: the detail an L1-trained generator leaves
# soft is 2-4 px across (docs/RESULTS.md, "Realism on geocompass").
SHARPEN_SIGMA = 2.0


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each channel blurred by a Gaussian of ``sigma`` pixels (separable, reflect padding)."""
    radius = max(1, min(int(3 * sigma + 0.5), min(x.shape[-2:]) - 1))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = (kernel / kernel.sum()).repeat(x.shape[1], 1, 1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(-1, 1, 1, 2 * radius + 1),
                 groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(-1, 1, 2 * radius + 1, 1),
                    groups=x.shape[1])


def unsharp_mask(x: torch.Tensor, amount: float, sigma: float = SHARPEN_SIGMA) -> torch.Tensor:
    """``x`` plus ``amount`` times what a blur of ``sigma`` pixels removes from it: edges and
    detail about ``sigma`` to ``2 sigma`` pixels across gain contrast, uniform areas and
    the mean stay as they are. ``amount`` 0 returns ``x`` itself; the result is not clamped."""
    if amount == 0:
        return x
    return x + amount * (x - gaussian_blur(x, sigma))


class StyleNorm(nn.Module):
    """``norm`` followed by a per-channel scale ``1 + gamma(style)`` and shift ``beta(style)``,
    both linear in the style vector. The style is set by :class:`StyledGenerator` for one
    forward pass."""

    def __init__(self, norm: nn.Module, channels: int, style_dim: int):
        super().__init__()
        self.norm = norm
        self.affine = nn.Linear(style_dim, 2 * channels)
        self.style: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.style is None:
            raise RuntimeError("StyleNorm called without a style: call the StyledGenerator, not its net")
        gamma, beta = self.affine(self.style.to(x.dtype)).chunk(2, dim=1)
        return self.norm(x) * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
