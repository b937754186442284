"""One place that builds every network variant from the config."""

from __future__ import annotations

import math

from torch import nn

from satgan.config import LossConfig, ModelConfig
from satgan.errors import SatganError
from satgan.models.discriminator import MultiscaleDiscriminator
from satgan.models.generator import ResNetGenerator, UNetGenerator
from satgan.models.layers import init_weights
from satgan.models.losses import VGGLoss

GENERATORS = ("unet", "resnet")
OUTPUT_CHANNELS = 3


def unet_downs(cfg: ModelConfig, crop: int) -> int:
    """The U-Net depth: as configured, or down to 1x1 for a power-of-two crop."""
    if cfg.unet_downs:
        return cfg.unet_downs
    downs = int(math.log2(crop))
    if 2**downs != crop:
        raise SatganError(f"a U-Net needs a power-of-two crop (128, 256, 512), got {crop}; or set unet_downs")
    return downs


def input_multiple(cfg: ModelConfig, crop: int = 256) -> int:
    """Input sides the generator accepts are multiples of this: 2^depth for a U-Net,
    4 for the ResNet generator's two stride-2 stages."""
    return 2 ** unet_downs(cfg, crop) if cfg.generator == "unet" else 4


def build_generator(cfg: ModelConfig, crop: int = 256) -> nn.Module:
    """The generator named by ``cfg.generator``, initialized; ``crop`` sets the U-Net depth."""
    if cfg.input_channels not in (1, 3):
        raise SatganError(f"input_channels must be 1 or 3 (got {cfg.input_channels})")
    if cfg.generator == "unet":
        net = UNetGenerator(cfg.input_channels, OUTPUT_CHANNELS, unet_downs(cfg, crop), cfg.ngf, cfg.norm,
                            cfg.upsample, cfg.dropout)
    elif cfg.generator == "resnet":
        net = ResNetGenerator(cfg.input_channels, OUTPUT_CHANNELS, cfg.resnet_blocks, cfg.ngf, cfg.norm,
                              cfg.upsample, dropout=False)
    else:
        raise SatganError(f"unknown generator {cfg.generator!r}; choose from {', '.join(GENERATORS)}")
    return init_weights(net, cfg.init, cfg.init_gain)


def build_discriminator(cfg: ModelConfig, loss: LossConfig, crop: int = 256) -> MultiscaleDiscriminator | None:
    """The (multi-scale) PatchGAN over (mask, image) pairs; ``None`` when ``loss.gan_weight`` is 0."""
    if loss.gan_weight == 0:
        return None
    if cfg.num_d < 1 or cfg.d_layers < 1:
        raise SatganError(f"num_d and d_layers must be 1 or more (got {cfg.num_d}, {cfg.d_layers})")
    # The coarsest scale must still leave a patch map of at least 2x2 after all layers.
    need = 3 * 2**cfg.d_layers * 2 ** (cfg.num_d - 1)
    if crop < need:
        raise SatganError(
            f"a discriminator with num_d={cfg.num_d} and d_layers={cfg.d_layers} needs crops of at least "
            f"{need} pixels (got {crop}); lower model.num_d or model.d_layers"
        )
    net = MultiscaleDiscriminator(cfg.input_channels + OUTPUT_CHANNELS, cfg.num_d, ndf=cfg.ndf,
                                  n_layers=cfg.d_layers, norm=cfg.norm, spectral=cfg.spectral_norm)
    return init_weights(net, cfg.init, cfg.init_gain)


def build_vgg_loss(loss: LossConfig, download: bool = True) -> VGGLoss | None:
    """The perceptual loss when ``loss.vgg_weight`` > 0 (its weights are looked up locally first)."""
    if loss.vgg_weight <= 0:
        return None
    return VGGLoss(loss.vgg_layers, weights_path=loss.vgg_weights or None, download=download)
