"""One place that builds every network variant from the config."""

from __future__ import annotations

from torch import nn

from satgan import SatganError
from satgan.config import Config, LossConfig, discriminator_kind, unet_depth
from satgan.models.conditioning import StyledGenerator, style_dim
from satgan.models.encoder import StyleEncoder
from satgan.models.generator import ResNetGenerator, UNetGenerator
from satgan.models.layers import OUTPUT_CHANNELS, init_weights
from satgan.models.losses import VGGLoss


def input_multiple(config: Config) -> int:
    """Input sides the generator accepts are multiples of this: 2^depth for a U-Net,
    4 for the ResNet generator's two stride-2 stages."""
    return 2 ** unet_depth(config.model, config.data.crop) if config.model.generator == "unet" else 4


def style_size(config: Config) -> int:
    """Length of the generator's style vector (0: unstyled): the labels, then the code."""
    m = config.model
    if m.condition == "city" and not m.labels:
        raise SatganError("model.condition=city needs model.labels (training fills them from the data's cities)")
    return style_dim(m.labels if m.condition == "city" else [], m.latent)


def build_generator(config: Config) -> nn.Module:
    """The generator ``config.model`` names, initialized; the crop sets the U-Net depth and
    ``data.mask_channels`` (plus ``model.noise``) its input channels. With a city
    condition, a style code or noise it is a :class:`StyledGenerator`, called as
    ``G(mask, label, code, noise)``; otherwise ``G(mask)``."""
    m, styles = config.model, style_size(config)
    channels = config.data.mask_channels + m.noise
    if m.generator == "unet":
        net = UNetGenerator(channels, OUTPUT_CHANNELS, unet_depth(m, config.data.crop), m.ngf, m.norm,
                            m.upsample, m.dropout, padding=m.padding, antialias=m.antialias, style_dim=styles,
                            input_skip=m.input_skip)
    else:
        net = ResNetGenerator(channels, OUTPUT_CHANNELS, m.resnet_blocks, m.ngf, m.norm, m.upsample, dropout=False,
                              padding=m.padding, style_dim=styles)
    net = init_weights(net, m.init, m.init_gain)
    labels = len(m.labels) if m.condition == "city" else 0
    return StyledGenerator(net, labels, m.latent, m.noise, m.noise_blur) if styles or m.noise else net


def build_discriminator(config: Config) -> nn.Module | None:
    """The discriminator ``model.discriminator`` names (its kind builds it), called as
    ``D(mask, image, label)``; ``None`` when ``loss.gan_weight`` is 0."""
    if config.loss.gan_weight == 0:
        return None
    return discriminator_kind(config.model.discriminator).build(config)


def build_encoder(config: Config) -> StyleEncoder | None:
    """The style encoder of ``model.encoder`` (BicycleGAN), as wide as the discriminator;
    ``None`` without one. Training only: generation draws codes at random."""
    m = config.model
    if not m.encoder:
        return None
    return StyleEncoder(OUTPUT_CHANNELS, m.latent, nef=m.ndf)  # it initialises itself (see there)


def build_vgg_loss(loss: LossConfig, download: bool = True) -> VGGLoss | None:
    """The perceptual loss when ``loss.vgg_weight`` > 0 (its weights are looked up locally first)."""
    if loss.vgg_weight <= 0:
        return None
    return VGGLoss(loss.vgg_layers, weights_path=loss.vgg_weights or None, download=download)
