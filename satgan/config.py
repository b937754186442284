"""Every setting of satgan, as dataclasses: the one path from a notebook's parameters
cell or the command line into the library.

Defaults here are the only defaults: the command line reads its defaults from these
fields, and notebooks pass their parameters straight in. ``from_dict`` rejects unknown
keys with the list of valid ones, so a typo in a parameter is an error, not a no-op.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
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


@dataclass
class TrainConfig:
    """The training run. Defaults are pix2pix's (lr 2e-4, Adam betas 0.5/0.999, batch 1)."""

    epochs: int = 200
    batch_size: int = 1
    lr: float = 2e-4  # generator and discriminator
    beta1: float = 0.5
    beta2: float = 0.999
    scheduler: str = "linear"  # linear | step | cosine | plateau | constant
    decay_epochs: int = 100  # linear: the last decay_epochs decay the lr to 0; cosine: ignored
    step_epochs: int = 50  # step: multiply the lr by gamma every step_epochs
    gamma: float = 0.5  # step and plateau factor
    plateau_patience: int = 5  # plateau: validations without a better val PSNR before reducing
    amp: str = "auto"  # auto (bf16 where supported, else fp16, on CUDA) | bf16 | fp16 | off
    channels_last: bool = False
    compile: bool = False  # torch.compile the generator and discriminator
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    workers: int = 2  # DataLoader worker processes
    val_every: int = 1  # epochs between validations
    val_samples: int = 16  # the fixed validation subset (first N of the val split)
    checkpoint_every: int = 500  # steps between last.pt refreshes (and at every epoch end)
    keep_every: int = 10  # epochs between kept epoch_XXXX.pt checkpoints (0: none)
    log_every: int = 10  # steps between TensorBoard loss points
    seed: int = 0
    deterministic: bool = False  # deterministic kernels: exact resume, slower


