"""Optimizers and learning-rate schedules of a training run."""

from __future__ import annotations

import copy

import torch
from torch import nn

from satgan.config import TrainConfig


def adam(net: nn.Module | None, t: TrainConfig, lr: float | None = None) -> torch.optim.Adam | None:
    """Adam with ``lr`` (default: the run's) and the run's betas (None for no network)."""
    if net is None:
        return None
    return torch.optim.Adam(net.parameters(), lr=lr or t.lr, betas=(t.beta1, t.beta2))


def scheduler(opt: torch.optim.Optimizer | None, t: TrainConfig):
    """The schedule ``t.scheduler`` names (None for no optimizer)."""
    if opt is None:
        return None
    if t.scheduler == "linear":  # pix2pix: constant, then linearly to 0 over decay_epochs
        keep = max(t.epochs - t.decay_epochs, 0)
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0 - max(0, e + 1 - keep) / float(t.decay_epochs + 1))
    if t.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=t.step_epochs, gamma=t.gamma)
    if t.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t.epochs, eta_min=0)
    if t.scheduler == "plateau":  # on validation PSNR (higher is better), not on the losses
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=t.gamma,
                                                          patience=t.plateau_patience)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)


def step_schedulers(schedulers: list, val_psnr: float | None) -> None:
    """One epoch's step; a plateau schedule steps only on a validation (its PSNR)."""
    for sched in schedulers:
        if sched is None:
            continue
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if val_psnr is not None:
                sched.step(val_psnr)
        else:
            sched.step()


class EMA:
    """A frozen copy of ``net`` whose weights follow ``net``'s with ``decay`` per update."""

    def __init__(self, net: nn.Module, decay: float):
        self.net = copy.deepcopy(net).eval().requires_grad_(False)
        self.decay, self.updates = decay, 0

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for mine, theirs in zip(self.net.parameters(), net.parameters(), strict=True):
            mine.lerp_(theirs, 1 - decay)
        for mine, theirs in zip(self.net.buffers(), net.buffers(), strict=True):
            mine.copy_(theirs)  # normalisation statistics are averages already

    def state_dict(self) -> dict:
        return {"weights": self.net.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["weights"])
        self.updates = state["updates"]
