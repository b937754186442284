"""A run's :class:`~satgan.config.training.Config` from nested dicts (checkpoints, config
files) and from ``section.key=value`` overrides (``--set``)."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from satgan.config.shared import to_dict
from satgan.config.training import Config, DataConfig, LossConfig, ModelConfig, TrainConfig
from satgan.errors import SatganError
from satgan.settings import from_dict, parse_text, type_hints

SECTIONS = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig, "train": TrainConfig}
# Settings that became derived: (section, key) -> the setting that now decides it.
RETIRED = {("model", "input_channels"): ("data", "mask_channels")}


def config_from_dict(values: dict[str, Any], where: str = "") -> Config:
    """A :class:`Config` from nested dicts (as stored in checkpoints and config files).
    ``where`` (a file name and ": ") prefixes error messages."""
    if not isinstance(values, dict):
        raise SatganError(f"{where}the config must be a mapping of sections, got {type(values).__name__}")
    unknown = sorted(set(values) - set(SECTIONS))
    if unknown:
        raise SatganError(f"{where}unknown config section(s) {unknown}; valid: {', '.join(SECTIONS)}")
    values = copy.deepcopy(values)
    for (section, key), (to_section, to_key) in RETIRED.items():
        old = values.get(section, {})
        if isinstance(old, dict) and key in old:
            retired = old.pop(key)
            now = values.get(to_section, {}).get(to_key, retired)
            if retired != now:
                raise SatganError(f"{where}{section}.{key}={retired} disagrees with {to_section}.{to_key}={now}; "
                                  f"{section}.{key} is now {to_section}.{to_key}")
    sections = {name: from_dict(cls, values.get(name, {}), where) for name, cls in SECTIONS.items()}
    try:
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
        if section_name not in SECTIONS:
            raise SatganError(f"--set {item!r}: unknown section {section_name!r}; valid: {', '.join(SECTIONS)}")
        fields = {f.name: f for f in dataclasses.fields(SECTIONS[section_name])}
        if name not in fields:
            raise SatganError(f"--set {item!r}: unknown {section_name} setting {name!r}; valid: {', '.join(fields)}")
        hint = type_hints(SECTIONS[section_name])[name]
        values[section_name][name] = parse_text(text, hint, key.strip())
    return config_from_dict(values)
