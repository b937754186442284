"""``satgan segbench``: does synthetic data help a segmentation network?

The reference building segmenter (:mod:`satgan.segmenter`: a light U-Net, BCE + soft
Dice, warm-up and cosine decay, flips, turns and colour jitter) is trained in several
*arms* that differ only in their training tiles:

- ``real 10%``: a fraction of the real training tiles;
- ``real 10% + synthetic 0.5x``: the same real tiles plus ``ratio`` synthetic tiles per real one;
- ``synthetic only``: synthetic tiles alone, as many as the whole real training split has.

Every arm gets the same budget (``steps`` steps of ``batch_size`` tiles) and, for each seed,
the same initial weights and the same (nested) real subset. All arms are scored on a real
split none of them trained on (``test_split`` of the real folder, or with ``test`` every
tile of another folder), by IoU and F1 pooled over all its pixels. The result is one JSON
report, a markdown table and a plot. Any pretransformed folders work, so a user can run it
on their own data.
"""

from __future__ import annotations

import hashlib
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from torch import nn

from satgan.atomic import atomic_path, check_output_folder, write_json
from satgan.config import SegbenchConfig, SegmenterConfig, to_dict
from satgan.data.arrays import load_manifest
from satgan.errors import SatganError
from satgan.progress import progress_bar
from satgan.runtime import resolve_device
from satgan.segmenter import Tiles, build, fit, load_tiles, score

TRAIN = "train"
SYNTHETIC_ONLY = "synthetic only"
# Independent random streams per seed, so e.g. the real and synthetic permutations are not the same one.
REAL_STREAM, SYNTHETIC_STREAM, BATCH_STREAM = 0, 1, 2


@dataclass(frozen=True)
class Arm:
    """One training set: ``real`` tiles of the real train split (a ``fraction`` of it, None for
    synthetic only) and ``synthetic`` tiles (``ratio`` per real tile, None for real only)."""

    name: str
    fraction: float | None
    ratio: float | None
    real: int
    synthetic: int

    @property
    def baseline(self) -> str | None:
        """The real-only arm this one is compared with (None for real-only arms)."""
        if self.ratio is None and self.fraction is not None:
            return None
        return real_name(1.0 if self.fraction is None else self.fraction)


def real_name(fraction: float) -> str:
    return f"real {fraction * 100:g}%"


def mix_name(fraction: float, ratio: float) -> str:
    return f"{real_name(fraction)} + synthetic {ratio:g}x"


def _count(fraction: float, total: int) -> int:
    """``fraction * total`` rounded half up (``ceil`` would turn 0.1 * 30 = 3.0000000000000004 into 4)."""
    return math.floor(fraction * total + 0.5)


def plan_arms(cfg: SegbenchConfig, n_real: int, n_synthetic: int | None) -> list[Arm]:
    """The arms, in table order: per fraction, real only then each ratio; synthetic only last.
    Without synthetic data (``n_synthetic`` None) only the real arms. A fraction or ratio that
    gives no tiles, or more synthetic tiles than there are, is an error (not capped: a ``2x``
    arm must hold twice as many synthetic tiles). Synthetic only takes as many tiles as the
    real train split has, capped at the synthetic ones there are. Repeated values count once."""
    if not cfg.fractions:
        raise SatganError("fractions: give at least one fraction of the real training tiles, e.g. 0.1,0.25,1")
    arms = []
    for fraction in sorted(set(cfg.fractions)):
        real = _count(fraction, n_real)
        if real == 0:
            raise SatganError(f"fractions: {fraction:g} of the {n_real} real training tiles is 0 tiles; "
                              f"use at least {1 / n_real:.3g}")
        arms.append(Arm(real_name(fraction), fraction, None, real, 0))
        for ratio in sorted(set(cfg.ratios)) if n_synthetic is not None else []:
            synthetic = _count(ratio, real)
            if synthetic == 0:
                raise SatganError(f"ratios: {ratio:g}x of {real} real tiles (fraction {fraction:g}) is 0 synthetic "
                                  "tiles; raise the ratio or the fraction")
            if synthetic > n_synthetic:
                raise SatganError(f"ratios: {ratio:g}x of {real} real tiles (fraction {fraction:g}) needs {synthetic} "
                                  f"synthetic tiles, but the synthetic train split has {n_synthetic}; "
                                  "lower --ratios or --fractions, or give more synthetic tiles")
            arms.append(Arm(mix_name(fraction, ratio), fraction, ratio, real, synthetic))
    if n_synthetic is not None and cfg.synthetic_only:
        arms.append(Arm(SYNTHETIC_ONLY, None, None, 0, min(n_real, n_synthetic)))
    names = [arm.name for arm in arms]
    if len(set(names)) < len(names):  # e.g. 0.1 and 0.1000001 are both "real 10%"; their runs would mix
        raise SatganError(f"fractions={cfg.fractions}, ratios={cfg.ratios}: some give the same arm name twice "
                          f"({', '.join(sorted({n for n in names if names.count(n) > 1}))}); make them distinct")
    return arms


