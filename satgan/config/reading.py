"""How a training run's :class:`~satgan.config.training.Config` is put together and read
back: a named preset (overrides of the defaults), then a JSON file of settings, then
``section.key=value`` overrides; and the nested dicts checkpoints and ``config.json``
store, older ones included.

The ``discriminator`` section holds the settings of ``model.discriminator``'s kind (each
kind declares its own): when a preset, a file or an override changes the kind, the
section starts again from the new kind's defaults.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from satgan import SatganError
from satgan.config.training import Config, DataConfig, LossConfig, ModelConfig, TrainConfig, discriminator_kind
from satgan.settings import Settings, from_dict, parse_text, setting, to_dict, type_hints

SECTIONS = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig, "train": TrainConfig}
DISCRIMINATOR = "discriminator"  # the section whose settings the kind declares

# Named starting points, as overrides of the defaults by section. Why each is as it is:
# docs/training.md, "Presets".
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "pix2pix": {
        "model": {"generator": "unet", "norm": "batch", "upsample": "deconv"},
        "loss": {"gan_mode": "vanilla", "l1_weight": 100.0},
        "train": {"epochs": 200, "decay_epochs": 100, "batch_size": 1},
    },
    "satgan": {
        "model": {"generator": "unet", "norm": "instance", "upsample": "resize", "padding": "reflect",
                  "antialias": 3, "noise": 4, "discriminator": "projected_seg"},
        "loss": {"gan_mode": "hinge", "l1_weight": 10.0, "d_augment": ["translation", "cutout", "color"],
                 "r1_weight": 0.0, "seg_weight": 1.0},
        "train": {"epochs": 200, "batch_size": 4, "scheduler": "plateau", "plateau_patience": 5},
    },
    "quick": {
        "data": {"crop": 128},
        "model": {"generator": "unet", "ngf": 16, "ndf": 16, "norm": "instance", "upsample": "resize",
                  "padding": "reflect", "antialias": 3, "noise": 4, "discriminator": "projected_seg"},
        "loss": {"gan_mode": "hinge", "l1_weight": 10.0, "d_augment": ["translation", "cutout", "color"],
                 "r1_weight": 0.0, "seg_weight": 1.0},
        "train": {"epochs": 4, "batch_size": 4, "scheduler": "constant", "val_samples": 8, "lr_d": 2e-4,
                  "checkpoint_every": 50, "keep_every": 0, "workers": 0},
    },
}

# Settings that moved: (section, key) -> where they are now, per discriminator kind (a
# kind not named never read the key). Stored configs are moved on reading; --set names the
# new place.
MOVED = {
    ("model", "num_d"): {"patch": "scales"},
    ("model", "d_layers"): {"patch": "layers", "oasis": "levels"},
    ("model", "spectral_norm"): {"patch": "spectral_norm"},
    ("model", "feature_weights"): {"projected": "feature_weights"},
    ("loss", "class_balance"): {"oasis": "class_balance"},
    ("loss", "labelmix_weight"): {"oasis": "labelmix_weight"},
}
# Settings that became derived: (section, key) -> the setting that now decides it.
RETIRED = {("model", "input_channels"): ("data", "mask_channels")}


def merge_sections(values: dict[str, Any], updates: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``values`` (nested dicts by section) with ``updates`` laid over them, section by
    section; a change of ``model.discriminator`` restarts the discriminator section from
    the new kind's defaults, unless ``updates`` brings that section too."""
    if not isinstance(updates, dict):
        raise SatganError(f"{where}expected a JSON object of sections ({', '.join([*SECTIONS, DISCRIMINATOR])}), "
                          f"got {type(updates).__name__}")
    merged = copy.deepcopy(values)
    for section, settings in updates.items():
        if section not in (*SECTIONS, DISCRIMINATOR) or not isinstance(settings, dict):
            raise SatganError(f"{where}unknown config section {section!r}; valid: "
                              f"{', '.join([*SECTIONS, DISCRIMINATOR])}")
        if section == DISCRIMINATOR:
            continue
        merged.setdefault(section, {}).update(copy.deepcopy(settings))
    kind = merged.get("model", {}).get("discriminator")
    if kind != values.get("model", {}).get("discriminator"):
        merged[DISCRIMINATOR] = {}
    if isinstance(updates.get(DISCRIMINATOR), dict):
        merged.setdefault(DISCRIMINATOR, {})
        merged[DISCRIMINATOR] = {**(merged[DISCRIMINATOR] or {}), **copy.deepcopy(updates[DISCRIMINATOR])}
    return merged


