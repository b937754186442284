"""Checkpoints: one self-describing file per save, written atomically, loaded safely.

A checkpoint holds the networks, optimizers, schedulers, AMP scaler, RNG states, epoch
and step, the full config, the data manifest's hash and the satgan version, so a
checkpoint alone says how it was made and how to rebuild its networks. Files are
loaded with ``torch.load(weights_only=True)``: a checkpoint can never run code.
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import satgan
from satgan.atomic import atomic_path
from satgan.config import Config, config_from_dict, to_dict
from satgan.data.readers import SatganWarning
from satgan.errors import SatganError

FORMAT = 1
LAST = "last.pt"
REQUIRED = ("format", "satgan_version", "config", "generator", "epoch", "step")


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states, in types ``weights_only`` loading accepts."""
    version, words, gauss = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [version, list(words), gauss],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()  # this process's device only
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus format and version) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "satgan_version": satgan.__version__, **state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint; a clear :class:`SatganError` for truncated or foreign files."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SatganError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise SatganError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc)[:200]}); "
            "the file is truncated or corrupt"
        ) from exc
    missing = [k for k in REQUIRED if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise SatganError(f"{path}: not a satgan checkpoint (missing {', '.join(missing)})")
    if ckpt["format"] != FORMAT:
        raise SatganError(f"{path}: checkpoint format {ckpt['format']}, this satgan reads format {FORMAT}")
    return ckpt


def checkpoint_config(ckpt: dict[str, Any]) -> Config:
    return config_from_dict(ckpt["config"])


def architecture_differences(a: Config, b: Config) -> list[str]:
    """Settings that change the networks' shapes, where ``a`` and ``b`` differ."""
    keys = ("generator", "ngf", "unet_downs", "resnet_blocks", "norm", "upsample", "input_channels",
            "ndf", "d_layers", "num_d", "spectral_norm")
    ma, mb = to_dict(a.model), to_dict(b.model)
    diffs = [f"model.{k}: {ma[k]!r} vs {mb[k]!r}" for k in keys if ma[k] != mb[k]]
    if a.data.crop != b.data.crop and a.model.generator == "unet" and not a.model.unet_downs:
        diffs.append(f"data.crop: {a.data.crop} vs {b.data.crop}")
    if (a.loss.gan_weight == 0) != (b.loss.gan_weight == 0):
        diffs.append(f"loss.gan_weight: {a.loss.gan_weight} vs {b.loss.gan_weight} (discriminator or none)")
    return diffs


def newest_intact(folder: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """The most recent checkpoint in ``folder`` that loads: ``last.pt``, else the newest
    ``epoch_*.pt``; each unreadable one is skipped with a warning."""
    folder = Path(folder)
    candidates = [folder / LAST] + sorted(folder.glob("epoch_*.pt"), reverse=True)
    for path in candidates:
        if not path.exists():
            continue
        try:
            return path, load_checkpoint(path)
        except SatganError as exc:
            warnings.warn(f"{exc}; trying an older checkpoint", SatganWarning, stacklevel=2)
    return None
