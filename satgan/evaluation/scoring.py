"""Scoring models on a pretransformed split: PSNR, SSIM, FID/KID and mask fidelity, per
city and overall, and how much the samples of one generator differ.

Tiles are generated at their training scale and size: the centred crop of the training
crop's side (128 of a 286 tile for the ``quick`` preset). A U-Net fed larger inputs than it
trained on does worse (a lower PSNR), so a model is scored on what it was trained to do.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import satgan
from satgan import SatganError, SatganWarning, metrics
from satgan.config import EvaluateConfig
from satgan.data.arrays import load_split, split_samples
from satgan.generation.loading import Model, run_model
from satgan.metrics import to_unit_range
from satgan.runtime import resolve_device
from satgan.segmentation.segmenters import Segmenter, check_independent
from satgan.segmentation.training import fidelity, pixel_counts

REAL_ROW = "real"  # the real images' own mask fidelity: the ceiling


def eval_side(models: dict[str, Model], tile: int) -> int:
    """The side of the centred crops models are scored on: the smallest training crop
    among them (the whole tile for baselines alone), which every model must accept."""
    windows = [m.window for m in models.values() if hasattr(m, "window")]
    side = min(windows) if windows else tile
    bad = [n for n, m in models.items() if hasattr(m, "multiple") and side % m.multiple]
    if bad:
        raise SatganError(f"models {bad} need inputs of another size than the {side} px the others trained on; "
                          "evaluate models of different training crops separately")
    if side > tile:
        raise SatganError(f"the tiles are {tile} px, smaller than the {side} px training crop")
    return side


class Scores:
    """Per-image PSNR/SSIM, cities, features and mask-fidelity pixel counts of one model,
    gathered batch by batch."""

    def __init__(self):
        self.psnr, self.ssim, self.cities, self.features = [], [], [], []
        self.counts: dict[str, list[np.ndarray]] = {}  # by judge

    def add(self, fake: torch.Tensor, real: torch.Tensor, cities: list[str], feats: torch.Tensor | None,
            counts: dict[str, np.ndarray] | None = None):
        self.psnr.append(metrics.psnr(fake, real))
        self.ssim.append(metrics.ssim(fake, real, per_image=True))
        self.cities += cities
        if feats is not None:
            self.features.append(feats)
        for judge, c in (counts or {}).items():
            self.counts.setdefault(judge, []).append(c)

    def report(self, real_features: torch.Tensor | None, kid_subsets: int) -> dict:
        psnr, ssim = torch.cat(self.psnr), torch.cat(self.ssim)
        feats = torch.cat(self.features) if self.features else None
        counts = {judge: np.concatenate(c) for judge, c in self.counts.items()}
        cities = np.array(self.cities)
        out = {"overall": {**metrics.summarize(psnr, ssim, feats, real_features, kid_subsets),
                           **_mask_scores(counts)}, "cities": {}}
        for city in sorted(set(self.cities)):
            idx = np.flatnonzero(cities == city)
            sel = torch.from_numpy(idx)
            out["cities"][city] = {**metrics.summarize(
                psnr[sel], ssim[sel], feats[sel] if feats is not None else None,
                real_features[sel] if real_features is not None else None, kid_subsets),
                **_mask_scores({judge: c[idx] for judge, c in counts.items()})}
        return out


def _mask_scores(counts: dict[str, np.ndarray]) -> dict:
    """Per judge (``mask_iou``, ``mask_iou_2``) its IoU and F1 (``mask_f1``, ``mask_f1_2``)
    of pooled pixel counts (nothing without a judge)."""
    out = {}
    for judge, c in counts.items():
        scores = fidelity(c)
        out[judge], out[judge.replace("iou", "f1")] = round(scores["iou"], 6), round(scores["f1"], 6)
    return out


def _real_row(counts: dict[str, list[np.ndarray]], cities: list[str]) -> dict:
    """The real images' own mask fidelity by each judge: what it finds in the real tile
    against its mask, the ceiling a generator's images are read against."""
    pooled, cities_arr = {judge: np.concatenate(c) for judge, c in counts.items()}, np.array(cities)
    return {"overall": {"count": len(cities_arr), **_mask_scores(pooled)},
            "cities": {city: {"count": int((cities_arr == city).sum()),
                              **_mask_scores({j: c[cities_arr == city] for j, c in pooled.items()})}
                       for city in sorted(set(cities))}}


def load_inception(cfg: EvaluateConfig, device: str) -> tuple[metrics.InceptionFeatures | None, dict]:
    """The FID Inception; where none is installed, the report says so (the other metrics
    still count). A path the user gave must work."""
    try:
        extractor = metrics.InceptionFeatures(cfg.inception, device)
        return extractor, {"available": True, "path": str(extractor.path)}
    except SatganError as exc:
        if cfg.inception:
            raise
        warnings.warn(f"FID and KID skipped: {exc}", SatganWarning, stacklevel=3)
        return None, {"available": False, "reason": str(exc)}


