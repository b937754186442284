"""A training run's state: what a checkpoint stores and restoring it (each mirrors the
other), resuming a checkpoint's run, and the DDP and torch.compile wrappers."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from satgan import SatganError, SatganWarning
from satgan.checkpoint import Checkpoint, architecture_differences, changed_settings, rng_state, set_rng_state
from satgan.config import Config
from satgan.runtime import Processes


def bare(net: nn.Module | None) -> nn.Module | None:
    """``net`` without its torch.compile and DDP wrappers (whose state_dict keys differ)."""
    net = getattr(net, "_orig_mod", net)  # torch.compile
    return getattr(net, "module", net)  # DDP


class TrainingState:
    """The state methods of :class:`satgan.training.trainer.Trainer`, on the networks, optimizers,
    schedulers and counters its ``__init__`` builds."""

    def state_dict(self) -> dict:
        rng = self.procs.gather(rng_state())  # every rank's, so each resumes its own stream
        D = bare(self.D)
        return {
            "generator": bare(self.G).state_dict(), "generator_ema": self.ema.state_dict() if self.ema else None,
            "discriminator": D.state_dict() if D is not None else None,
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict() if self.opt_D else None,
            "sched_G": self.sched_G.state_dict(), "sched_D": self.sched_D.state_dict() if self.sched_D else None,
            "encoder": self.E.state_dict() if self.E is not None else None,
            "opt_E": self.opt_E.state_dict() if self.opt_E else None,
            "sched_E": self.sched_E.state_dict() if self.sched_E else None,
            "scaler": self.scaler.state_dict(), "rng": rng, "epoch": self.epoch, "step": self.step,
            "batch_in_epoch": self.batch_in_epoch, "partial": self.partial, "history": self.history,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`. Call it before :meth:`wrap`: the bare networks'
        parameter names are those saved."""
        bare(self.G).load_state_dict(state["generator"])
        if self.ema is not None:
            if state.get("generator_ema") is None:
                raise SatganError("the checkpoint keeps no moving average of the generator; resume with train.ema=0")
            self.ema.load_state_dict(state["generator_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.sched_G.load_state_dict(state["sched_G"])
        if self.D is not None:
            bare(self.D).load_state_dict(state["discriminator"])
            self.opt_D.load_state_dict(state["opt_D"])
            self.sched_D.load_state_dict(state["sched_D"])
        if self.E is not None:  # an encoder is architecture: resume_from has checked it was there
            self.E.load_state_dict(state["encoder"])
            self.opt_E.load_state_dict(state["opt_E"])
            self.sched_E.load_state_dict(state["sched_E"])
        self.scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        set_rng_state(rng[self.procs.rank] if isinstance(rng, list) else rng)
        self.epoch, self.step, self.batch_in_epoch = state["epoch"], state["step"], state["batch_in_epoch"]
        self.partial, self.history = state["partial"], state["history"]

    def resume_from(self, ckpt: Checkpoint) -> None:
        """Continue ``ckpt``'s run: the same architecture is required; changed settings
        and other training data are named in warnings."""
        diffs = architecture_differences(ckpt.config, self.config)
        if diffs:
            raise SatganError(f"{ckpt.path}: made with another architecture ({'; '.join(diffs)})")
        changed = changed_settings(ckpt.config, self.config)
        if changed and self.procs.is_main:
            warnings.warn(f"resuming {ckpt.path} with changed settings: {'; '.join(changed)}", SatganWarning,
                          stacklevel=2)
        if ckpt.manifest_hash and ckpt.manifest_hash != self.train_set.manifest.get("content_hash"):
            warnings.warn(f"{ckpt.path}: trained on other data (manifest hash differs)", SatganWarning, stacklevel=2)
        self.load_state_dict(ckpt.training_state())
        if self.procs.is_main:
            print(f"resumed from {ckpt.path}: epoch {self.epoch}, batch {self.batch_in_epoch}, step {self.step}")

    def wrap(self) -> None:
        """DDP and torch.compile wrappers, after any restore (see :meth:`load_state_dict`)."""
        self.G, self.D = wrapped(self.G, self.D, self.config, self.procs, self.device)


def wrapped(G: nn.Module, D: nn.Module | None, config: Config, procs: Processes, device: torch.device):
    """G under DDP (with synchronized batch norm on GPUs) and both compiled, as the config asks."""
    if procs.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        if config.model.norm == "batch" and device.type == "cuda":
            G = nn.SyncBatchNorm.convert_sync_batchnorm(G)
            D = nn.SyncBatchNorm.convert_sync_batchnorm(D) if D is not None else None
        elif config.model.norm == "batch" and procs.is_main:
            warnings.warn("batch norm statistics are per process on CPU (SyncBatchNorm needs GPUs)",
                          SatganWarning, stacklevel=3)
        G = DDP(G, device_ids=[device.index] if device.type == "cuda" else None)
    if config.train.compile:
        G = torch.compile(G)
        D = torch.compile(D) if D is not None else None
    return G, D

