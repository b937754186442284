"""segbench's arms: which tiles each run trains on, and in which order.

Every arm is defined by the real tiles it gets (a ``fraction`` of the real train split, the
same nested subset for every arm of a seed) and how synthetic tiles join them:

- ``real 10%``: real tiles only, the baseline of its fraction;
- ``real 10% + 50% synthetic``: every batch holds that ``share`` of synthetic tiles (drawn
  from the whole synthetic train split), the rest real (mixing);
- ``real 10% after synthetic pre-training``: the first ``pretrain`` share of the steps on
  synthetic tiles alone, the rest on the real ones, the learning-rate schedule restarted
  (pre-train, then fine-tune);
- either of the two ``filtered K``: the synthetic pixels that a segmenter trained on the
  arm's own real tiles finds implausible are left out of the loss (see
  :func:`satgan.synthetic.segbench.filter_synthetic`);
- ``synthetic only``: synthetic tiles alone;
- ``real 10% + 50% copy-paste``: beside each mixing arm, the generator-free baseline: the
  same share of copy-paste tiles, made from the arm's own real tiles alone
  (:mod:`satgan.synthetic.copy_paste`), as many as there are synthetic tiles.

Every arm gets the same budget: ``steps`` steps of ``batch_size`` tiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from satgan import SatganError
from satgan.config import SegbenchConfig
from satgan.segmentation.training import batch_order

SYNTHETIC_ONLY = "synthetic only"
MIX, PRETRAIN = "mix", "pretrain"
SYNTHETIC, COPY_PASTE = "synthetic", "copy-paste"  # where an arm's added tiles come from
MIX_STREAM = 3  # the batch order of mixed and pre-training arms: a stream of its own per seed


@dataclass(frozen=True)
class Arm:
    """One training set and schedule: ``real`` tiles of the real train split (a ``fraction``
    of it; None for synthetic only), ``synthetic`` tiles, joined by ``schedule`` (None: real
    only or synthetic only; ``mix`` at ``share`` synthetic per batch; ``pretrain``), with
    synthetic pixels filtered at ``filter`` K (None: not filtered)."""

    name: str
    fraction: float | None
    real: int
    synthetic: int
    schedule: str | None = None
    share: float | None = None
    filter: float | None = None
    source: str = SYNTHETIC

    @property
    def baseline(self) -> str | None:
        """The real-only arm this one is compared with (None for real-only arms)."""
        if self.schedule is None and self.fraction is not None:
            return None
        return real_name(1.0 if self.fraction is None else self.fraction)


def real_name(fraction: float) -> str:
    return f"real {fraction * 100:g}%"


def arm_name(fraction: float, schedule: str, share: float | None, k: float | None) -> str:
    if schedule == MIX:
        name = f"{real_name(fraction)} + {share * 100:g}% synthetic"
    else:
        name = f"{real_name(fraction)} after synthetic pre-training"
    return name if k is None else f"{name}, filtered {k:g}"


def count(fraction: float, total: int) -> int:
    """``fraction * total`` rounded half up (``ceil`` would turn 0.1 * 30 = 3.0000000000000004 into 4)."""
    return math.floor(fraction * total + 0.5)


def synthetic_per_batch(share: float, batch_size: int) -> int:
    return count(share, batch_size)


def plan_arms(cfg: SegbenchConfig, n_real: int, n_synthetic: int | None) -> list[Arm]:
    """The arms, in table order: per fraction, real only, each share, pre-training, and
    (with ``filter``) the filtered twins of the synthetic ones; synthetic only last. Without
    synthetic data (``n_synthetic`` None) only the real arms. A fraction that gives no
    tiles, a share that gives a batch no real or no synthetic tile, or synthetic data that
    no arm adds to real tiles (no share, no pre-training) is an error. An empty ``shares``
    is no mixing arm. Repeated values count once."""
    if not cfg.fractions:
        raise SatganError("fractions: give at least one fraction of the real training tiles, e.g. 0.1,0.25,1")
    if n_synthetic is not None:  # options that shape synthetic arms: checked only where there are some
        _check_synthetic_options(cfg)
    arms = []
    for fraction in sorted(set(cfg.fractions)):
        real = count(fraction, n_real)
        if real == 0:
            raise SatganError(f"fractions: {fraction:g} of the {n_real} real training tiles is 0 tiles; "
                              f"use at least {1 / n_real:.3g}")
        arms.append(Arm(real_name(fraction), fraction, real, 0))
        if n_synthetic is None:
            continue
        schedules = [(MIX, share) for share in sorted(set(cfg.shares))] + ([(PRETRAIN, None)] if cfg.pretrain else [])
        for k in [None] + ([cfg.filter] if cfg.filter is not None else []):
            for schedule, share in schedules:
                arms.append(Arm(arm_name(fraction, schedule, share, k), fraction, real, n_synthetic, schedule,
                                share, k))
        if cfg.copy_paste:
            arms += [Arm(f"{real_name(fraction)} + {share * 100:g}% {COPY_PASTE}", fraction, real, n_synthetic, MIX,
                         share, source=COPY_PASTE) for share in sorted(set(cfg.shares))]
    if n_synthetic is not None and cfg.synthetic_only:
        arms.append(Arm(SYNTHETIC_ONLY, None, 0, n_synthetic))
    names = [arm.name for arm in arms]
    if len(set(names)) < len(names):  # e.g. 0.1 and 0.1000001 are both "real 10%"; their runs would mix
        raise SatganError(f"fractions={cfg.fractions}, shares={cfg.shares}: some give the same arm name twice "
                          f"({', '.join(sorted({n for n in names if names.count(n) > 1}))}); make them distinct")
    return arms


def _check_synthetic_options(cfg: SegbenchConfig) -> None:
    """Some arm adds synthetic tiles to real ones (a share, or pre-training), every share gives
    a batch at least one real and one synthetic tile, no two shares the same batch, and
    pre-training leaves both phases a step."""
    if not cfg.shares and not cfg.pretrain:
        raise SatganError(f"shares is empty and pretrain is 0: no arm adds the synthetic tiles of {cfg.synthetic} to "
                          "real ones, so nothing would say whether they help; give shares (e.g. --shares "
                          "0.25,0.5,0.75) or --pretrain 0.5")
    seen: dict[int, float] = {}
    for share in sorted(set(cfg.shares)):
        k = synthetic_per_batch(share, cfg.batch_size)
        if not 0 < k < cfg.batch_size:
            raise SatganError(f"shares: {share:g} of a batch of {cfg.batch_size} is {k} synthetic tiles; a mixed "
                              "batch needs at least one real and one synthetic tile: use a share of at least "
                              f"{0.5 / cfg.batch_size:.3g} and below {1 - 0.5 / cfg.batch_size:.3g}, or a larger "
                              "batch")
        if k in seen:
            raise SatganError(f"shares: {seen[k]:g} and {share:g} both give {k} synthetic tiles of a batch of "
                              f"{cfg.batch_size}, the same arm twice; give shares at least "
                              f"{1 / cfg.batch_size:.3g} apart")
        seen[k] = share
    pretrain_steps = count(cfg.pretrain, cfg.steps)
    if cfg.pretrain and not 0 < pretrain_steps < cfg.steps:
        raise SatganError(f"pretrain: {cfg.pretrain:g} of {cfg.steps} steps is {pretrain_steps} pre-training steps; "
                          "both phases need at least one step")


def arm_order(arm: Arm, cfg: SegbenchConfig, seed: int) -> tuple[np.ndarray | None, list[int] | None]:
    """The ``(steps, batch_size)`` positions each step draws from the arm's pool (its real
    tiles first, then its synthetic ones) and the learning-rate phases; ``(None, None)``
    for a single-source arm, which takes shuffled passes over its pool (the default of
    :func:`satgan.segmentation.training.fit`)."""
    if arm.schedule is None:
        return None, None
    rng = np.random.default_rng([seed, MIX_STREAM])
    b = cfg.batch_size
    if arm.schedule == MIX:
        k = synthetic_per_batch(arm.share, b)
        real = batch_order(arm.real, cfg.steps, b - k, rng)
        synthetic = batch_order(arm.synthetic, cfg.steps, k, rng) + arm.real
        return np.concatenate([real, synthetic], axis=1), None
    first = count(cfg.pretrain, cfg.steps)
    synthetic = batch_order(arm.synthetic, first, b, rng) + arm.real
    real = batch_order(arm.real, cfg.steps - first, b, rng)
    return np.concatenate([synthetic, real], axis=0), [first, cfg.steps - first]
