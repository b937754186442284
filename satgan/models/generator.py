"""Generators: mask (1 or 3 channels, [-1, 1]) -> image (3 channels, [-1, 1]).

* :class:`UNetGenerator`: the pix2pix encoder-decoder with skip connections. ``downs``
  halvings take the input to 1x1 (8 for 256 inputs, 7 for 128, 9 for 512).
* :class:`ResNetGenerator`: two downsamplings, ``blocks`` residual blocks, two upsamplings.

``style_dim`` > 0 makes every normalisation a style-dependent one (see
:mod:`satgan.models.conditioning`); wrap the network in a ``StyledGenerator`` to call it.
"""

from __future__ import annotations

import torch
from torch import nn

from satgan import SatganError
from satgan.config.training import UNET_MIN_DOWNS
from satgan.models.layers import Blur, conv_bias, norm_layer, upsample_conv


class UNetGenerator(nn.Module):
    """U-Net: encoder widths ngf, 2ngf, 4ngf, then 8ngf; decoder mirrors it with skips.

    Dropout (p=0.5) sits in the decoder stages of the ``downs - 5`` 8ngf levels between
    the innermost and the first widening one (3 for 256 inputs), as in pix2pix, where it
    is the generator's only source of noise. ``antialias`` (3 or 5; 0: off) blurs each
    stage's input with a binomial filter of that size before the stride-2 convolution.
    ``tanh=False`` leaves the output unbounded (logits, for the segmentation benchmark).
    ``input_skip`` ends the network with a 1x1 convolution over the decoder's full-size
    features and the input itself: every other path from the mask crosses a stride-2
    convolution, so without it building edges come out a few pixels soft. (Per pixel,
    so the mask's own edge is exact; a 3x3 head learnt sharp edges far more slowly.)
    """

    def __init__(self, in_channels: int, out_channels: int, downs: int = 8, ngf: int = 64,
                 norm: str = "batch", upsample: str = "deconv", dropout: bool = True, padding: str = "zeros",
                 antialias: int = 0, style_dim: int = 0, tanh: bool = True, input_skip: bool = False):
        super().__init__()
        if downs < UNET_MIN_DOWNS:
            raise SatganError(f"a U-Net needs at least {UNET_MIN_DOWNS} halvings (got {downs})")
        make_norm, bias = norm_layer(norm, style_dim), conv_bias(norm)
        widths = [min(ngf * 2**i, ngf * 8) for i in range(downs)]  # encoder output widths
        self.down = nn.ModuleList()
        for i, width in enumerate(widths):
            layers: list[nn.Module] = []
            if i > 0:
                layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_ch = in_channels if i == 0 else widths[i - 1]
            if antialias:  # low-pass before subsampling: the output follows a shifted input
                layers.append(Blur(in_ch, antialias, padding))
            layers.append(nn.Conv2d(in_ch, width, kernel_size=4, stride=2, padding=1, bias=bias,
                                    padding_mode=padding))
            if 0 < i < downs - 1:  # neither the first nor the innermost stage is normalized
                layers.append(make_norm(width))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for i in reversed(range(downs)):  # innermost first
            in_ch = widths[i] if i == downs - 1 else widths[i] * 2  # skip concatenated
            layers = [nn.ReLU(inplace=True)]
            if i == 0 and input_skip:  # full-size features for the head beside the input
                layers += [upsample_conv(in_ch, ngf, upsample, bias=True, padding=padding), nn.ReLU(inplace=True)]
            elif i == 0:
                layers.append(upsample_conv(in_ch, out_channels, upsample, bias=True, padding=padding))
            else:
                layers += [upsample_conv(in_ch, widths[i - 1], upsample, bias, padding=padding),
                           make_norm(widths[i - 1])]
                # pix2pix: dropout in the downs - 5 stages between the innermost and the
                # first widening one (3 for 256 inputs, 2 for 128)
                if dropout and 4 <= i < downs - 1:
                    layers.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*layers))
        self.head = (nn.Conv2d(ngf + in_channels, out_channels, kernel_size=1)
                     if input_skip else None)
        self.out = nn.Tanh() if tanh else nn.Identity()  # images in [-1, 1]; without it, logits (segmentation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        given, skips = x, []
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        x = skips.pop()
        for stage in self.up[:-1]:
            x = torch.cat([stage(x), skips.pop()], dim=1)
        x = self.up[-1](x)
        if self.head is not None:
            x = self.head(torch.cat([x, given], dim=1))
        return self.out(x)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: str, dropout: bool, style_dim: int = 0):
        super().__init__()
        make_norm, bias = norm_layer(norm, style_dim), conv_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                                   make_norm(channels), nn.ReLU(inplace=True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), make_norm(channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNetGenerator(nn.Module):
    """7x7 stem, two stride-2 downsamplings, residual blocks, two upsamplings, 7x7 head."""

    def __init__(self, in_channels: int, out_channels: int, blocks: int = 9, ngf: int = 64,
                 norm: str = "batch", upsample: str = "deconv", dropout: bool = False, padding: str = "zeros",
                 style_dim: int = 0):
        super().__init__()
        make_norm, bias = norm_layer(norm, style_dim), conv_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias),
                                   make_norm(ngf), nn.ReLU(inplace=True)]
        width = ngf
        for _ in range(2):
            layers += [nn.Conv2d(width, width * 2, 3, stride=2, padding=1, bias=bias, padding_mode=padding),
                       make_norm(width * 2), nn.ReLU(inplace=True)]
            width *= 2
        layers += [ResidualBlock(width, norm, dropout, style_dim) for _ in range(blocks)]
        for _ in range(2):
            layers += [upsample_conv(width, width // 2, upsample, bias, kernel=3, padding=padding),
                       make_norm(width // 2),
                       nn.ReLU(inplace=True)]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
