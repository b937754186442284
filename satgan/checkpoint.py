"""Checkpoints: one self-describing file per save, written atomically, loaded safely.

This module alone knows the file's fields. A checkpoint holds the full config (so it
alone says how to rebuild its networks), the generator's weights, the training
progress, where the training data came from, and, for resuming, the trainer's own
state (discriminator, optimizers, schedulers, AMP scaler, RNG states, history), which
only the Trainer reads. Files are loaded with ``torch.load(weights_only=True)``: a
checkpoint can never run code.

Compatibility is decided by the file's ``format`` number, not by the satgan version:
older formats are migrated on load (:data:`MIGRATIONS`), newer ones are refused with
the advice to upgrade.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import satgan
from satgan import SatganError, SatganWarning
from satgan.atomic import atomic_path
from satgan.config import Config, config_from_dict, to_dict
from satgan.models.weights_files import check_finite, read_torch_file, state_dict_of

FORMAT = 2
LAST = "last.pt"


@dataclass
class Checkpoint:
    """What a checkpoint file holds, typed."""

    config: Config
    generator: dict[str, torch.Tensor]  # the weights generation uses (the moving average, where kept)
    epoch: int = 0  # finished epochs
    step: int = 0  # optimisation steps taken
    pixel_scale: float | None = None  # source pixels per training pixel, for seamless generation
    manifest_hash: str = ""  # content hash of the training data's manifest
    training: dict[str, Any] | None = None  # the Trainer's state_dict(), for resuming
    # networks besides its own that took part in training, by role ({"alignment segmenter": {"key": ...}}):
    # what may never judge it
    trained_with: dict[str, Any] = dataclasses.field(default_factory=dict)
    satgan_version: str = satgan.__version__
    path: Path | None = None  # where it was loaded from

    @classmethod
    def from_training_state(cls, config: Config, state: dict[str, Any], **data: Any) -> Checkpoint:
        """A checkpoint of a Trainer's ``state_dict()``: its generator, epoch and step are
        what generation reads; the rest is kept whole for resuming."""
        ema = state.get("generator_ema")
        training = {k: v for k, v in state.items() if k not in ("epoch", "step")}
        return cls(config=config, generator=ema["weights"] if ema else state["generator"], epoch=state["epoch"],
                   step=state["step"], training=training, **data)

    def training_state(self) -> dict[str, Any]:
        """The Trainer's ``state_dict()`` this checkpoint was made from."""
        if self.training is None:
            raise SatganError(f"{self.path}: holds a generator only, nothing to resume training from")
        check_finite(self.training, self.path, "training state", "the file is damaged; resume from an earlier one")
        return {"generator": self.generator, **self.training, "epoch": self.epoch, "step": self.step}

    def to_file(self) -> dict[str, Any]:
        return {"format": FORMAT, "satgan_version": self.satgan_version, "config": to_dict(self.config),
                "generator": self.generator, "epoch": self.epoch, "step": self.step,
                "pixel_scale": self.pixel_scale, "manifest_hash": self.manifest_hash, "training": self.training,
                "trained_with": self.trained_with}


def _from_format_1(raw: dict[str, Any]) -> dict[str, Any]:
    """Format 1 kept the trainer's state at the top level, with the epoch's partial sums
    and the history as JSON strings."""
    import json

    keys = ("discriminator", "opt_G", "opt_D", "sched_G", "sched_D", "scaler", "rng", "batch_in_epoch")
    training = {k: raw.pop(k) for k in keys if k in raw}
    training["partial"] = json.loads(raw.pop("partial", '{"sums": {}, "seen": 0, "seconds": 0.0}'))
    training["history"] = json.loads(raw.pop("history", "[]"))
    raw["training"] = training
    return raw