def report_header(cfg: EvaluateConfig, inception: dict) -> dict:
    return {"satgan_version": satgan.__version__, "inception": inception, "split": cfg.split,
            "psnr_range": "images in [0, 1], peak 1"}


Judges = Segmenter | Callable[[], Segmenter] | dict[str, Segmenter | Callable[[], Segmenter]] | None


def evaluate_models(models: dict[str, Model], root: str | Path, cfg: EvaluateConfig, segmenter: Judges = None) -> dict:
    """Score each model on the split of pretransformed folder ``root``; returns the report.
    With judges of mask fidelity (``segmenter``: one, scored as ``mask_iou``, or several by
    score name, ``{"mask_iou": ..., "mask_iou_2": ...}``; each a segmenter or a function that
    makes one, called once the other inputs are checked), also each model's mask fidelity by
    each judge and, as the ``real`` row, that of the real images. A judge that took part in
    training one of the models is refused."""
    judges = segmenter if isinstance(segmenter, dict) else {"mask_iou": segmenter} if segmenter is not None else {}
    if judges and REAL_ROW in models:
        raise SatganError(f"a model is named {REAL_ROW!r}, the row of the real images' mask fidelity: rename it")
    side = eval_side(models, load_split(root, cfg.split)[1]["image_shape"][1])
    device = str(resolve_device(cfg.device))
    extractor, inception = load_inception(cfg, device)
    judges = {name: j if isinstance(j, Segmenter) else j() for name, j in judges.items()}
    for name, judge in judges.items():
        check_independent(name, judge, models)
    scores = {name: Scores() for name in models}
    real_features, real_counts, cities, count = [], {name: [] for name in judges}, [], 0
    for batch in split_samples(root, cfg.split, side, cfg.batch_size, cfg.limit):
        real = to_unit_range(batch["images"])
        if extractor is not None:
            real_features.append(metrics.features(extractor, real))
        for name, judge in judges.items():
            real_counts[name].append(pixel_counts(judge(batch["images"]), batch["masks"]))
        for name, model in models.items():
            images = run_model(model, batch["masks"], batch["cities"])  # each tile as its own city
            fake = to_unit_range(images)
            counts = {j: pixel_counts(judge(images), batch["masks"]) for j, judge in judges.items()}
            scores[name].add(fake, real, batch["cities"], metrics.features(extractor, fake) if extractor else None,
                             counts)
        cities += batch["cities"]
        count += len(real)
    if count == 0:
        raise SatganError(f"{root}: split {cfg.split!r} has no samples to evaluate")
    reals = torch.cat(real_features) if real_features else None
    report = report_header(cfg, inception)
    report.update({"data": str(Path(root).resolve()), "count": count, "tile_side": side,
                   "models": {name: s.report(reals, cfg.kid_subsets) for name, s in scores.items()}})
    if judges:
        report["models"][REAL_ROW] = _real_row(real_counts, cities)
        for name, judge in judges.items():  # "segmenter" (mask_iou), "segmenter_2" (mask_iou_2)
            report["segmenter" + name.removeprefix("mask_iou")] = segmenter_summary(judge)
    trained_with = {name: m.trained_with for name, m in models.items() if getattr(m, "trained_with", None)}
    if trained_with:
        report["trained_with"] = trained_with
    return report


def segmenter_summary(segmenter: Segmenter) -> dict:
    """Where a judge of mask fidelity came from, for a report."""
    info = segmenter.info
    return {"data": info["data"]["root"], "tiles": info["data"]["tiles"], "settings": info["settings"],
            "key": info["key"][:24], "val": info.get("val")}


def diversity(samplers: list[Model], root: str | Path, split: str = "val", limit: int | None = None,
              inception: metrics.InceptionFeatures | None = None, batch_size: int = 16) -> dict:
    """How different the generations of the same masks are: ``samplers`` (K >= 2 models,
    e.g. one generator with K style codes or K noise seeds) each draw every tile of the
    split (each as its own city); reported are the means over tiles and over the K(K-1)/2
    pairs of the mean absolute pixel difference (images in [0, 1]) and, with
    ``inception``, of the distance between the images' Inception features."""
    if len(samplers) < 2:
        raise SatganError("diversity needs at least two samplers")
    side = eval_side(dict(enumerate(samplers)), load_split(root, split)[1]["image_shape"][1])
    pixels, feats, count = [], [], 0
    for batch in split_samples(root, split, side, batch_size, limit):
        outs = [to_unit_range(run_model(s, batch["masks"], batch["cities"])) for s in samplers]
        f = [metrics.features(inception, o) for o in outs] if inception is not None else None
        for i in range(len(outs)):
            for j in range(i + 1, len(outs)):
                pixels.append((outs[i] - outs[j]).abs().flatten(1).mean(1))
                if f is not None:
                    feats.append((f[i] - f[j]).norm(dim=1))
        count += len(batch["masks"])
    out = {"tiles": count, "samples": len(samplers), "pixels": float(torch.cat(pixels).mean())}
    if feats:
        out["inception"] = float(torch.cat(feats).mean())
    return out
