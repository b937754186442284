"""The reference building segmenter: trained once per data folder and settings, cached, loaded.

:func:`reference_segmenter` trains :mod:`satgan.segmentation.training`'s network on a pretransformed
folder's train split and keeps it in a cache folder (key: the manifest's SHA-256 and the
training settings), never inside the data folder, which may be read-only. It judges mask
fidelity in ``evaluate`` and the gallery; :func:`segmenter_from_spec` turns a command's
``--segmenter`` (a saved file or a folder) into one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

import satgan
from satgan import SatganError, SatganWarning
from satgan.config import SegmenterConfig, to_dict
from satgan.data.arrays import load_manifest, load_split
from satgan.models.segmenter import MULTIPLE
from satgan.models.weights_files import read_torch_file
from satgan.progress import progress_bar
from satgan.runtime import resolve_device, save_torch
from satgan.segmentation.training import TRAIN, build, building_share, fit, load_tiles, predict, score, segmenter_net

KIND = "satgan-segmenter"
FORMAT = 1
MIN_BUILDING_SHARE = 0.005  # below this the masks hold too few buildings to learn what one looks like
# settings that do not change what is learnt: left out of the cache key
NOT_IN_KEY = ("data", "out", "overwrite", "cache", "device")


@dataclass
class Segmenter:
    """A trained building segmenter and where it came from (``info``: settings, data, scores)."""

    net: nn.Module
    info: dict
    device: torch.device

    def __call__(self, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """Buildings ``(N, H, W)`` bool found in uint8 ``images`` (N, H, W, 3)."""
        return predict(self.net, images, self.device, batch_size)

    def save(self, path: str | os.PathLike) -> Path:
        """One self-describing ``.pt`` file (loaded with ``weights_only=True``), written atomically."""
        path = Path(path).expanduser()
        if path.is_dir():
            raise SatganError(f"{path}: is a folder; give a file name, e.g. {path / 'segmenter.pt'}")
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        return save_torch({"kind": KIND, "format": FORMAT, "info": self.info, "weights": state}, path)


def training_settings(cfg: SegmenterConfig) -> dict:
    """The settings that decide what is learnt (not where data, cache or device are)."""
    return {k: v for k, v in to_dict(cfg).items() if k not in NOT_IN_KEY}


def cache_key(cfg: SegmenterConfig) -> str:
    """SHA-256 of the data's manifest, the training settings and the file format."""
    manifest = Path(cfg.data).expanduser() / "manifest.json"
    h = hashlib.sha256()
    h.update(manifest.read_bytes())
    h.update(json.dumps({"format": FORMAT, **training_settings(cfg)}, sort_keys=True).encode())
    return h.hexdigest()


