"""``satgan segbench``: does synthetic data help a segmentation network?

One small U-Net segmenter (:func:`~satgan.models.factory.build_segmenter`, one channel of
building logits, BCE + soft Dice) is trained in several *arms* that differ only in their
training tiles:

- ``real 10%``: a fraction of the real training tiles;
- ``real 10% + synthetic 0.5x``: the same real tiles plus ``ratio`` synthetic tiles per real one;
- ``synthetic only``: synthetic tiles alone, as many as the whole real training split has.

Every arm gets the same budget (``steps`` steps of ``batch_size`` tiles) and, for each seed,
the same initial weights and the same (nested) real subset. All arms are scored on a real
split none of them trained on, by IoU and F1 pooled over all its pixels. The result is one
JSON report, a markdown table and a plot. Any pretransformed folders work, so a user can
run it on their own data.
"""

from __future__ import annotations

import hashlib
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from tqdm.auto import tqdm

from satgan.atomic import atomic_path, check_output_folder, write_json
from satgan.config import SegbenchConfig, to_dict
from satgan.data.arrays import load_split, open_arrays
from satgan.errors import SatganError
from satgan.models.factory import build_segmenter
from satgan.runtime import resolve_device

TRAIN = "train"
SYNTHETIC_ONLY = "synthetic only"
# Independent random streams per seed, so e.g. the real and synthetic permutations are not the same one.
REAL_STREAM, SYNTHETIC_STREAM, BATCH_STREAM = 0, 1, 2


@dataclass
class Tiles:
    """One split of a pretransformed folder: ``images`` (N, S, S, 3) and ``masks`` (N, S, S)
    uint8 coverage, memory-mapped (the OS keeps the pages cached once read)."""

    root: Path
    split: str
    images: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    @property
    def side(self) -> int:
        """The shorter tile side."""
        return min(self.images.shape[1:3])


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


def input_multiple(crop: int) -> int:
    """Input sides :func:`build_segmenter` accepts are multiples of this."""
    return 2 ** max(5, int(math.log2(crop)))


def _count(fraction: float, total: int) -> int:
    """``fraction * total`` rounded half up (``ceil`` would turn 0.1 * 30 = 3.0000000000000004 into 4)."""
    return math.floor(fraction * total + 0.5)


def load_tiles(root: str | Path, split: str, what: str, crop: int) -> Tiles:
    """A split of a pretransformed folder, checked: it exists, has tiles, and they are at
    least ``crop`` pixels. ``what`` (``real``, ``synthetic``) starts the error messages."""
    root = Path(root).expanduser().resolve()
    try:
        _, info = load_split(root, split)
        masks, images = open_arrays(root, info)
    except SatganError as exc:
        raise SatganError(f"{what} data: {exc}") from None
    tiles = Tiles(root, split, images, masks)
    if len(tiles) == 0:
        raise SatganError(f"{what} data: {root}: split {split!r} has no tiles")
    if tiles.side < crop:
        raise SatganError(f"{what} data: {root}: {split} tiles are {tiles.side} px, smaller than crop={crop}; "
                          "lower --crop or pretransform larger tiles")
    return tiles


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


def initial_network(cfg: SegbenchConfig, seed: int) -> nn.Module:
    """The untrained segmenter of ``seed``: every arm starts a seed's run from these weights
    (built on the CPU, so they are the same whatever device trains)."""
    torch.manual_seed(seed)
    return build_segmenter(cfg.ngf, cfg.crop)


