"""Every setting of satgan, as dataclasses: the one path from a notebook's parameters
cell or the command line into the library.

Defaults here are the only defaults: the command line reads its defaults from these
fields, and notebooks pass their parameters straight in. ``from_dict`` rejects unknown
keys with the list of valid ones, so a typo in a parameter is an error, not a no-op.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from satgan.data.sources import INRIA_CITIES
from satgan.errors import SatganError

T = TypeVar("T")


@dataclass
class SynthConfig:
    """``satgan synth``: a synthetic dataset in the Inria layout."""

    out: str
    cities: list[str] = field(default_factory=lambda: list(INRIA_CITIES))
    per_city: int = 8  # training pairs per city; images 1-5 form the validation split
    test_per_city: int = 1  # mask-less test images per Inria test city
    size: int = 5000  # pixels per side (Inria: 5000)
    seed: int = 0
    workers: int = 1


@dataclass
class PretransformConfig:
    """``satgan pretransform``: cut pairs into tiles and store them as training arrays."""

    source: str  # Inria AerialImageDataset (or its parent), or a paired folder
    out: str
    grid: int = 1  # NxN tiles per image: 1 "low", 2 "mid", 5 "high" (1000 px Inria tiles)
    size: int = 286  # tiles are resized to size x size pixels
    min_density: float = 0.0  # drop tiles whose building fraction is below this (0-1)
    val: list[str] | None = None  # stems/globs for the val split; None: the layout's own
    crop: int = 256  # the training crop; size must be at least this
    workers: int = 1  # processes reading files in parallel
    skip_unpaired: bool = False  # leave out images without masks instead of stopping
    overwrite: bool = False  # replace an output made with other settings


@dataclass
class DataConfig:
    """``PairDataset``: how pretransformed tiles become training samples."""

    crop: int = 256  # random crop side in pixels (centre crop when not augmenting)
    flip: bool = True  # random horizontal and vertical flips
    rot90: bool = False  # random multiples of 90-degree rotations
    mask_channels: int = 1  # 1, or 3 identical channels as the old project fed the mask
    seed: int = 0


@dataclass
class ModelConfig:
    """The networks. Defaults are pix2pix's, with instance norm as the old project found best."""

    generator: str = "unet"  # unet | resnet
    ngf: int = 64  # generator width
    unet_downs: int = 0  # U-Net halvings; 0: down to 1x1 for the crop (8 for 256, 7 for 128)
    resnet_blocks: int = 9  # 6 or 9
    norm: str = "instance"  # batch | instance | none (generator and discriminator)
    upsample: str = "deconv"  # deconv (transposed conv) | resize (upsample + conv: no checkerboard)
    dropout: bool = True  # pix2pix's dropout in the U-Net's inner decoder stages
    input_channels: int = 1  # mask channels: 1, or 3 as the old project fed it
    ndf: int = 64  # discriminator width
    d_layers: int = 3  # PatchGAN stride-2 stages: 3 gives 70x70 patches
    num_d: int = 1  # discriminator scales (pix2pixHD uses 2-3)
    spectral_norm: bool = False
    init: str = "normal"  # normal | xavier | kaiming | orthogonal
    init_gain: float = 0.02


@dataclass
class LossConfig:
    """What the generator and discriminator minimize."""

    gan_mode: str = "vanilla"  # vanilla | lsgan | hinge
    gan_weight: float = 1.0  # 0: the generator trains alone on its other losses; no discriminator
    l1_weight: float = 100.0
    vgg_weight: float = 0.0  # VGG19 perceptual loss; needs the ImageNet weights file
    vgg_layers: list[str] = field(default_factory=lambda: ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"])
    vgg_weights: str = ""  # path to vgg19-dcbb9e9d.pth; "": the torch hub cache
    fm_weight: float = 0.0  # discriminator feature matching


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from ``values``; unknown keys are an error naming the valid ones."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise SatganError(f"unknown {cls.__name__} setting(s) {unknown}; valid: {', '.join(names)}")
    try:
        return cls(**values)
    except TypeError as exc:  # a required setting is missing
        raise SatganError(f"{cls.__name__}: {exc}") from exc


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