def subset(total: int, count: int, seed: int, stream: int) -> np.ndarray:
    """The first ``count`` of a permutation of ``range(total)`` drawn for ``seed`` (and
    ``stream``: real or synthetic). Subsets of one seed are nested: a smaller count is a prefix."""
    return np.random.default_rng([seed, stream]).permutation(total)[:count]


def initial_network(cfg: SegbenchConfig, seed: int) -> nn.Module:
    """The untrained segmenter of ``seed``: every arm starts a seed's run from these weights
    (built on the CPU, so they are the same whatever device trains)."""
    return build(segmenter_settings(cfg), seed)


def segmenter_settings(cfg: SegbenchConfig) -> SegmenterConfig:
    """The reference segmenter's settings with segbench's budget: the same network, loss,
    schedule and augmentations that judge mask fidelity."""
    return SegmenterConfig(data=cfg.real, width=cfg.ngf, steps=cfg.steps, batch_size=cfg.batch_size, crop=cfg.crop,
                           lr=cfg.lr, device=cfg.device)


def digest(values: np.ndarray | nn.Module) -> str:
    """A short fingerprint of an index array or of a network's initial weights, so a report
    shows which runs shared them."""
    h = hashlib.sha1()
    if isinstance(values, nn.Module):
        for name, tensor in values.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    else:
        h.update(np.asarray(values, np.int64).tobytes())
    return h.hexdigest()[:16]


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (0 for one seed)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(arms: list[Arm], runs: list[dict]) -> list[dict]:
    """Per arm: tile counts, IoU and F1 mean and std over seeds, and ``delta_iou``, its IoU
    mean minus that of its fraction's real-only arm (synthetic only: minus real 100%; None
    where there is no such arm, and for the real-only arms themselves)."""
    rows = []
    for arm in arms:
        mine = [r for r in runs if r["arm"] == arm.name]
        iou_mean, iou_std = _mean_std([r["iou"] for r in mine])
        f1_mean, f1_std = _mean_std([r["f1"] for r in mine])
        rows.append({"arm": arm.name, "fraction": arm.fraction, "ratio": arm.ratio, "real_tiles": arm.real,
                     "synthetic_tiles": arm.synthetic, "iou_mean": iou_mean, "iou_std": iou_std,
                     "f1_mean": f1_mean, "f1_std": f1_std, "seeds": [r["seed"] for r in mine],
                     "baseline": arm.baseline, "delta_iou": None})
    means = {row["arm"]: row["iou_mean"] for row in rows}
    for row, arm in zip(rows, arms):
        if arm.baseline in means:
            row["delta_iou"] = row["iou_mean"] - means[arm.baseline]
        else:
            row["baseline"] = None
    return rows