# format N -> a function turning a raw format-N dict into format N + 1
MIGRATIONS = {1: _from_format_1}


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` to ``path`` atomically: a failed write (a full disk) leaves the
    previous file as it was, and says so."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(ckpt.to_file(), tmp)
    except (OSError, RuntimeError) as exc:  # torch reports a full disk as a RuntimeError
        full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC or "unexpected pos" in str(exc)
        reason = "the disk is full" if full else f"{type(exc).__name__}: {exc}"
        kept = f"; the previous {path.name} is intact" if path.exists() else ""
        raise SatganError(f"{path}: cannot save the checkpoint ({reason}){kept}") from None
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load, migrate and check a checkpoint. Every way a file can fail to be one (missing, a
    folder, unreadable, empty, truncated, random bytes, a zip or pickle torch did not write,
    fields of the wrong type, NaN weights, a newer format) is one :class:`SatganError` naming it."""
    path = Path(path).expanduser()
    raw = read_torch_file(path, "checkpoint", "a satgan checkpoint", map_location)
    if not isinstance(raw, dict) or "format" not in raw or "generator" not in raw or "config" not in raw:
        raise SatganError(f"{path}: not a satgan checkpoint (no format, config and generator)")
    fmt = raw["format"]
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
        raise SatganError(f"{path}: not a satgan checkpoint (its format is {fmt!r}, not a format number)")
    if fmt > FORMAT:
        raise SatganError(f"{path}: checkpoint format {fmt!r} is newer than this satgan {satgan.__version__} "
                          f"reads (format {FORMAT}); upgrade satgan")
    try:
        while fmt < FORMAT:
            raw = MIGRATIONS[fmt](dict(raw))
            fmt += 1
    except (KeyError, TypeError, ValueError) as exc:
        raise SatganError(f"{path}: a damaged format-{fmt} checkpoint ({type(exc).__name__}: {exc})") from None
    config = config_from_dict(raw["config"], where=f"{path}: ")
    _check_fields(raw, path)
    fields = {f.name for f in dataclasses.fields(Checkpoint)} - {"config", "path"}
    return Checkpoint(config=config, path=path, **{k: raw[k] for k in fields if k in raw})


# field -> (the types it may have, what it is), for the fields a loaded file must get right
FIELD_TYPES = {"epoch": ((int,), "a number of epochs"), "step": ((int,), "a number of steps"),
               "pixel_scale": ((int, float, type(None)), "a number or None"),
               "manifest_hash": ((str,), "a text"), "training": ((dict, type(None)), "a dict or None"),
               "satgan_version": ((str,), "a text"), "trained_with": ((dict,), "a dict")}


def _check_fields(raw: dict, path: Path) -> None:
    """The generator a state dict of finite tensors, the other fields of their types (the
    trainer's state is checked when a run resumes from it: :meth:`Checkpoint.training_state`)."""
    state_dict_of(raw["generator"], path, "a satgan checkpoint", "down.0.0.weight (its generator's weights)")
    for name, (types, what) in FIELD_TYPES.items():
        value = raw.get(name)
        if name in raw and (not isinstance(value, types) or isinstance(value, bool)):
            raise SatganError(f"{path}: not a satgan checkpoint: {name} must be {what}, got {value!r:.60}")
    check_finite(raw["generator"], path, "generator weight", "the file is damaged; use an earlier checkpoint")


def architecture_differences(a: Config, b: Config) -> list[str]:
    """Settings that change the networks' shapes (``arch`` in their declaration), where
    ``a`` and ``b`` differ; plus the facts derived from settings that shape them."""
    diffs = []
    sections = ["data", "model"] + (["discriminator"] if a.model.discriminator == b.model.discriminator else [])
    for section in sections:
        sa, sb = getattr(a, section), getattr(b, section)
        for f in dataclasses.fields(sa):
            if f.metadata.get("arch") and getattr(sa, f.name) != getattr(sb, f.name):
                if section == "data" and f.name == "crop" and not _crop_shapes_network(a):
                    continue
                diffs.append(f"{section}.{f.name}: {getattr(sa, f.name)!r} vs {getattr(sb, f.name)!r}")
    if (a.loss.gan_weight == 0) != (b.loss.gan_weight == 0):
        diffs.append(f"loss.gan_weight: {a.loss.gan_weight} vs {b.loss.gan_weight} (discriminator or none)")
    return diffs


def changed_settings(a: Config, b: Config) -> list[str]:
    """Every setting that differs between ``a`` and ``b``, as ``section.key: old -> new``."""
    old, new = to_dict(a), to_dict(b)
    return [f"{s}.{k}: {old[s][k]!r} -> {new[s][k]!r}" for s in new for k in new[s] if old[s].get(k) != new[s][k]]


def _crop_shapes_network(config: Config) -> bool:
    """The crop sets a U-Net's depth unless ``unet_downs`` fixes it."""
    return config.model.generator == "unet" and not config.model.unet_downs


def newest_intact(folder: str | os.PathLike) -> tuple[Checkpoint | None, list[Path]]:
    """The most recent checkpoint in ``folder`` that loads and can be resumed from
    (``last.pt``, else the newest ``epoch_*.pt``), and the ones skipped because they could
    not (empty, truncated, a folder, NaN weights, ...: each with a warning)."""
    folder = Path(folder)
    candidates = [folder / LAST] + sorted(folder.glob("epoch_*.pt"), reverse=True)
    broken = []
    for path in candidates:
        if not path.exists():
            continue
        try:
            found = load_checkpoint(path)
            found.training_state()  # one that cannot be resumed from is passed over too
            return found, broken
        except SatganError as exc:
            broken.append(path)
            warnings.warn(f"{exc}; trying an older checkpoint", SatganWarning, stacklevel=2)
    return None, broken


# -- random number generator states ------------------------------------------------------------
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
