"""``satgan segbench``: does synthetic data help a segmentation network?

The reference building segmenter (:mod:`satgan.evaluation.segmenter`: a light U-Net, BCE + soft
Dice, warm-up and cosine decay, flips, turns and colour jitter) is trained in several
*arms* that differ only in their training tiles and schedule (:mod:`satgan.synthetic.plan`):
real tiles only, real tiles mixed with a share of synthetic ones in every batch,
pre-training on synthetic tiles then fine-tuning on real ones, those two with implausible
synthetic pixels filtered out, and synthetic tiles alone.

Every arm gets the same budget (``steps`` steps of ``batch_size`` tiles) and, for each seed,
the same initial weights and the same (nested) real subset. All arms are scored on a real
split none of them trained on (``test_split`` of the real folder, or with ``test`` every
tile of another folder), by IoU and F1 pooled over all its pixels. The result is one JSON
report, a markdown table, a plot and a sentence on whether to use the synthetic set
(:mod:`satgan.synthetic.report`). Any pretransformed folders work, so a user can run it on
their own data.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from satgan import SatganError
from satgan.atomic import check_output_folder
from satgan.config import SegbenchConfig, SegmenterConfig, to_dict
from satgan.data.arrays import load_manifest
from satgan.data.subset import subset
from satgan.evaluation.segmenter import TRAIN, Tiles, build, fit, load_tiles, pixel_losses, score
from satgan.progress import progress_bar
from satgan.runtime import resolve_device
from satgan.synthetic.plan import arm_order, plan_arms
from satgan.synthetic.report import recommendation, summarize, write_report


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


def generator_claim(checkpoint: str | Path, real_root: Path, fractions: list[float]) -> dict:
    """Which claim a table makes, from the data the generator learnt from (its checkpoint's
    manifest hash) against the real folder's: ``no leakage`` (the generator saw exactly the
    real train tiles of the 100% arm), ``more real pairs`` (it saw all of them, but smaller
    fractions' arms get fewer), ``other data`` or ``unknown`` (a checkpoint that does not record its data)."""
    from satgan.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    manifest = load_manifest(real_root)
    n = manifest["splits"][TRAIN]["count"]
    if not ckpt.manifest_hash:
        kind, sentence = "unknown", (f"The generator {checkpoint} does not record its training data (an older "
                                     "checkpoint): whether its pairs leak real data the arms did not get is unknown.")
    elif ckpt.manifest_hash != manifest.get("content_hash"):
        kind, sentence = "other data", (f"The generator {checkpoint} learnt from other data than {real_root} (its "
                                        "manifest hash differs): its synthetic pairs may carry real pairs the arms "
                                        "never got, so this is not the no-leakage protocol.")
    elif sorted(set(fractions)) == [1.0]:
        kind, sentence = "no leakage", (f"No leakage from the generator: it learnt from the {n} real train pairs "
                                        f"of {real_root} and nothing else, the same pairs every arm gets (that the "
                                        "synthetic set was made by it, from masks of those pairs, is the chain's "
                                        "to keep).")
    else:
        kind, sentence = "more real pairs", (f"The generator learnt from all {n} real train pairs of {real_root}; "
                                             "arms with a smaller fraction get fewer, so for them this is a "
                                             "generator trained on more real pairs than the segmenter (a different "
                                             "claim from no leakage)"
                                             + ("; the 100% arms are leak-free." if 1.0 in fractions else "."))
    return {"checkpoint": str(checkpoint), "manifest_hash": ckpt.manifest_hash, "kind": kind, "sentence": sentence}


def filter_synthetic(judge: nn.Module, real: Tiles, real_idx: np.ndarray, synthetic: Tiles, k: float,
                     device: torch.device) -> tuple[Tiles, dict]:
    """FreeMask's filter: ``judge`` (a segmenter trained on ``real_idx``) gives every pixel of
    those real tiles a loss; per class (building, ground) that loss's mean is the bar. A
    synthetic pixel whose loss exceeds ``k`` times its class's bar is ignored: there the
    image and its mask disagree more than real pairs do. Returns the synthetic tiles with
    their ``ignore`` maps, and the bars and the share of pixels ignored per class."""
    bars = np.zeros(2)
    totals = np.zeros(2)
    for start in range(0, len(real_idx), 64):
        rows = real_idx[start:start + 64]
        loss, building = pixel_losses(judge, real, rows, device), np.asarray(real.masks[rows]) >= 128
        for c, where in enumerate((~building, building)):
            bars[c] += float(loss[where].sum())
            totals[c] += int(where.sum())
    bars = bars / np.maximum(totals, 1)
    ignore = np.zeros(synthetic.masks.shape, bool)
    counted, ignored = np.zeros(2), np.zeros(2)
    for start in range(0, len(synthetic), 64):
        rows = np.arange(start, min(start + 64, len(synthetic)))
        loss, building = pixel_losses(judge, synthetic, rows, device), np.asarray(synthetic.masks[rows]) >= 128
        ignore[rows] = loss > k * np.where(building, bars[1], bars[0])
        for c, where in enumerate((~building, building)):
            counted[c] += int(where.sum())
            ignored[c] += int((ignore[rows] & where).sum())
    stats = {"bar_ground": float(bars[0]), "bar_building": float(bars[1]),
             "ignored_ground": float(ignored[0] / max(counted[0], 1)),
             "ignored_building": float(ignored[1] / max(counted[1], 1)),
             "ignored": float(ignored.sum() / max(counted.sum(), 1))}
    return replace(synthetic, ignore=ignore), stats


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

    Without ``cfg.synthetic`` only the real arms run. Every input is checked before any
    training (see :func:`~satgan.synthetic.plan.plan_arms`), and nothing is written until the
    end (an earlier report there stays whole until replaced)."""
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
    claim = generator_claim(cfg.generator, real.root, cfg.fractions) if cfg.generator else None

    runs = []
    # counted in training steps, so a log shows movement inside each run, not only between them
    with progress_bar(total=len(arms) * cfg.seeds * cfg.steps, desc="segbench", unit="step",
                      disable=not progress) as bar:
        for seed in range(cfg.seeds):
            judges: dict[float, nn.Module] = {}  # per fraction, the real-only run: the filter's judge
            filtered: tuple[float, Tiles, dict] | None = None  # the current fraction's (its arms run together)
            for arm in arms:
                bar.set_postfix_str(f"{arm.name}, seed {seed}")
                real_idx = subset(len(real), arm.real, seed)
                extra, stats = synthetic, None
                if arm.filter is not None:
                    if filtered is None or filtered[0] != arm.fraction:
                        filtered = (arm.fraction, *filter_synthetic(judges[arm.fraction], real, real_idx, synthetic,
                                                                    arm.filter, device))
                    _, extra, stats = filtered
                pool = [(real, int(i)) for i in real_idx] + [(extra, i) for i in range(arm.synthetic)]
                order, phases = arm_order(arm, cfg, seed)
                net = initial_network(cfg, seed)
                started, weights = time.perf_counter(), digest(net)
                net = net.to(device)
                trained = fit(net, pool, settings, seed, device, bar.update, order=order, phases=phases)
                if arm.schedule is None and arm.fraction is not None:
                    judges[arm.fraction] = net
                runs.append({"arm": arm.name, "seed": seed, "real_tiles": arm.real, "synthetic_tiles": arm.synthetic,
                             "batch_size": cfg.batch_size, **trained, **score(net, test, device, cfg.batch_size),
                             "initial_weights": weights, "real_subset": digest(real_idx),
                             **({"ignored": stats["ignored"], "filter": stats} if stats else {}),
                             "seconds": round(time.perf_counter() - started, 3)})

    described = {**to_dict(cfg), "real": str(real.root), "out": str(out.resolve()),
                 "synthetic": str(synthetic.root) if synthetic is not None else None,
                 "test": str(test[0].root), "test_splits": [t.split for t in test]}
    report = {"settings": described, "device": str(device),
              "counts": {"real_train": len(real), "synthetic": len(synthetic) if synthetic is not None else 0,
                         "test": sum(len(t) for t in test)},
              "arms": summarize(arms, runs), "runs": runs}
    if claim is not None:
        report["generator"] = claim
    report["recommendation"] = recommendation(report)
    write_report(report, out)
    return report