@dataclass
class Config:
    """Everything a training run needs; stored inside each checkpoint."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class GenerateConfig:
    """``satgan generate``: images from masks with a trained checkpoint."""

    checkpoint: str
    input: str  # a mask file, a folder of masks, or a pretransformed folder
    out: str
    mode: str = "seamless"  # resize | grid | seamless
    grid: int = 2  # grid mode: NxN tiles across the shorter side
    scale: float | None = None  # seamless: mask pixels per output pixel; None: the training scale
    overlap: float = 0.25  # seamless: least overlap between neighbouring windows (fraction)
    batch_size: int = 8
    device: str = "auto"
    dropout: bool = False  # pix2pix's dropout as noise (otherwise deterministic)
    seed: int = 0  # for dropout noise
    split: str = "val"  # pretransformed input: which split
    limit: int | None = None  # pretransformed input: at most this many tiles
    preview_size: int = 1024  # seamless: longest side of the JPEG preview


@dataclass
class EvaluateConfig:
    """``satgan evaluate``: PSNR, SSIM, FID and KID, per city and overall."""

    out: str  # the JSON report
    checkpoints: list[str] = field(default_factory=list)  # "path" or "name=path"
    data: str | None = None  # a pretransformed folder
    split: str = "val"
    limit: int | None = None  # at most this many tiles (the first ones)
    baselines: list[str] = field(default_factory=list)  # flat (two mean colours), untrained
    generated: str | None = None  # folder mode: generated images ...
    real: str | None = None  # ... matched by name to real ones
    inception: str | None = None  # path to the FID Inception file; None: found automatically
    kid_subsets: int = 100
    batch_size: int = 16
    device: str = "auto"


@dataclass
class GalleryConfig:
    """``satgan gallery``: mask | generated (per model) | real, as figures, files and HTML."""

    out: str
    data: str  # a pretransformed folder
    checkpoints: list[str] = field(default_factory=list)  # "path" or "name=path"
    split: str = "val"
    per_city: int = 2  # random samples per city
    indices: list[int] | None = None  # chosen samples instead of random ones
    scenes: int = 1  # whole scenes reassembled from their grid tiles, per city
    seed: int = 0
    batch_size: int = 16
    device: str = "auto"


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


def config_from_dict(values: dict[str, Any]) -> Config:
    """A :class:`Config` from nested dicts (as stored in checkpoints and config files)."""
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    unknown = sorted(set(values) - set(sections))
    if unknown:
        raise SatganError(f"unknown config section(s) {unknown}; valid: {', '.join(sections)}")
    kinds = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig, "train": TrainConfig}
    return Config(**{name: from_dict(kinds[name], values.get(name, {})) for name in kinds})


def _parse_value(text: str, annotation: str, key: str) -> Any:
    """``text`` as the setting's declared type (bool, int, float, list, str)."""
    kind = annotation.split("|")[0].strip()
    try:
        if kind == "bool":
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind.startswith("list"):
            return [t.strip() for t in text.split(",") if t.strip()]
    except ValueError:
        raise SatganError(f"{key}={text!r}: expected {kind}") from None
    return text


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Apply ``section.key=value`` strings (as from ``--set``); unknown keys list the valid ones."""
    config = copy.deepcopy(config)
    for item in overrides:
        key, sep, text = item.partition("=")
        section_name, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise SatganError(f"--set {item!r}: expected section.key=value, e.g. train.lr=1e-4")
        section = getattr(config, section_name, None)
        if not dataclasses.is_dataclass(section):
            raise SatganError(f"--set {item!r}: unknown section {section_name!r}; valid: data, model, loss, train")
        fields = {f.name: f for f in dataclasses.fields(section)}
        if name not in fields:
            raise SatganError(f"--set {item!r}: unknown {section_name} setting {name!r}; valid: {', '.join(fields)}")
        setattr(section, name, _parse_value(text.strip(), str(fields[name].type), key))
    return config


# Presets: overrides on the defaults, by section.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # The reference pix2pix: U-Net 256, batch norm, vanilla GAN, transposed convolutions, L1 100.
    "pix2pix": {
        "model": {"generator": "unet", "norm": "batch", "upsample": "deconv"},
        "loss": {"gan_mode": "vanilla", "l1_weight": 100.0},
        "train": {"epochs": 200, "decay_epochs": 100, "batch_size": 1},
    },
    # Our default: instance norm (what the old project found best), resize-convolution
    # upsampling (no checkerboard), validation-PSNR plateau scheduling. See docs/RESULTS.md.
    "satgan": {
        "model": {"generator": "unet", "norm": "instance", "upsample": "resize"},
        "loss": {"gan_mode": "vanilla", "l1_weight": 100.0},
        "train": {"epochs": 200, "batch_size": 4, "scheduler": "plateau", "plateau_patience": 5},
    },
    # Small and fast, for CPU demos and tests: 128 crops of 143 tiles, narrow networks.
    "quick": {
        "data": {"crop": 128},
        "model": {"generator": "unet", "ngf": 16, "ndf": 16, "norm": "instance", "upsample": "resize"},
        "train": {"epochs": 4, "batch_size": 4, "scheduler": "constant", "val_samples": 8,
                  "checkpoint_every": 50, "keep_every": 0, "workers": 0},
    },
}


def preset(name: str) -> Config:
    """The :class:`Config` of preset ``name``."""
    if name not in PRESETS:
        raise SatganError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    base = to_dict(Config())
    for section, values in PRESETS[name].items():
        base[section].update(values)
    return config_from_dict(base)


def make_config(preset_name: str = "satgan", config_file: str | None = None,
                overrides: list[str] | None = None) -> Config:
    """A training config: a preset, then a JSON file of settings by section (full, as a
    run's ``config.json``, or partial), then ``section.key=value`` overrides."""
    cfg = preset(preset_name)
    if config_file:
        path = Path(config_file).expanduser()
        try:
            values = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SatganError(f"{path}: cannot read the config file ({exc})") from exc
        merged = to_dict(cfg)
        for section, settings in values.items():
            if section not in merged or not isinstance(settings, dict):
                raise SatganError(f"{path}: unknown config section {section!r}; valid: {', '.join(merged)}")
            merged[section].update(settings)
        cfg = config_from_dict(merged)
    return apply_overrides(cfg, list(overrides or []))
