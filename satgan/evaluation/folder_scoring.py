"""Scoring images made elsewhere: a folder of generated images against a folder of real
ones, matched by name (also in the file names of the project satgan continues,
``Generated-X.jpeg`` / ``OriginalResized-X.jpeg``, so its results score too), with the same
metrics as models on a split."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from satgan import SatganError, SatganWarning, metrics
from satgan.config import EvaluateConfig
from satgan.data.readers import IMAGE_SUFFIXES, read_image
from satgan.evaluation.scoring import Scores, load_inception, report_header
from satgan.metrics import to_unit_range
from satgan.runtime import resolve_device

OLD_PREFIXES = ("generated-", "originalresized-", "maskresized-", "original-", "real-", "fake-")
GENERATED_ROLES = ("generated-", "fake-")
REAL_ROLES = ("originalresized-", "original-", "real-")


def city_of(name: str) -> str:
    """The city in an Inria-style name (``austin12``, ``Generated-kitsap3-2``), else ``all``."""
    key = name.lower()
    for prefix in OLD_PREFIXES:
        key = key.removeprefix(prefix)
    found = re.match(r"([a-z][a-z_\- ]*?)[-_ ]?\d", key)
    return found.group(1) if found else "all"


def match_key(path: Path) -> str:
    """A file's name without its role prefix (``Generated-``, ``OriginalResized-``): what
    generated and real share."""
    key = path.stem.lower()
    for prefix in OLD_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def role_files(folder: Path, roles: tuple[str, ...]) -> dict[str, Path]:
    """Images of ``folder`` by :func:`match_key`: those named with one of ``roles`` where
    any are (a folder of results in those names holds masks, generated and real images
    together), else every image but ``MaskResized-`` masks."""
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
    extractor, inception = load_inception(cfg, str(resolve_device(cfg.device)))
    scores, real_features, skipped, resized = Scores(), [], {}, 0
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
    report = report_header(cfg, inception)
    report.update({
        "generated": str(gen_dir.resolve()), "real": str(real_dir.resolve()), "count": len(scores.psnr),
        "unmatched": {"generated": len(generated) - len(keys), "real": len(reals) - len(keys)},
        "skipped": skipped, "real_resized": resized,
        "models": {gen_dir.name: scores.report(real_feats, cfg.kid_subsets)},
    })
    return report
