"""The reference building segmenter: the judge of mask fidelity, and segbench's network.

A light U-Net (:class:`~satgan.models.segmenter.BuildingSegmenter`) trained from scratch
on a pretransformed folder's train split: random crops with flips, turns and colour
jitter, BCE + soft Dice, AdamW with a warm-up and a cosine decay. :func:`reference_segmenter`
trains it once per data folder and settings and keeps it in a cache folder (key: the
manifest's SHA-256 and the training settings), never inside the data folder, which may be
read-only. Mask fidelity (:func:`pixel_counts`, :func:`fidelity`) is the IoU and F1 between
an input mask and what the segmenter finds in an image, pooled over pixels.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import satgan
from satgan.atomic import atomic_path
from satgan.config import SegmenterConfig, to_dict
from satgan.data.arrays import load_manifest, load_split, open_arrays
from satgan.errors import SatganError, SatganWarning
from satgan.models.segmenter import MULTIPLE, BuildingSegmenter
from satgan.progress import progress_bar
from satgan.runtime import resolve_device

TRAIN = "train"
KIND = "satgan-segmenter"
FORMAT = 1
MIN_BUILDING_SHARE = 0.005  # below this the masks hold too few buildings to learn what one looks like
# settings that do not change what is learnt: left out of the cache key
NOT_IN_KEY = ("data", "out", "cache", "device")


# -- the tiles ------------------------------------------------------------------------------------
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


def load_tiles(root: str | Path, split: str, what: str, crop: int) -> Tiles:
    """A split of a pretransformed folder, checked: it exists, has tiles, and they are at
    least ``crop`` pixels. ``what`` (``real``, ``synthetic``, ``test``) starts the error messages."""
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
                          "lower the crop or pretransform larger tiles")
    return tiles


def building_share(tiles: Tiles) -> float:
    """The share of the split's pixels that are buildings (coverage of half or more)."""
    total = built = 0
    for start in range(0, len(tiles), 256):
        masks = np.asarray(tiles.masks[start:start + 256])
        total, built = total + masks.size, built + int(np.count_nonzero(masks >= 128))
    return built / max(total, 1)


# -- one training step's data ---------------------------------------------------------------------
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
    # np.array copies: torch wants writable memory, not a read-only memory map
    return torch.from_numpy(np.array(images)).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1