def format_table(report: dict) -> str:
    """The report's arms as a markdown table: tile counts, IoU and F1 mean ± std over seeds,
    and the IoU change against real only at the same fraction."""
    lines = ["| arm | real | synthetic | IoU | F1 | ΔIoU vs real only |", "|---|---:|---:|---|---|---:|"]
    for a in report["arms"]:
        delta = "" if a["delta_iou"] is None else f"{a['delta_iou']:+.3f}"
        lines.append(f"| {a['arm']} | {a['real_tiles']} | {a['synthetic_tiles']} | {a['iou_mean']:.3f} ± "
                     f"{a['iou_std']:.3f} | {a['f1_mean']:.3f} ± {a['f1_std']:.3f} | {delta} |")
    return "\n".join(lines)


def segbench_figure(report: dict) -> Figure:
    """IoU against the fraction of real tiles (log axis), one line per synthetic ratio (real
    only first), error bars one std over seeds; synthetic only as a dashed line."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    arms = [a for a in report["arms"] if a["fraction"] is not None]
    ratios = [None] + sorted({a["ratio"] for a in arms if a["ratio"] is not None})
    for k, ratio in enumerate(ratios):
        line = sorted((a for a in arms if a["ratio"] == ratio), key=lambda a: a["fraction"])
        # A small sideways nudge per line keeps overlapping error bars apart.
        x = [a["fraction"] * 100 * 1.03 ** (k - (len(ratios) - 1) / 2) for a in line]
        ax.errorbar(x, [a["iou_mean"] for a in line], yerr=[a["iou_std"] for a in line], marker="o", capsize=3,
                    label="real only" if ratio is None else f"+ synthetic {ratio:g}x")
    for a in report["arms"]:
        if a["fraction"] is None:
            ax.axhline(a["iou_mean"], color="grey", linestyle="--", label=f"{a['arm']} ({a['synthetic_tiles']} tiles)")
            ax.axhspan(a["iou_mean"] - a["iou_std"], a["iou_mean"] + a["iou_std"], color="grey", alpha=0.15)
    fractions = sorted({a["fraction"] for a in arms})
    ax.set_xscale("log")
    ax.set_xticks([f * 100 for f in fractions], [f"{f * 100:g}%" for f in fractions])
    ax.minorticks_off()
    ax.set_xlabel(f"real training tiles (of {report['counts']['real_train']})")
    ax.set_ylabel(f"IoU on real {'+'.join(report['settings']['test_splits'])} ({report['counts']['test']} tiles)")
    s = report["settings"]
    ax.set_title(f"segbench: {s['steps']} steps x {s['batch_size']} tiles, {s['seeds']} seeds", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _markdown(report: dict) -> str:
    s, c = report["settings"], report["counts"]
    synthetic = f"synthetic {s['synthetic']} ({c['synthetic']} train tiles)" if s["synthetic"] else "no synthetic data"
    return (f"# satgan segbench\n\nReal {s['real']} ({c['real_train']} train tiles), scored on "
            f"{'+'.join(s['test_splits'])} of {s['test']} ({c['test']} tiles); {synthetic}. "
            f"Every run: {s['steps']} steps of {s['batch_size']} tiles, crop {s['crop']}, width {s['ngf']}; "
            f"mean ± std over {s['seeds']} seeds.\n\n"
            f"{format_table(report)}\n")


def write_report(report: dict, out: Path) -> None:
    """``report.png``, ``report.md`` and, last, ``report.json`` in ``out``, each atomically."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "report.png") as tmp:
        segbench_figure(report).savefig(tmp, dpi=110)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(_markdown(report), encoding="utf-8")
    write_json(out / "report.json", report)


