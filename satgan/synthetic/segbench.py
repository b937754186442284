"""``satgan segbench``: does synthetic data help a segmentation network?

The reference building segmenter (:mod:`satgan.segmentation.training`: a light U-Net, BCE + soft
Dice, warm-up and cosine decay, flips, turns and colour jitter) is trained in several
*arms* that differ only in their training tiles and schedule (:mod:`satgan.synthetic.plan`):
real tiles only, real tiles mixed with a share of synthetic ones in every batch,
pre-training on synthetic tiles then fine-tuning on real ones, those two with implausible
synthetic pixels filtered out, synthetic tiles alone, and beside each mixing arm the
generator-free baseline, copy-paste tiles made from the arm's own real tiles.

Every arm gets the same budget (``steps`` steps of ``batch_size`` tiles) and, for each seed,
the same initial weights and the same (nested) real subset. All arms are scored on a real
split none of them trained on (``test_split`` of the real folder, or with ``test`` every
tile of another folder), by IoU and F1 pooled over all its pixels. Each run is kept in
``OUT/runs/`` as it finishes; the result is one JSON report, a markdown table, a plot and a
sentence on whether to use the synthetic set (:mod:`satgan.synthetic.report`). Any
pretransformed folders work, so a user can run it on their own data.

One segbench at a time writes into an ``OUT`` (:func:`~satgan.synthetic.report.output_lock`):
a second one is refused. A segbench that stops (a full disk, Ctrl-C, kill -9) keeps its
finished runs, and the same command again reuses each one whose arm, seed, settings and
data are the same (:func:`run_key`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

import satgan
from satgan import SatganError
from satgan.atomic import check_output_folder
from satgan.config import SegbenchConfig, SegmenterConfig, to_dict
from satgan.data.arrays import load_manifest
from satgan.data.subset import subset
from satgan.progress import progress_bar
from satgan.runtime import resolve_device
from satgan.segmentation.segmenters import MIN_BUILDING_SHARE, training_settings
from satgan.segmentation.training import TRAIN, Tiles, build, building_share, fit, load_tiles, pixel_losses, score
from satgan.synthetic.copy_paste import copy_paste_tiles
from satgan.synthetic.plan import COPY_PASTE, PRETRAIN, Arm, arm_order, plan_arms, real_name
from satgan.synthetic.report import (
    RUNS,
    foreign_report_files,
    load_run,
    output_lock,
    recommendation,
    run_file,
    save_run,
    summarize,
    write_failed,
    write_report,
)

RUN_FORMAT = 1  # of OUT/runs/*.json; part of every run's key


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


def data_id(root: Path) -> str:
    """What a pretransformed folder holds: its manifest's content hash (of every split's
    arrays), else the SHA-256 of the manifest itself."""
    manifest = load_manifest(root)
    return manifest.get("content_hash") or hashlib.sha256((root / "manifest.json").read_bytes()).hexdigest()


def _images_hash(tiles: Tiles) -> str | None:
    return load_manifest(tiles.root)["splits"].get(tiles.split, {}).get("sha256", {}).get("images")


def same_tiles(a: Tiles, b: Tiles) -> bool:
    """Whether two splits hold the same images: one folder and split, or copies (the same
    SHA-256 of their images, as their manifests record it)."""
    if (a.root, a.split) == (b.root, b.split):
        return True
    hashes = _images_hash(a), _images_hash(b)
    return hashes[0] is not None and hashes[0] == hashes[1]


def check_synthetic(synthetic: Tiles, real: Tiles) -> None:
    """The synthetic folder is not the real one, nor a copy of it (the same content hash, or
    train images of the same SHA-256): its 'synthetic' arms would train on real tiles."""
    if synthetic.root == real.root:
        raise SatganError(f"--synthetic {synthetic.root} is the real folder: the 'synthetic' arms would train "
                          "on real tiles; give the pretransformed synthetic pairs")
    if data_id(synthetic.root) == data_id(real.root) or same_tiles(synthetic, real):
        raise SatganError(f"--synthetic {synthetic.root} holds the same tiles as the real folder {real.root} (the "
                          "same content hash): it is the real data, and the 'synthetic' arms would train on real "
                          "tiles; give the pretransformed synthetic pairs")


def test_tiles(cfg: SegbenchConfig, real: Tiles, synthetic: Tiles | None = None) -> list[Tiles]:
    """What every arm is scored on: ``cfg.test_split`` (default ``val``) of the real folder, or
    with ``cfg.test`` that folder's ``cfg.test_split``, else all of its splits. Never a split
    the arms train on (the real or synthetic train split, or a copy of one)."""
    root = Path(cfg.test).expanduser().resolve() if cfg.test else real.root
    if cfg.test_split:
        splits = [cfg.test_split]
    elif cfg.test:
        try:
            splits = list(load_manifest(root)["splits"])
        except SatganError as exc:
            raise SatganError(f"--test: {exc}") from None
    else:
        splits = ["val"]
    trained = [("real", real)] + ([("synthetic", synthetic)] if synthetic is not None else [])
    for what, tiles in trained:
        if root == tiles.root and TRAIN in splits:
            if cfg.test:
                raise SatganError(f"--test is the {what} folder: give --test-split naming a split the arms do not "
                                  f"train on, e.g. --test-split val (they train on its {TRAIN} split, {root})")
            raise SatganError(f"test_split={TRAIN}: the arms train on the {TRAIN} split of the real folder "
                              f"{root}; score them on a split they do not train on, e.g. val (the default)")
    test = [load_tiles(root, split, "test", 1) for split in splits]
    for t in test:
        for what, tiles in trained:
            if same_tiles(t, tiles):
                raise SatganError(f"--test {root}: its {t.split} split holds the same tiles as the {what} {TRAIN} "
                                  f"split the arms train on ({tiles.root}); score on tiles they did not see")
    return test


def check_buildings(real: Tiles, test: list[Tiles]) -> None:
    """Refused as ``satgan segmenter`` refuses it: a real train split with (almost) no
    buildings, where the segmenter cannot learn what one looks like; and test tiles without
    a building pixel, where every arm scores IoU 0 whatever it learnt."""
    share = building_share(real)
    if share < MIN_BUILDING_SHARE:
        raise SatganError(f"real data: {real.root}: buildings cover {share:.2%} of the {TRAIN} split's pixels; the "
                          f"segmenter needs masks with buildings (at least {MIN_BUILDING_SHARE:.1%}) to learn what "
                          "one looks like")
    if all(building_share(t) == 0 for t in test):
        splits = "+".join(t.split for t in test)
        raise SatganError(f"no building pixels in the {splits} split of {test[0].root}: every arm would score IoU "
                          "0 whatever it learnt; score on tiles with buildings (--test, --test-split)")


def run_key(cfg: SegbenchConfig, arm: Arm, seed: int, device: torch.device, data: dict) -> str:
    """Everything a run's result depends on, hashed: the arm, the seed, the training
    settings, the device, the versions, and what the real, synthetic and test folders hold.
    A kept run is reused only under the same key."""
    training = training_settings(segmenter_settings(cfg))
    what = {"format": RUN_FORMAT, "satgan": satgan.__version__, "torch": torch.__version__, "device": str(device),
            "arm": asdict(arm), "seed": seed, "training": training,
            "pretrain": cfg.pretrain if arm.schedule == PRETRAIN else None,
            "real": data["real"], "synthetic": data["synthetic"] if arm.synthetic else None, "test": data["test"]}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def segbench(cfg: SegbenchConfig, progress: bool = True) -> dict:
    """Train the segmenter in every arm for every seed, score each run on the real
    ``cfg.test_split`` split, write ``report.json``, ``report.md`` and ``report.png`` to
    ``cfg.out`` and return the report.

    Without ``cfg.synthetic`` only the real arms run. Every input is checked before any
    training (see :func:`~satgan.synthetic.plan.plan_arms`) and before ``cfg.out`` is made.
    Each run is kept in ``OUT/runs/`` as it finishes (and reused by the same command
    again); the report is written at the end (an earlier report there stays whole until
    replaced). A failed write is one :class:`SatganError` naming the file."""
    settings = segmenter_settings(cfg)  # checks the crop
    device = resolve_device(cfg.device)
    out = check_output_folder(cfg.out, inputs=[("the real folder", cfg.real), ("the synthetic folder", cfg.synthetic),
                                               ("the test folder", cfg.test), ("the generator", cfg.generator)])
    foreign = foreign_report_files(out)
    if foreign:
        raise SatganError(f"{foreign[0]}: already there and not written by satgan segbench; it would be replaced: "
                          "move it or choose another OUT")
    real = load_tiles(cfg.real, TRAIN, "real", cfg.crop)
    synthetic = load_tiles(cfg.synthetic, TRAIN, "synthetic", cfg.crop) if cfg.synthetic else None
    if synthetic is not None:
        check_synthetic(synthetic, real)
    test = test_tiles(cfg, real, synthetic)
    check_buildings(real, test)
    arms = plan_arms(cfg, len(real), len(synthetic) if synthetic is not None else None)
    claim = generator_claim(cfg.generator, real.root, cfg.fractions) if cfg.generator else None
    data = {"real": data_id(real.root), "synthetic": data_id(synthetic.root) if synthetic is not None else None,
            "test": [[data_id(t.root), t.split] for t in test]}

    made = [p for p in (out, *out.parents) if not p.exists()]  # the folders this run makes, deepest first
    runs: list[dict] = []
    starting = True  # making OUT, its lock and OUT/runs: a failed write there is said as one
    locked = False  # only a run that holds OUT's lock may tidy OUT up (another may be writing there)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with output_lock(out):
            locked = True
            (out / RUNS).mkdir(exist_ok=True)
            for left in [*out.glob(".report.tmp-*"), *(out / RUNS).glob(".*.tmp-*")]:  # of a segbench killed
                left.unlink(missing_ok=True)
            starting = False
            reused = _run_arms(cfg, arms, real, synthetic, test, settings, device, data, out, runs, progress)
            described = {**to_dict(cfg), "real": str(real.root), "out": str(out.resolve()),
                         "synthetic": str(synthetic.root) if synthetic is not None else None,
                         "test": str(test[0].root), "test_splits": [t.split for t in test]}
            report = {"settings": described, "device": str(device),
                      "counts": {"real_train": len(real), "synthetic": len(synthetic) if synthetic is not None else 0,
                                 "test": sum(len(t) for t in test)},
                      "arms": summarize(arms, runs), "runs": runs, "reused_runs": reused}
            if claim is not None:
                report["generator"] = claim
            report["recommendation"] = recommendation(report)
            try:
                write_report(report, out)
            except OSError as exc:
                raise write_failed(exc, out, len(runs)) from None
    except OSError as exc:
        if not starting:
            raise
        raise write_failed(exc, out, 0) from None
    finally:
        if locked and not runs:  # nothing kept: no empty folder left behind
            for folder in (out / RUNS, *made):
                try:
                    folder.rmdir()
                except FileNotFoundError:
                    continue
                except OSError:
                    break
    return report


def _run_arms(cfg: SegbenchConfig, arms: list[Arm], real: Tiles, synthetic: Tiles | None, test: list[Tiles],
              settings: SegmenterConfig, device: torch.device, data: dict, out: Path, runs: list[dict],
              progress: bool) -> int:
    """Every arm of every seed into ``runs``, each kept in ``OUT/runs/`` as it finishes, or
    reused from there when its key matches; returns how many were reused. A filtered arm to
    train needs its judge, the fraction's real-only network, so that run trains again too."""
    reused = 0
    # counted in training steps, so a log shows movement inside each run, not only between them
    with progress_bar(total=len(arms) * cfg.seeds * cfg.steps, desc="segbench", unit="step",
                      disable=not progress) as bar:
        for seed in range(cfg.seeds):
            keys = {arm.name: run_key(cfg, arm, seed, device, data) for arm in arms}
            kept = {arm.name: load_run(run_file(out, arm.name, seed), keys[arm.name]) for arm in arms}
            for arm in arms:
                if arm.filter is not None and kept[arm.name] is None:
                    kept[real_name(arm.fraction)] = None
            judges: dict[float, nn.Module] = {}  # per fraction, the real-only run: the filter's judge
            filtered: tuple[float, Tiles, dict] | None = None  # the current fraction's (its arms run together)
            for arm in arms:
                bar.set_postfix_str(f"{arm.name}, seed {seed}")
                if kept[arm.name] is not None:
                    runs.append(kept[arm.name])
                    reused += 1
                    bar.update(cfg.steps)
                    continue
                real_idx = subset(len(real), arm.real, seed)
                extra, stats = synthetic, None
                if arm.source == COPY_PASTE:  # made from this arm's real tiles alone
                    extra = copy_paste_tiles(real, real_idx, arm.synthetic, seed)
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
                run = {"arm": arm.name, "seed": seed, "real_tiles": arm.real, "synthetic_tiles": arm.synthetic,
                       "batch_size": cfg.batch_size, **trained, **score(net, test, device, cfg.batch_size),
                       "initial_weights": weights, "real_subset": digest(real_idx),
                       **({"ignored": stats["ignored"], "filter": stats} if stats else {}),
                       "seconds": round(time.perf_counter() - started, 3)}
                try:
                    save_run(run_file(out, arm.name, seed), keys[arm.name], run)
                except OSError as exc:
                    raise write_failed(exc, out, len(runs)) from None
                runs.append(run)
    return reused