def to_target(masks: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 coverage ``(B, H, W)`` as a 0/1 float target ``(B, 1, H, W)``: a building where half covered."""
    return (torch.from_numpy(np.array(masks)).to(device) >= 128).float().unsqueeze(1)


def colour_jitter(x: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """Each image's brightness, contrast and per-channel gain moved by up to ``strength``
    (inputs in [-1, 1]): a segmenter that judges generated images must not hang on one palette."""
    if strength <= 0:
        return x
    b = len(x)
    shift = torch.from_numpy(rng.uniform(-strength, strength, (b, 1, 1, 1))).float().to(x.device) * 2
    contrast = torch.from_numpy(rng.uniform(1 - strength, 1 + strength, (b, 1, 1, 1))).float().to(x.device)
    gain = torch.from_numpy(rng.uniform(1 - strength / 2, 1 + strength / 2, (b, 3, 1, 1))).float().to(x.device)
    mean = x.mean((1, 2, 3), keepdim=True)
    return (((x - mean) * contrast + mean) * gain + shift).clamp(-1, 1)


def seg_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE on the logits plus soft Dice over the whole batch (smoothed by 1, so a batch
    without buildings still has a gradient and no division by 0)."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return bce + dice


def lr_factor(step: int, steps: int, warmup: float) -> float:
    """The learning rate's share of its peak at ``step``: linear warm-up over ``warmup`` of
    the steps, then a cosine down to 0 at the last step."""
    ramp = max(1, round(warmup * steps))
    if step < ramp:
        return (step + 1) / ramp
    return 0.5 * (1 + math.cos(math.pi * (step - ramp) / max(1, steps - ramp)))


# -- training and scoring -----------------------------------------------------------------------
def build(cfg: SegmenterConfig, seed: int | None = None) -> nn.Module:
    """The untrained segmenter of ``seed`` (default ``cfg.seed``), built on the CPU so its
    weights are the same whatever device trains it."""
    torch.manual_seed(cfg.seed if seed is None else seed)
    return BuildingSegmenter(cfg.width)


def fit(net: nn.Module, pool: list[tuple[Tiles, int]], cfg: SegmenterConfig, seed: int, device: torch.device,
        on_step=None) -> dict:
    """Train ``net`` (on ``device``) in place for ``cfg.steps`` steps of ``cfg.batch_size``
    crops drawn from ``pool``. Returns the steps and samples it saw and the mean loss of the
    last tenth of the steps. ``on_step()``, if given, is called after each step (progress)."""
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.steps, cfg.warmup))
    rng = np.random.default_rng([seed, 2])
    order = batch_order(len(pool), cfg.steps, cfg.batch_size, rng)
    tail = max(1, cfg.steps // 10)
    tail_loss = torch.zeros((), device=device)
    net.train()
    for step in range(cfg.steps):
        images, masks = random_crops(pool, order[step], cfg.crop, rng)
        x = colour_jitter(to_input(images, device), cfg.jitter, rng)
        loss = seg_loss(net(x), to_target(masks, device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        if step >= cfg.steps - tail:
            tail_loss += loss.detach()
        if on_step is not None:
            on_step()
    return {"steps": cfg.steps, "samples_seen": cfg.steps * cfg.batch_size, "train_loss": tail_loss.item() / tail}


@torch.inference_mode()
def predict(net: nn.Module, images: np.ndarray, device: torch.device, batch_size: int = 16) -> np.ndarray:
    """Buildings ``(N, H, W)`` bool that ``net`` (eval mode) finds in uint8 ``images`` (N, H, W, 3):
    where its logit is > 0. Whole images, reflected at the bottom and right up to a size it takes."""
    net.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = to_input(np.asarray(images[start:start + batch_size]), device)
        h, w = x.shape[-2:]
        mode = "reflect" if min(h, w) > MULTIPLE else "replicate"
        x = F.pad(x, (0, -w % MULTIPLE, 0, -h % MULTIPLE), mode=mode)
        out.append((net(x)[:, 0, :h, :w] > 0).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, *images.shape[1:3]), bool)


def pixel_counts(predicted: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per image ``(N, 3)`` int64: true positives, false positives, false negatives of the
    ``predicted`` buildings (bool) against uint8 coverage ``masks`` (a building where >= 128)."""
    truth = np.asarray(masks) >= 128
    predicted = np.asarray(predicted, bool)
    axes = tuple(range(1, truth.ndim))
    return np.stack([(predicted & truth).sum(axes), (predicted & ~truth).sum(axes),
                     (~predicted & truth).sum(axes)], 1).astype(np.int64)


def fidelity(counts: np.ndarray) -> dict:
    """IoU = TP / (TP + FP + FN) and F1 = 2TP / (2TP + FP + FN) of counts pooled over every
    pixel of every image (not averaged per image). No building in truth or prediction: both 1."""
    tp, fp, fn = (int(v) for v in np.asarray(counts, np.int64).reshape(-1, 3).sum(0))
    if tp + fp + fn == 0:
        return {"iou": 1.0, "f1": 1.0, "tp": 0, "fp": 0, "fn": 0}
    return {"iou": tp / (tp + fp + fn), "f1": 2 * tp / (2 * tp + fp + fn), "tp": tp, "fp": fp, "fn": fn}


def score(net: nn.Module, tiles: Tiles | list[Tiles], device: torch.device, batch_size: int = 16) -> dict:
    """:func:`fidelity` of ``net`` on every whole tile of ``tiles`` (one split or several, pooled)."""
    counts = [pixel_counts(predict(net, np.asarray(t.images[s:s + batch_size]), device, batch_size),
                           t.masks[s:s + batch_size])
              for t in (tiles if isinstance(tiles, list) else [tiles]) for s in range(0, len(t), batch_size)]
    return fidelity(np.concatenate(counts))


# -- the reference segmenter: trained once, cached, loaded ----------------------------------------
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
        with atomic_path(path) as tmp:
            torch.save({"kind": KIND, "format": FORMAT, "info": self.info, "weights": state}, tmp)
        return path


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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one message
        raise SatganError(f"{path}: not a readable segmenter ({type(exc).__name__}); the file is truncated, "
                          "corrupt or not a satgan segmenter") from None
    if not isinstance(raw, dict) or raw.get("kind") != KIND:
        raise SatganError(f"{path}: not a satgan segmenter (a generator checkpoint? give a file saved by "
                          "satgan segmenter --out, or a pretransformed folder to train one)")
    if raw.get("format") != FORMAT:
        raise SatganError(f"{path}: segmenter format {raw.get('format')!r}; this satgan reads format {FORMAT}: "
                          "train it again")
    try:
        info = raw["info"]
        net = BuildingSegmenter(int(info["settings"]["width"]))
        net.load_state_dict(raw["weights"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise SatganError(f"{path}: a damaged segmenter ({type(exc).__name__}); train it again") from None
    dev = resolve_device(device)
    return Segmenter(net.to(dev).eval(), info, dev)


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
                          "px or more); pretransform larger tiles, or skip mask fidelity (--no-mask-iou)")
    if side < cfg.crop:  # small tiles: the largest crop they allow
        cfg = replace(cfg, crop=side - side % MULTIPLE)
    key = cache_key(cfg)
    cached = cache_folder(cfg) / "segmenters" / f"{key[:24]}.pt"
    if cached.is_file():
        try:
            seg = load_segmenter(cached, cfg.device)
            if seg.info.get("key") == key:
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


def segmenter_from_spec(spec: str | None, data: str, device: str = "auto", progress: bool = True,
                        settings: SegmenterConfig | None = None) -> Segmenter:
    """``spec``: a saved segmenter file, or a pretransformed folder whose train split trains
    one (cached); None: ``data``'s own train split. ``settings`` other than the data come from
    ``settings`` (default: :class:`SegmenterConfig`'s defaults)."""
    source = Path(spec if spec else data).expanduser()
    if source.is_file():
        return load_segmenter(source, device)
    if not source.is_dir():
        raise SatganError(f"--segmenter {source}: no such file or folder; give a saved segmenter (.pt) or a "
                          "pretransformed folder with a train split")
    base = settings or SegmenterConfig(data=str(source))
    cfg = replace(base, data=str(source), device=device)
    try:
        return reference_segmenter(cfg, progress)
    except SatganError as exc:
        if spec:
            raise
        raise SatganError(f"mask fidelity: {exc}; give --segmenter (a saved segmenter or another "
                          "pretransformed folder) or --no-mask-iou") from None