def test_tiles(cfg: SegbenchConfig, real_root: Path, synthetic_root: Path | None = None) -> list[Tiles]:
    """What every arm is scored on: ``cfg.test_split`` (default ``val``) of the real folder, or
    with ``cfg.test`` that folder's ``cfg.test_split``, else all of its splits. Never a split
    the arms train on."""
    root = Path(cfg.test).expanduser().resolve() if cfg.test else real_root
    if cfg.test_split:
        splits = [cfg.test_split]
    elif cfg.test:
        try:
            splits = list(load_manifest(root)["splits"])
        except SatganError as exc:
            raise SatganError(f"--test: {exc}") from None
    else:
        splits = ["val"]
    if root in (real_root, synthetic_root) and TRAIN in splits:
        what = "real" if root == real_root else "synthetic"
        where = f"--test is the {what} folder: give --test-split" if cfg.test else f"test_split={TRAIN}:"
        raise SatganError(f"{where} the arms train on its {TRAIN} split; score on a split they did not see, "
                          "e.g. val")
    return [load_tiles(root, split, "test", 1) for split in splits]


def segbench(cfg: SegbenchConfig, progress: bool = True) -> dict:
    """Train the segmenter in every arm for every seed, score each run on the real
    ``cfg.test_split`` split, write ``report.json``, ``report.md`` and ``report.png`` to
    ``cfg.out`` and return the report.

    Without ``cfg.synthetic`` only the real arms run (``ratios`` and ``synthetic_only`` need
    synthetic data). Every input is checked before any training (see :func:`plan_arms`: too
    few synthetic tiles for a ratio is an error, not capped), and nothing is written until
    the end (an earlier report there stays whole until replaced)."""
    settings = segmenter_settings(cfg)  # checks the crop
    device = resolve_device(cfg.device)
    out = check_output_folder(cfg.out)
    real = load_tiles(cfg.real, TRAIN, "real", cfg.crop)
    synthetic = load_tiles(cfg.synthetic, TRAIN, "synthetic", cfg.crop) if cfg.synthetic else None
    test = test_tiles(cfg, real.root, synthetic.root if synthetic is not None else None)
    if synthetic is not None and synthetic.root == real.root:
        raise SatganError(f"--synthetic {synthetic.root} is the real folder: the 'synthetic' arms would train "
                          "on real tiles; give the pretransformed synthetic pairs")
    arms = plan_arms(cfg, len(real), len(synthetic) if synthetic is not None else None)

    runs = []
    # counted in training steps, so a log shows movement inside each run, not only between them
    with progress_bar(total=len(arms) * cfg.seeds * cfg.steps, desc="segbench", unit="step",
                      disable=not progress) as bar:
        for seed in range(cfg.seeds):
            for arm in arms:
                bar.set_postfix_str(f"{arm.name}, seed {seed}")
                real_idx = subset(len(real), arm.real, seed, REAL_STREAM)
                synthetic_idx = subset(len(synthetic), arm.synthetic, seed, SYNTHETIC_STREAM) if arm.synthetic else []
                pool = [(real, int(i)) for i in real_idx] + [(synthetic, int(i)) for i in synthetic_idx]
                net = initial_network(cfg, seed)
                started, weights = time.perf_counter(), digest(net)
                net = net.to(device)
                trained = fit(net, pool, settings, seed, device, bar.update)
                runs.append({"arm": arm.name, "seed": seed, "real_tiles": arm.real, "synthetic_tiles": arm.synthetic,
                             "batch_size": cfg.batch_size, **trained, **score(net, test, device, cfg.batch_size),
                             "initial_weights": weights, "real_subset": digest(real_idx),
                             "synthetic_subset": digest(np.asarray(synthetic_idx, np.int64)),
                             "seconds": round(time.perf_counter() - started, 3)})

    described = {**to_dict(cfg), "real": str(real.root), "out": str(out.resolve()),
                 "synthetic": str(synthetic.root) if synthetic is not None else None,
                 "test": str(test[0].root), "test_splits": [t.split for t in test]}
    report = {"settings": described, "device": str(device),
              "counts": {"real_train": len(real), "synthetic": len(synthetic) if synthetic is not None else 0,
                         "test": sum(len(t) for t in test)},
              "arms": summarize(arms, runs), "runs": runs}
    write_report(report, out)
    return report