def batch_order(pool: int, steps: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """``(steps, batch_size)`` positions in a pool of ``pool`` tiles: shuffled passes over the
    pool one after another, so every tile is seen about equally often."""
    need = steps * batch_size
    passes = [rng.permutation(pool) for _ in range(-(-need // pool))]
    return np.concatenate(passes)[:need].reshape(steps, batch_size)


def random_crops(pool: list[tuple[Tiles, int]], positions: np.ndarray, crop: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(B, crop, crop, 3)`` and masks ``(B, crop, crop)`` uint8: a random crop of each
    tile, flipped left-right half the time and turned by a random multiple of 90 degrees
    (image and mask alike)."""
    images, masks = [], []
    for p in positions:
        tiles, i = pool[p]
        y = rng.integers(0, tiles.images.shape[1] - crop + 1)
        x = rng.integers(0, tiles.images.shape[2] - crop + 1)
        image, mask = tiles.images[i, y:y + crop, x:x + crop], tiles.masks[i, y:y + crop, x:x + crop]
        if rng.random() < 0.5:
            image, mask = image[:, ::-1], mask[:, ::-1]
        turns = int(rng.integers(4))
        images.append(np.rot90(image, turns))
        masks.append(np.rot90(mask, turns))
    return np.stack(images), np.stack(masks)


def to_input(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` as float ``(B, 3, H, W)`` in [-1, 1] on ``device`` (converted there:
    a quarter of the bytes to copy)."""
    return torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1


def to_target(masks: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 coverage ``(B, H, W)`` as a 0/1 float target ``(B, 1, H, W)``: a building where half covered."""
    return (torch.from_numpy(masks).to(device) >= 128).float().unsqueeze(1)


def seg_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE on the logits plus soft Dice over the whole batch (smoothed by 1, so a batch
    without buildings still has a gradient and no division by 0)."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return bce + dice


def train_run(net: nn.Module, pool: list[tuple[Tiles, int]], cfg: SegbenchConfig, seed: int,
              device: torch.device) -> dict:
    """Train ``net`` in place for ``cfg.steps`` steps of ``cfg.batch_size`` tiles drawn from
    ``pool`` (Adam, train-mode batch norm). Returns the steps and samples it saw, and the mean
    loss of the last tenth of the steps (kept on the device until the end)."""
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    rng = np.random.default_rng([seed, BATCH_STREAM])
    order = batch_order(len(pool), cfg.steps, cfg.batch_size, rng)
    tail = max(1, cfg.steps // 10)
    tail_loss = torch.zeros((), device=device)
    net.train()
    samples = 0
    for step in range(cfg.steps):
        images, masks = random_crops(pool, order[step], cfg.crop, rng)
        loss = seg_loss(net(to_input(images, device)), to_target(masks, device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        samples += len(images)
        if step >= cfg.steps - tail:
            tail_loss += loss.detach()
    return {"steps": cfg.steps, "samples_seen": samples, "train_loss": tail_loss.item() / tail}


@torch.inference_mode()
def score(net: nn.Module, tiles: Tiles, crop: int, device: torch.device, batch_size: int = 8) -> dict:
    """IoU = TP / (TP + FP + FN) and F1 = 2TP / (2TP + FP + FN) over every pixel of ``tiles``
    pooled (not averaged per tile), a building predicted where the logit is > 0. Whole tiles
    are scored, reflected at the bottom and right up to a size the network takes (eval-mode
    batch norm). With no building in truth or prediction both scores are 1."""
    net.eval()
    multiple = input_multiple(crop)
    counts = torch.zeros(3, dtype=torch.int64, device=device)  # TP, FP, FN
    for start in range(0, len(tiles), batch_size):
        # np.array copies: torch wants writable memory, not the read-only memory map.
        images = to_input(np.array(tiles.images[start:start + batch_size]), device)
        h, w = images.shape[-2:]
        padded = F.pad(images, (0, -w % multiple, 0, -h % multiple), mode="reflect")
        predicted = net(padded)[:, 0, :h, :w] > 0
        truth = torch.from_numpy(np.array(tiles.masks[start:start + batch_size])).to(device) >= 128
        counts += torch.stack([(predicted & truth).sum(), (predicted & ~truth).sum(), (~predicted & truth).sum()])
    tp, fp, fn = counts.tolist()
    if tp + fp + fn == 0:
        return {"iou": 1.0, "f1": 1.0, "tp": 0, "fp": 0, "fn": 0}
    return {"iou": tp / (tp + fp + fn), "f1": 2 * tp / (2 * tp + fp + fn), "tp": tp, "fp": fp, "fn": fn}


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
    ax.set_ylabel(f"IoU on real {report['settings']['test_split']} ({report['counts']['test']} tiles)")
    s = report["settings"]
    ax.set_title(f"segbench: {s['steps']} steps x {s['batch_size']} tiles, {s['seeds']} seeds", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _markdown(report: dict) -> str:
    s, c = report["settings"], report["counts"]
    synthetic = f"synthetic {s['synthetic']} ({c['synthetic']} train tiles)" if s["synthetic"] else "no synthetic data"
    return (f"# satgan segbench\n\nReal {s['real']} ({c['real_train']} train tiles), scored on its "
            f"{s['test_split']} split ({c['test']} tiles); {synthetic}. Every run: {s['steps']} steps of "
            f"{s['batch_size']} tiles, crop {s['crop']}, ngf {s['ngf']}; mean ± std over {s['seeds']} seeds.\n\n"
            f"{format_table(report)}\n")


def write_report(report: dict, out: Path) -> None:
    """``report.png``, ``report.md`` and, last, ``report.json`` in ``out``, each atomically."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "report.png") as tmp:
        segbench_figure(report).savefig(tmp, dpi=110)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(_markdown(report), encoding="utf-8")
    write_json(out / "report.json", report)


def segbench(cfg: SegbenchConfig, progress: bool = True) -> dict:
    """Train the segmenter in every arm for every seed, score each run on the real
    ``cfg.test_split`` split, write ``report.json``, ``report.md`` and ``report.png`` to
    ``cfg.out`` and return the report.

    Without ``cfg.synthetic`` only the real arms run (``ratios`` and ``synthetic_only`` need
    synthetic data). Every input is checked before any training (see :func:`plan_arms`: too
    few synthetic tiles for a ratio is an error, not capped), and nothing is written until
    the end (an earlier report there stays whole until replaced)."""
    if cfg.crop != input_multiple(cfg.crop):
        raise SatganError(f"crop={cfg.crop}: must be a power of two (32, 64, 128, 256, ...) for the U-Net")
    if cfg.test_split == TRAIN:
        raise SatganError(f"test_split={TRAIN}: the arms train on it; score on a split they did not see, e.g. val")
    device = resolve_device(cfg.device)
    out = check_output_folder(cfg.out)
    real = load_tiles(cfg.real, TRAIN, "real", cfg.crop)
    test = load_tiles(cfg.real, cfg.test_split, "real", cfg.crop)
    synthetic = load_tiles(cfg.synthetic, TRAIN, "synthetic", cfg.crop) if cfg.synthetic else None
    if synthetic is not None and synthetic.root == real.root:
        raise SatganError(f"--synthetic {synthetic.root} is the real folder: the 'synthetic' arms would train "
                          "on real tiles; give the pretransformed synthetic pairs")
    arms = plan_arms(cfg, len(real), len(synthetic) if synthetic is not None else None)

    runs = []
    bar = tqdm(total=len(arms) * cfg.seeds, desc="segbench", unit="run", disable=not progress)
    for seed in range(cfg.seeds):
        for arm in arms:
            bar.set_postfix_str(f"{arm.name}, seed {seed}")
            real_idx = subset(len(real), arm.real, seed, REAL_STREAM)
            synthetic_idx = subset(len(synthetic), arm.synthetic, seed, SYNTHETIC_STREAM) if arm.synthetic else []
            pool = [(real, int(i)) for i in real_idx] + [(synthetic, int(i)) for i in synthetic_idx]
            net = initial_network(cfg, seed)
            started, weights = time.perf_counter(), digest(net)
            net = net.to(device)
            trained = train_run(net, pool, cfg, seed, device)
            runs.append({"arm": arm.name, "seed": seed, "real_tiles": arm.real, "synthetic_tiles": arm.synthetic,
                         "batch_size": cfg.batch_size, **trained, **score(net, test, cfg.crop, device, cfg.batch_size),
                         "initial_weights": weights, "real_subset": digest(real_idx),
                         "synthetic_subset": digest(np.asarray(synthetic_idx, np.int64)),
                         "seconds": round(time.perf_counter() - started, 3)})
            bar.update()
    bar.close()

    settings = {**to_dict(cfg), "real": str(real.root), "out": str(out.resolve()),
                "synthetic": str(synthetic.root) if synthetic is not None else None}
    report = {"settings": settings, "device": str(device),
              "counts": {"real_train": len(real), "synthetic": len(synthetic) if synthetic is not None else 0,
                         "test": len(test)},
              "arms": summarize(arms, runs), "runs": runs}
    write_report(report, out)
    return report
