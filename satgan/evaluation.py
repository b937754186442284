"""``satgan evaluate``: how close generated images are to the real ones, per city and overall.

Two ways in. With checkpoints and a pretransformed split, every model (plus optional
baselines: ``flat``, building pixels one mean colour and the rest another; ``untrained``,
the first checkpoint's architecture freshly initialized) generates each tile of the
split, and is scored against the real tile. With ``generated`` and ``real`` folders,
images made elsewhere (the old project's ``Generated-X.jpeg`` / ``OriginalResized-X.jpeg``
included) are matched by name and scored with the same code.

Tiles are generated at their training scale and size: the centred crop of the training
crop's side (128 of a 286 tile for the ``quick`` preset). A U-Net fed larger inputs than it
trained on does worse (in the demo, 18.15 dB on 256 px centre crops against 18.94 dB on
128 px ones), so a model is scored on what it was trained to do.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import satgan
from satgan import metrics
from satgan.atomic import check_output_file, write_json
from satgan.config import EvaluateConfig, model_spec
from satgan.data.arrays import load_split, split_samples
from satgan.data.readers import IMAGE_SUFFIXES, read_image
from satgan.errors import SatganError, SatganWarning
from satgan.images import to_unit_range
from satgan.inference import generator_from_config, load_generator, run_model
from satgan.reference_segmenter import Segmenter, segmenter_from_spec
from satgan.runtime import resolve_device
from satgan.segmenter import fidelity, pixel_counts

Model = Callable[[np.ndarray], np.ndarray]  # (N, H, W) uint8 masks -> (N, H, W, 3) uint8 images
OLD_PREFIXES = ("generated-", "originalresized-", "maskresized-", "original-", "real-", "fake-")
GENERATED_ROLES = ("generated-", "fake-")
REAL_ROLES = ("originalresized-", "original-", "real-")
REAL_ROW = "real"  # the real images' own mask fidelity: the ceiling


# -- naming -----------------------------------------------------------------------------------
def load_generators(specs: list[str], device: str = "auto") -> dict[str, Model]:
    """The generators of checkpoints given as ``path`` or ``name=path``, by name."""
    models: dict[str, Model] = {}
    for spec in specs:
        name, path = model_spec(spec)
        if name in models:
            raise SatganError(f"two models named {name!r}; name them with NAME=PATH")
        models[name] = load_generator(path, device)
    return models


def city_of(name: str) -> str:
    """The city in an Inria-style name (``austin12``, ``Generated-kitsap3-2``), else ``all``."""
    key = name.lower()
    for prefix in OLD_PREFIXES:
        key = key.removeprefix(prefix)
    found = re.match(r"([a-z][a-z_\- ]*?)[-_ ]?\d", key)
    return found.group(1) if found else "all"


def match_key(path: Path) -> str:
    """A file's name without the old project's role prefix: what generated and real share."""
    key = path.stem.lower()
    for prefix in OLD_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def role_files(folder: Path, roles: tuple[str, ...]) -> dict[str, Path]:
    """Images of ``folder`` by :func:`match_key`: those named with one of ``roles`` where
    any are (a folder of old results holds masks, generated and real images together),
    else every image but the old ``MaskResized-`` ones."""
    images = [p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    chosen = [p for p in images if p.stem.lower().startswith(roles)]
    if not chosen:
        chosen = [p for p in images if not p.stem.lower().startswith(OLD_PREFIXES)]
    out: dict[str, Path] = {}
    for p in chosen:
        if match_key(p) in out:
            raise SatganError(f"{folder}: {out[match_key(p)].name} and {p.name} both match {match_key(p)!r}")
        out[match_key(p)] = p
    return out


# -- the data ---------------------------------------------------------------------------------
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


class FlatFill:
    """The flat-colour baseline: building pixels one colour, the rest another (blended by
    the mask's coverage at tile edges). Colours are the means of the real images."""

    def __init__(self, building: np.ndarray, background: np.ndarray):
        self.building, self.background = np.asarray(building, np.float32), np.asarray(background, np.float32)

    @classmethod
    def from_split(cls, root: str | Path, split: str, limit: int | None = None) -> FlatFill:
        weight = np.zeros(2)
        total = np.zeros((2, 3))
        for batch in split_samples(root, split, None, 64, limit):
            cover = batch["masks"].astype(np.float64)[..., None] / 255
            pixels = batch["images"].astype(np.float64)
            total[0] += (pixels * cover).sum((0, 1, 2))
            total[1] += (pixels * (1 - cover)).sum((0, 1, 2))
            weight += [cover.sum(), (1 - cover).sum()]
        means = total / np.maximum(weight, 1e-9)[:, None]
        return cls(means[0], means[1])

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        cover = masks.astype(np.float32)[..., None] / 255
        return (cover * self.building + (1 - cover) * self.background + 0.5).astype(np.uint8)


# -- scoring ----------------------------------------------------------------------------------
class _Scores:
    """Per-image PSNR/SSIM, cities, features and mask-fidelity pixel counts of one model,
    gathered batch by batch."""

    def __init__(self):
        self.psnr, self.ssim, self.cities, self.features, self.counts = [], [], [], [], []

    def add(self, fake: torch.Tensor, real: torch.Tensor, cities: list[str], feats: torch.Tensor | None,
            counts: np.ndarray | None = None):
        self.psnr.append(metrics.psnr(fake, real))
        self.ssim.append(metrics.ssim(fake, real, per_image=True))
        self.cities += cities
        if feats is not None:
            self.features.append(feats)
        if counts is not None:
            self.counts.append(counts)

    def report(self, real_features: torch.Tensor | None, kid_subsets: int) -> dict:
        psnr, ssim = torch.cat(self.psnr), torch.cat(self.ssim)
        feats = torch.cat(self.features) if self.features else None
        counts = np.concatenate(self.counts) if self.counts else None
        cities = np.array(self.cities)
        out = {"overall": {**metrics.summarize(psnr, ssim, feats, real_features, kid_subsets),
                           **_mask_scores(counts)}, "cities": {}}
        for city in sorted(set(self.cities)):
            idx = np.flatnonzero(cities == city)
            sel = torch.from_numpy(idx)
            out["cities"][city] = {**metrics.summarize(
                psnr[sel], ssim[sel], feats[sel] if feats is not None else None,
                real_features[sel] if real_features is not None else None, kid_subsets),
                **_mask_scores(counts[idx] if counts is not None else None)}
        return out


def _mask_scores(counts: np.ndarray | None) -> dict:
    """``mask_iou`` and ``mask_f1`` of pooled pixel counts (nothing without a segmenter)."""
    if counts is None:
        return {}
    scores = fidelity(counts)
    return {"mask_iou": round(scores["iou"], 6), "mask_f1": round(scores["f1"], 6)}


def _real_row(counts: list[np.ndarray], cities: list[str]) -> dict:
    """The real images' own mask fidelity: what the segmenter finds in the real tile against
    its mask, the ceiling a generator's images are read against."""
    counts_all, cities_arr = np.concatenate(counts), np.array(cities)
    return {"overall": {"count": len(counts_all), **_mask_scores(counts_all)},
            "cities": {city: {"count": int((cities_arr == city).sum()),
                              **_mask_scores(counts_all[cities_arr == city])} for city in sorted(set(cities))}}


def _inception(cfg: EvaluateConfig, device: str) -> tuple[metrics.InceptionFeatures | None, dict]:
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


def _report_header(cfg: EvaluateConfig, inception: dict) -> dict:
    return {"satgan_version": satgan.__version__, "inception": inception, "split": cfg.split,
            "psnr_range": "images in [0, 1], peak 1"}


def evaluate_models(models: dict[str, Model], root: str | Path, cfg: EvaluateConfig,
                    segmenter: Segmenter | Callable[[], Segmenter] | None = None) -> dict:
    """Score each model on the split of pretransformed folder ``root``; returns the report.
    With a ``segmenter`` (or a function that makes one, called once the other inputs are
    checked), also each model's mask fidelity and, as the ``real`` row, that of the real images."""
    if segmenter is not None and REAL_ROW in models:
        raise SatganError(f"a model is named {REAL_ROW!r}, the row of the real images' mask fidelity: rename it")
    side = eval_side(models, load_split(root, cfg.split)[1]["image_shape"][1])
    device = str(resolve_device(cfg.device))
    extractor, inception = _inception(cfg, device)
    if segmenter is not None and not isinstance(segmenter, Segmenter):
        segmenter = segmenter()
    scores = {name: _Scores() for name in models}
    real_features, real_counts, cities, count = [], [], [], 0
    for batch in split_samples(root, cfg.split, side, cfg.batch_size, cfg.limit):
        real = to_unit_range(batch["images"])
        if extractor is not None:
            real_features.append(metrics.features(extractor, real))
        if segmenter is not None:
            real_counts.append(pixel_counts(segmenter(batch["images"]), batch["masks"]))
        for name, model in models.items():
            images = run_model(model, batch["masks"], batch["cities"])  # each tile as its own city
            fake = to_unit_range(images)
            counts = pixel_counts(segmenter(images), batch["masks"]) if segmenter is not None else None
            scores[name].add(fake, real, batch["cities"], metrics.features(extractor, fake) if extractor else None,
                             counts)
        cities += batch["cities"]
        count += len(real)
    if count == 0:
        raise SatganError(f"{root}: split {cfg.split!r} has no samples to evaluate")
    reals = torch.cat(real_features) if real_features else None
    report = _report_header(cfg, inception)
    report.update({"data": str(Path(root).resolve()), "count": count, "tile_side": side,
                   "models": {name: s.report(reals, cfg.kid_subsets) for name, s in scores.items()}})
    if segmenter is not None:
        report["models"][REAL_ROW] = _real_row(real_counts, cities)
        report["segmenter"] = segmenter_summary(segmenter)
    return report


def segmenter_summary(segmenter: Segmenter) -> dict:
    """Where the judge of mask fidelity came from, for a report."""
    info = segmenter.info
    return {"data": info["data"]["root"], "tiles": info["data"]["tiles"], "settings": info["settings"],
            "key": info["key"][:24], "val": info.get("val")}


class DropoutNoise:
    """A generator loaded with its dropout on (``load_generator(..., dropout=True)``) whose
    noise is drawn from ``seed`` at each call: pix2pix's own source of variety."""

    def __init__(self, gen, seed: int):
        self.gen, self.seed, self.calls = gen, seed, 0
        self.labels, self.latent, self.city = gen.labels, gen.latent, gen.city
        self.window, self.multiple = gen.window, gen.multiple

    def __call__(self, masks: np.ndarray, cities: list[str] | None = None) -> np.ndarray:
        torch.manual_seed(self.seed * 1_000_003 + self.calls)
        self.calls += 1
        return run_model(self.gen, masks, cities)


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


def _resize_to(image: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(image[None], size=hw, mode="bicubic", antialias=True, align_corners=False)[0].clamp(0, 1)


def evaluate_folders(cfg: EvaluateConfig) -> dict:
    """Score a folder of generated images against a folder of real ones, matched by name.

    A real image of another size than its generated one is resized to it (antialiased
    bicubic) for PSNR/SSIM; for FID/KID every image goes to 299x299 bilinearly, as
    pytorch-fid does. Unreadable files are named, skipped and counted.
    """
    gen_dir, real_dir = Path(cfg.generated).expanduser(), Path(cfg.real).expanduser()
    for folder in (gen_dir, real_dir):
        if not folder.is_dir():
            raise SatganError(f"{folder}: no such folder")
    generated, reals = role_files(gen_dir, GENERATED_ROLES), role_files(real_dir, REAL_ROLES)
    if set(generated.values()) & set(reals.values()):
        raise SatganError(f"{gen_dir}: generated and real are the same files; name them Generated-X and "
                          "OriginalResized-X, or give two folders")
    keys = sorted(set(generated) & set(reals))
    if not keys:
        raise SatganError(f"no image in {gen_dir} has a counterpart of the same name in {real_dir}")
    extractor, inception = _inception(cfg, str(resolve_device(cfg.device)))
    scores, real_features, skipped, resized = _Scores(), [], {}, 0
    for key in keys[: cfg.limit or None]:
        try:
            fake = to_unit_range(read_image(generated[key])[None])[0]
            real = to_unit_range(read_image(reals[key])[None])[0]
        except SatganError as exc:
            skipped[key] = str(exc)
            warnings.warn(f"skipped: {exc}", SatganWarning, stacklevel=2)
            continue
        if real.shape != fake.shape:
            real, resized = _resize_to(real, tuple(fake.shape[-2:])), resized + 1
        feats = [metrics.features(extractor, x[None]) for x in (fake, real)] if extractor else [None, None]
        scores.add(fake[None], real[None], [city_of(key)], feats[0])
        if feats[1] is not None:
            real_features.append(feats[1])
    if not scores.psnr:
        raise SatganError(f"none of the {len(keys)} matched pairs could be read")
    real_feats = torch.cat(real_features) if real_features else None
    report = _report_header(cfg, inception)
    report.update({
        "generated": str(gen_dir.resolve()), "real": str(real_dir.resolve()), "count": len(scores.psnr),
        "unmatched": {"generated": len(generated) - len(keys), "real": len(reals) - len(keys)},
        "skipped": skipped, "real_resized": resized,
        "models": {gen_dir.name: scores.report(real_feats, cfg.kid_subsets)},
    })
    return report


def evaluate(cfg: EvaluateConfig) -> dict:
    """Run the evaluation ``cfg`` describes and write its JSON report to ``cfg.out``."""
    out = check_output_file(cfg.out)  # before the scoring, not after
    if cfg.generated:
        report = evaluate_folders(cfg)
    else:
        models: dict[str, Model] = load_generators(cfg.checkpoints, cfg.device)
        if "untrained" in cfg.baselines:
            models["untrained"] = generator_from_config(next(iter(models.values())).config, cfg.device)
        if cfg.sharpen is not None:  # every generator, the untrained one too, draws with the same mask
            models = {name: replace(m, sharpen=cfg.sharpen) for name, m in models.items()}
        if "flat" in cfg.baselines:
            models["flat"] = FlatFill.from_split(cfg.data, cfg.split, cfg.limit)
        segmenter = (lambda: segmenter_from_spec(cfg.segmenter, cfg.data, cfg.device)) if cfg.mask_iou else None
        report = evaluate_models(models, cfg.data, cfg, segmenter)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, report)
    return report


# -- presenting -------------------------------------------------------------------------------
COLUMNS = ("psnr", "ssim", "fid", "kid", "mask_iou", "mask_f1")


def report_rows(*reports: dict, cities: bool = False) -> list[dict]:
    """Flat rows (model, city, count, psnr, ssim, fid, kid) of one or more reports: the
    table several checkpoints on the same data make together."""
    rows = []
    for report in reports:
        for name, entry in report["models"].items():
            parts = [("overall", entry["overall"])] + (sorted(entry["cities"].items()) if cities else [])
            for city, values in parts:
                rows.append({"model": name, "city": city, "count": values["count"],
                             **{k: values.get(k) for k in COLUMNS}})
    return rows


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of :func:`report_rows`."""
    head = (f"{'model':<16} {'city':<10} {'n':>5} {'PSNR dB':>8} {'SSIM':>6} {'FID':>8} {'KID':>8} "
            f"{'mask IoU':>8} {'mask F1':>7}")

    def num(v, fmt):
        return format(v, fmt) if v is not None else "-"

    lines = [head] + [
        f"{r['model'][:16]:<16} {r['city'][:10]:<10} {r['count']:>5} {num(r['psnr'], '8.2f')} "
        f"{num(r['ssim'], '6.3f')} {num(r['fid'], '8.1f')} {num(r['kid'], '8.4f')} "
        f"{num(r.get('mask_iou'), '8.3f')} {num(r.get('mask_f1'), '7.3f')}"
        for r in rows
    ]
    return "\n".join(lines)
