"""Named starting points for training, and how a training config is put together:
a preset, then a JSON file of settings, then ``section.key=value`` overrides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from satgan.config import SECTIONS, Config, apply_overrides, config_from_dict, to_dict
from satgan.errors import SatganError

# Presets: overrides on the defaults, by section.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # The reference pix2pix: U-Net 256, batch norm, vanilla GAN, transposed convolutions, L1 100.
    "pix2pix": {
        "model": {"generator": "unet", "norm": "batch", "upsample": "deconv"},
        "loss": {"gan_mode": "vanilla", "l1_weight": 100.0},
        "train": {"epochs": 200, "decay_epochs": 100, "batch_size": 1},
    },
    # Our default: instance norm (what the old project found best), resize-convolution
    # upsampling (no checkerboard), reflect padding (no frame at window borders), a blur
    # before each subsampling (seamless windows agree), validation-PSNR plateau
    # scheduling; and quick's realism recipe: 4 noise channels, the projected
    # discriminator with hinge loss and DiffAugment, L1 10 (measured at CPU scale only:
    # the PatchGAN with R1 and a slow discriminator sat at chance there; docs/RESULTS.md).
    "satgan": {
        "model": {"generator": "unet", "norm": "instance", "upsample": "resize", "padding": "reflect",
                  "antialias": 3, "noise": 4, "discriminator": "projected"},
        "loss": {"gan_mode": "hinge", "l1_weight": 10.0, "d_augment": ["translation", "cutout", "color"],
                 "r1_weight": 0.0},
        "train": {"epochs": 200, "batch_size": 4, "scheduler": "plateau", "plateau_patience": 5},
    },
    # Small and fast, for CPU demos and tests: 128 crops of 143 tiles, a 16-wide U-Net fed
    # 4 channels of noise (a mask says nothing about roads and trees: without noise the
    # generator can only draw their average, a grey field), judged by the projected
    # discriminator (frozen ImageNet features: with a few hundred tiles a PatchGAN learnt
    # from scratch sat at chance), hinge loss, L1 down to 10, DiffAugment, no R1. Chosen
    # by a recipe search on geocompass (docs/RESULTS.md, "A discriminator that teaches").
    "quick": {
        "data": {"crop": 128},
        "model": {"generator": "unet", "ngf": 16, "ndf": 16, "norm": "instance", "upsample": "resize",
                  "padding": "reflect", "antialias": 3, "noise": 4, "discriminator": "projected"},
        "loss": {"gan_mode": "hinge", "l1_weight": 10.0, "d_augment": ["translation", "cutout", "color"],
                 "r1_weight": 0.0},
        "train": {"epochs": 4, "batch_size": 4, "scheduler": "constant", "val_samples": 8, "lr_d": 2e-4,
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
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SatganError(f"{path}: cannot read the config file ({exc})") from exc
        if not isinstance(values, dict):
            raise SatganError(f"{path}: expected a JSON object of sections ({', '.join(SECTIONS)})")
        merged = to_dict(cfg)
        for section, settings in values.items():
            if section not in merged or not isinstance(settings, dict):
                raise SatganError(f"{path}: unknown config section {section!r}; valid: {', '.join(merged)}")
            merged[section].update(settings)
        cfg = config_from_dict(merged, where=f"{path}: ")
    return apply_overrides(cfg, list(overrides or []))