def cache_folder(cfg: SegmenterConfig) -> Path:
    """``cfg.cache``, else ``$SATGAN_CACHE``, else ``$XDG_CACHE_HOME/satgan`` or ``~/.cache/satgan``."""
    if cfg.cache:
        return Path(cfg.cache).expanduser()
    if os.environ.get("SATGAN_CACHE"):
        return Path(os.environ["SATGAN_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "satgan"


def load_segmenter(path: str | os.PathLike, device: str = "auto") -> Segmenter:
    """A segmenter saved by :meth:`Segmenter.save` (or by the cache). Never runs code."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SatganError(f"{path}: no such segmenter file")
    raw = read_torch_file(path, "segmenter", "a satgan segmenter")
    if not isinstance(raw, dict) or raw.get("kind") != KIND:
        raise SatganError(f"{path}: not a satgan segmenter (a generator checkpoint? give a file saved by "
                          "satgan segmenter --out, or a pretransformed folder to train one)")
    if raw.get("format") != FORMAT:
        raise SatganError(f"{path}: segmenter format {raw.get('format')!r}; this satgan reads format {FORMAT}: "
                          "train it again")
    info = raw.get("info")
    if not isinstance(info, dict) or not isinstance(info.get("settings"), dict):
        raise SatganError(f"{path}: a damaged segmenter (no info.settings); train it again")
    net = segmenter_net(info["settings"], raw.get("weights"), path)
    dev = resolve_device(device)
    return Segmenter(net.to(dev).eval(), info, dev)


def is_segmenter_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a segmenter satgan saved (its header, not its name; runs no code)."""
    try:
        raw = read_torch_file(path, "segmenter")
    except SatganError:  # anything unreadable is not a segmenter
        return False
    return isinstance(raw, dict) and raw.get("kind") == KIND


def train_segmenter(cfg: SegmenterConfig, progress: bool = True) -> Segmenter:
    """Train the segmenter ``cfg`` describes on ``cfg.data``'s train split (no cache: see
    :func:`reference_segmenter`). Its ``info`` holds the settings, the data and, where the
    folder has a ``val`` split, the real val tiles' own score (the ceiling of mask fidelity)."""
    root = Path(cfg.data).expanduser().resolve()
    tiles = load_tiles(root, TRAIN, "segmenter", cfg.crop)
    share = building_share(tiles)
    if share < MIN_BUILDING_SHARE:
        raise SatganError(f"{root}: buildings cover {share:.2%} of the train split's pixels; the segmenter needs "
                          f"masks with buildings (at least {MIN_BUILDING_SHARE:.1%}) to learn what one looks like")
    device = resolve_device(cfg.device)
    started = time.perf_counter()
    net = build(cfg).to(device)
    with progress_bar(total=cfg.steps, desc="segmenter", unit="step", disable=not progress) as bar:
        trained = fit(net, [(tiles, i) for i in range(len(tiles))], cfg, cfg.seed, device, bar.update)
    info = {"satgan_version": satgan.__version__, "settings": training_settings(cfg), "key": cache_key(cfg),
            "data": {"root": str(root), "split": TRAIN, "tiles": len(tiles), "building_share": share},
            "trained": {**trained, "seconds": round(time.perf_counter() - started, 1), "device": str(device)}}
    if "val" in load_manifest(root)["splits"]:
        info["val"] = score(net, load_tiles(root, "val", "segmenter", 1), device)
    return Segmenter(net.eval(), info, device)


def reference_segmenter(cfg: SegmenterConfig, progress: bool = True) -> Segmenter:
    """The segmenter of ``cfg``: loaded from the cache when one was trained on the same data
    (the manifest's bytes) with the same settings, else trained and cached. A cache folder
    that cannot be written is passed over with a warning (the segmenter is trained each time)."""
    _, info = load_split(cfg.data, TRAIN)  # a clear error for a folder that is not pretransformed data
    side = min(info["image_shape"][1:3])
    if side < 32:
        raise SatganError(f"{cfg.data}: tiles of {side} px are too small for the reference segmenter (it needs 32 "
                          "px or more); pretransform larger tiles")
    if side < cfg.crop:  # small tiles: the largest crop they allow
        cfg = replace(cfg, crop=side - side % MULTIPLE)
    key = cache_key(cfg)
    data, cache = Path(cfg.data).expanduser().resolve(), cache_folder(cfg).resolve()
    if cache == data or data in cache.parents:  # the data folder may be read-only, and is an input
        raise SatganError(f"--cache {cache_folder(cfg)} lies inside the data folder {data}: outputs must not go "
                          "inside an input; choose a cache folder outside it")
    cached = cache_folder(cfg) / "segmenters" / f"{key[:24]}.pt"
    if cached.is_file():
        try:
            seg = load_segmenter(cached, cfg.device)
            if seg.info.get("key") == key:  # the same data, perhaps a copy elsewhere: name this one
                data = seg.info["data"]
                seg.info["data"] = {**data, "root": str(Path(cfg.data).expanduser().resolve()),
                                    "trained_on": data.get("trained_on", data.get("root"))}
                return seg
        except SatganError:
            pass  # a damaged cache entry is trained again and replaced
    seg = train_segmenter(cfg, progress)
    try:
        seg.save(cached)
    except OSError as exc:
        warnings.warn(f"segmenter not cached: {cached.parent} cannot be written ({exc.strerror}); "
                      "set --cache or $SATGAN_CACHE to a writable folder", SatganWarning, stacklevel=2)
    return seg


# The two judges of mask fidelity (evaluate's mask_iou and mask_iou_2) and the segmenter of the
# alignment loss: three builds and seeds, so that no network taking part in training scores it and no
# model wins by learning one network's blind spots (docs/evaluation.md, "Judges").
JUDGES = {"mask_iou": {}, "mask_iou_2": {"architecture": "dilated", "seed": 1}}
ALIGNMENT = {"architecture": "lite1", "width": 32, "seed": 7, "steps": 1000}
ALIGNMENT_ROLE = "alignment segmenter"  # its entry in a checkpoint's trained_with


def segmenter_from_spec(spec: str | None, data: str, device: str = "auto", progress: bool = True,
                        settings: SegmenterConfig | None = None, option: str = "--segmenter",
                        purpose: str = "mask fidelity", skip: str = "--no-mask-iou") -> Segmenter:
    """``spec``: a saved segmenter file, or a pretransformed folder whose train split trains
    one (cached); None: ``data``'s own train split. ``settings`` other than the data come from
    ``settings`` (default: :class:`SegmenterConfig`'s defaults). ``option``, ``purpose`` and
    ``skip`` word the errors (which option gave it, what it is for, how to do without)."""
    source = Path(spec if spec else data).expanduser()
    if source.is_file():
        return load_segmenter(source, device)
    if not source.is_dir():
        raise SatganError(f"{option} {source}: no such file or folder; give a saved segmenter (.pt) or a "
                          "pretransformed folder with a train split")
    base = settings or SegmenterConfig(data=str(source))
    cfg = replace(base, data=str(source), device=device)
    try:
        return reference_segmenter(cfg, progress)
    except SatganError as exc:
        if spec:
            raise SatganError(f"{purpose}: {exc}; or {skip}") from None
        raise SatganError(f"{purpose}: {exc}; give {option} (a saved segmenter or another "
                          f"pretransformed folder) or {skip}") from None


def judge(name: str, spec: str | None, data: str, device: str = "auto", progress: bool = True) -> Segmenter:
    """The judge ``name`` (a key of :data:`JUDGES`): ``spec`` (a saved segmenter or a folder),
    else trained (cached) on ``data``'s train split with that judge's build and seed."""
    option = "--segmenter" if name == "mask_iou" else "--segmenter-2"
    settings = SegmenterConfig(data=str(data), **JUDGES[name])
    return segmenter_from_spec(spec, data, device, progress, settings, option, skip="skip it with --no-mask-iou")


def alignment_segmenter(spec: str | None, data: str, device: str = "auto", progress: bool = True) -> Segmenter:
    """The segmenter of the alignment loss: ``spec`` (a saved segmenter or a folder), else a
    decoder on frozen EfficientNet-Lite1 features trained (cached) on ``data``'s train split."""
    settings = SegmenterConfig(data=str(data), **ALIGNMENT)
    return segmenter_from_spec(spec, data, device, progress, settings, "loss.segmenter",
                               purpose="the alignment loss (loss.seg_weight)", skip="set loss.seg_weight=0")


def identity(segmenter: Segmenter) -> dict:
    """What names a segmenter in a checkpoint's ``trained_with`` and a report: its cache key
    (data and settings), build and data."""
    info = segmenter.info
    return {"key": info.get("key", ""), "architecture": info["settings"].get("architecture", "unet"),
            "data": info["data"].get("root"), "seed": info["settings"].get("seed")}


def check_independent(judge_name: str, segmenter: Segmenter, models: dict) -> None:
    """Refuse a judge that took part in training one of ``models`` (its alignment loss): a
    network that trained a model cannot be the one that scores it."""
    key = segmenter.info.get("key")
    for name, model in models.items():
        used = (getattr(model, "trained_with", None) or {}).get(ALIGNMENT_ROLE) or {}
        if key and used.get("key") == key:
            raise SatganError(f"{judge_name}: its segmenter ({identity(segmenter)['architecture']}, trained on "
                              f"{used.get('data')}) took part in training {name} (loss.seg_weight): a network that "
                              "trained a model cannot score it; give another segmenter")