def _move_settings(values: dict[str, Any], where: str) -> None:
    """Stored configs from before a setting moved or became derived, read in place."""
    kind = values.get("model", {}).get("discriminator", ModelConfig.discriminator)
    section = values.get(DISCRIMINATOR) or {}
    for (old_section, key), new_keys in MOVED.items():
        old = values.get(old_section)
        if not isinstance(old, dict) or key not in old:
            continue
        value = old.pop(key)
        new_key = new_keys.get(kind)
        if new_key is None:
            continue
        if new_key in section and section[new_key] != value:
            raise SatganError(f"{where}{old_section}.{key}={value} disagrees with {DISCRIMINATOR}.{new_key}="
                              f"{section[new_key]}; {old_section}.{key} is now {DISCRIMINATOR}.{new_key}")
        section[new_key] = value
    values[DISCRIMINATOR] = section
    for (old_section, key), (to_section, to_key) in RETIRED.items():
        old = values.get(old_section, {})
        if isinstance(old, dict) and key in old:
            retired = old.pop(key)
            now = values.get(to_section, {}).get(to_key, retired)
            if retired != now:
                raise SatganError(f"{where}{old_section}.{key}={retired} disagrees with {to_section}.{to_key}={now}; "
                                  f"{old_section}.{key} is now {to_section}.{to_key}")


def config_from_dict(values: dict[str, Any], where: str = "") -> Config:
    """A :class:`Config` from nested dicts (as stored in checkpoints and config files).
    ``where`` (a file name and ": ") prefixes error messages."""
    if not isinstance(values, dict):
        raise SatganError(f"{where}the config must be a mapping of sections, got {type(values).__name__}")
    unknown = sorted(set(values) - {*SECTIONS, DISCRIMINATOR})
    if unknown:
        raise SatganError(f"{where}unknown config section(s) {unknown}; valid: {', '.join([*SECTIONS, DISCRIMINATOR])}")
    values = copy.deepcopy(values)
    for name in SECTIONS:
        if not isinstance(values.get(name, {}), dict):
            raise SatganError(f"{where}config section {name!r} must be a mapping of settings")
    _move_settings(values, where)
    sections = {name: from_dict(cls, values.get(name, {}), where) for name, cls in SECTIONS.items()}
    try:
        kind = discriminator_kind(sections["model"].discriminator)
        sections[DISCRIMINATOR] = from_dict(kind.settings, values[DISCRIMINATOR] or {}, where)
        return Config(**sections)
    except SatganError as exc:
        raise SatganError(f"{where}{exc}") from None


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Apply ``section.key=value`` strings (as from ``--set``); unknown keys list the valid ones."""
    values = to_dict(config)
    for item in overrides:
        key, sep, text = item.partition("=")
        section_name, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise SatganError(f"--set {item!r}: expected section.key=value, e.g. train.lr=1e-4")
        if (section_name, name) in MOVED:
            now = " or ".join(f"{DISCRIMINATOR}.{k} (model.discriminator={d})"
                              for d, k in MOVED[section_name, name].items())
            raise SatganError(f"--set {item!r}: {section_name}.{name} is now {now}")
        if section_name == DISCRIMINATOR:
            cls = discriminator_kind(values["model"]["discriminator"]).settings
        elif section_name in SECTIONS:
            cls = SECTIONS[section_name]
        else:
            raise SatganError(f"--set {item!r}: unknown section {section_name!r}; valid: "
                              f"{', '.join([*SECTIONS, DISCRIMINATOR])}")
        fields = [f.name for f in dataclasses.fields(cls)]
        if name not in fields:
            kind = values["model"]["discriminator"]
            what = f"{kind} discriminator" if section_name == DISCRIMINATOR else section_name
            raise SatganError(f"--set {item!r}: unknown {what} setting {name!r}; valid: {', '.join(fields) or 'none'}")
        value = parse_text(text, type_hints(cls)[name], key.strip())
        values = merge_sections(values, {section_name: {name: value}})
    return config_from_dict(values)


def preset(name: str) -> Config:
    """The :class:`Config` of preset ``name``: its overrides laid over the defaults."""
    if name not in PRESETS:
        raise SatganError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return config_from_dict(merge_sections(to_dict(Config()), PRESETS[name]))


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
        where = f"{path}: "
        if isinstance(values, dict):
            _move_settings(values, where)  # a config.json of an older run
        cfg = config_from_dict(merge_sections(to_dict(cfg), values, where), where=where)
    return apply_overrides(cfg, list(overrides or []))


@dataclass
class TrainJobConfig(Settings):
    """``satgan train``: the data, the run folder, and how the run's :class:`Config` is put
    together (:func:`make_config`)."""

    data: str = setting(positional=True, help="a pretransformed folder (satgan pretransform)")
    run_dir: str = setting(positional=True, help="checkpoints, samples, TensorBoard logs go here")
    preset: Literal[tuple(PRESETS)] = setting("satgan", help="starting settings")
    config: str = setting("", help="JSON file of settings by section (e.g. a run's config.json)")
    set: list[str] = setting(factory=list, repeat=True,
                             help="override one setting as SECTION.KEY=VALUE, e.g. train.lr=1e-4 (repeatable; "
                                  "the settings are in docs/training.md)")
    resume: str = setting("never", help="never, auto (the newest intact checkpoint in RUN_DIR), or a checkpoint "
                                        "path")
    overwrite: bool = setting(False, help="start over in a RUN_DIR that holds a run")
