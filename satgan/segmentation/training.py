"""Training and scoring building segmenters: the judges of mask fidelity, segbench's network
and the alignment loss's segmenter.

A network of :mod:`satgan.models.segmenter` (the light U-Net by default) trained on tiles
of pretransformed folders: random crops with flips, turns and colour jitter,
BCE + soft Dice, AdamW with a warm-up and a cosine decay. Mask fidelity
(:func:`pixel_counts`, :func:`fidelity`) is the IoU and F1 between an input mask and what
the segmenter finds in an image, pooled over pixels. The cached reference segmenter is
:mod:`satgan.segmentation.segmenters`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from satgan import SatganError
from satgan.config import SegmenterConfig
from satgan.data.arrays import load_split, open_arrays
from satgan.models.segmenter import MULTIPLE, NETWORKS, segmenter_network
from satgan.models.weights_files import check_finite, state_dict_of

TRAIN = "train"


# -- the tiles ------------------------------------------------------------------------------------
@dataclass
class Tiles:
    """One split of a pretransformed folder: ``images`` (N, S, S, 3) and ``masks`` (N, S, S)
    uint8 coverage, memory-mapped (the OS keeps the pages cached once read). ``ignore``
    (N, S, S) bool, where set, marks pixels the loss leaves out (filtered synthetic tiles)."""

    root: Path
    split: str
    images: np.ndarray
    masks: np.ndarray
    ignore: np.ndarray | None = None

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


# -- a saved segmenter's network ------------------------------------------------------------------
# a state-dict key each architecture has (a file of another network is named as such)
SEGMENTER_KEYS = {"unet": "down.0.0.weight, down.0.1.weight, head.weight",
                  "dilated": "stem.0.weight, blocks.0.body.0.weight, head.weight",
                  "lite1": "encoder.stem.0.weight, lateral.0.weight, head.weight"}
WIDTHS = next((f.metadata["ge"], f.metadata["le"]) for f in fields(SegmenterConfig) if f.name == "width")


def segmenter_net(settings: dict, weights: object, path: str | Path) -> nn.Module:
    """The network a segmenter file at ``path`` describes: its ``settings`` (architecture,
    width; files from before the architecture setting are U-Nets) and its ``weights``,
    checked (a width in range, a state dict of this network's tensors, no NaN), or one
    :class:`SatganError` naming the file."""
    expected = "a satgan segmenter"
    width, architecture = settings.get("width"), settings.get("architecture", "unet")
    if not isinstance(width, int) or isinstance(width, bool) or not WIDTHS[0] <= width <= WIDTHS[1]:
        raise SatganError(f"{path}: not {expected}: its settings.width must be an integer from {WIDTHS[0]} to "
                          f"{WIDTHS[1]}, got {width!r:.40}")
    if architecture not in NETWORKS:
        raise SatganError(f"{path}: not {expected}: its settings.architecture is {architecture!r:.40}; this satgan "
                          f"builds {', '.join(NETWORKS)}")
    weights = state_dict_of(weights, path, expected, SEGMENTER_KEYS[architecture])
    net = NETWORKS[architecture](width)  # lite1's encoder weights come from the file, not the package
    mine = net.state_dict()
    missing = [k for k in mine if k not in weights]
    wrong = [k for k in mine if k in weights and weights[k].shape != mine[k].shape]
    if missing or wrong:
        detail = (f"no {', '.join(missing[:3])}" if missing else
                  f"{wrong[0]} has shape {tuple(weights[wrong[0]].shape)} where width {width} needs "
                  f"{tuple(mine[wrong[0]].shape)}")
        raise SatganError(f"{path}: a damaged segmenter ({detail}); train it again")
    check_finite(weights, path, "tensor", "the file is damaged; train it again")
    net.load_state_dict({k: weights[k] for k in mine})
    return net


# -- one training step's data ---------------------------------------------------------------------
def batch_order(pool: int, steps: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """``(steps, batch_size)`` positions in a pool of ``pool`` tiles: shuffled passes over the
    pool one after another, so every tile is seen about equally often."""
    need = steps * batch_size
    passes = [rng.permutation(pool) for _ in range(-(-need // pool))]
    return np.concatenate(passes)[:need].reshape(steps, batch_size)


def random_crops(pool: list[tuple[Tiles, int]], positions: np.ndarray, crop: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Images ``(B, crop, crop, 3)`` and masks ``(B, crop, crop)`` uint8: a random crop of each
    tile, flipped left-right half the time and turned by a random multiple of 90 degrees
    (image and mask alike); and the pixels the loss keeps ``(B, crop, crop)`` bool, cut the
    same way from the tiles' ``ignore`` maps (None when no tile of the batch has one)."""
    images, masks, keep = [], [], []
    for p in positions:
        tiles, i = pool[p]
        y = rng.integers(0, tiles.images.shape[1] - crop + 1)
        x = rng.integers(0, tiles.images.shape[2] - crop + 1)
        window = (i, slice(y, y + crop), slice(x, x + crop))
        image, mask = tiles.images[window], tiles.masks[window]
        kept = ~tiles.ignore[window] if tiles.ignore is not None else None
        flip, turns = rng.random() < 0.5, int(rng.integers(4))
        for out, a in ((images, image), (masks, mask), (keep, kept)):
            if a is not None:
                out.append(np.rot90(a[:, ::-1] if flip else a, turns))
            else:  # a tile without an ignore map keeps every pixel
                out.append(np.ones((crop, crop), bool))
    filtered = any(pool[p][0].ignore is not None for p in positions)
    return np.stack(images), np.stack(masks), np.stack(keep) if filtered else None


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


def seg_loss(logits: torch.Tensor, target: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """BCE on the logits plus soft Dice over the whole batch (smoothed by 1, so a batch
    without buildings still has a gradient and no division by 0). With ``keep`` (0/1, the
    target's shape) both count only the kept pixels."""
    p = torch.sigmoid(logits)
    if keep is None:
        bce = F.binary_cross_entropy_with_logits(logits, target)
    else:
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        bce = (per_pixel * keep).sum() / keep.sum().clamp(min=1)
        p, target = p * keep, target * keep
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return bce + dice


def whole_logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net``'s logits for whole images ``x`` of any size: reflected at the bottom and right
    up to a size it takes, the padding cut off again."""
    h, w = x.shape[-2:]
    mode = "reflect" if min(h, w) > MULTIPLE else "replicate"
    return net(F.pad(x, (0, -w % MULTIPLE, 0, -h % MULTIPLE), mode=mode))[:, :, :h, :w]


def pixel_losses(net: nn.Module, tiles: Tiles, indices: np.ndarray, device: torch.device,
                 batch_size: int = 16) -> np.ndarray:
    """Per-pixel BCE ``(len(indices), H, W)`` float32 of ``net`` (eval mode) on whole tiles:
    how strongly it disagrees with each pixel's label."""
    net.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(indices), batch_size):
            rows = np.asarray(indices[start:start + batch_size])
            logits = whole_logits(net, to_input(tiles.images[rows], device))
            loss = F.binary_cross_entropy_with_logits(logits, to_target(tiles.masks[rows], device), reduction="none")
            out.append(loss[:, 0].cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, *tiles.masks.shape[1:]), np.float32)


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
    return segmenter_network(cfg.architecture, cfg.width)


def phase_lr_factor(step: int, phases: list[int], warmup: float) -> float:
    """:func:`lr_factor` restarted at the start of each phase (``phases``: their step counts)."""
    for length in phases:
        if step < length:
            return lr_factor(step, length, warmup)
        step -= length
    return 0.0


def fit(net: nn.Module, pool: list[tuple[Tiles, int]], cfg: SegmenterConfig, seed: int, device: torch.device,
        on_step=None, order: np.ndarray | None = None, phases: list[int] | None = None) -> dict:
    """Train ``net`` (on ``device``) in place for ``cfg.steps`` steps of ``cfg.batch_size``
    crops drawn from ``pool``: by default shuffled passes over it, else ``order`` (``(steps,
    batch)`` positions in ``pool``). ``phases`` (step counts adding up to ``cfg.steps``)
    restart the warm-up and cosine decay at each phase (pre-training, then fine-tuning).
    Returns the steps and samples it saw and the mean loss of the last tenth of the steps.
    ``on_step()``, if given, is called after each step (progress)."""
    phases = phases or [cfg.steps]
    if sum(phases) != cfg.steps:
        raise ValueError(f"phases {phases} do not add up to {cfg.steps} steps")
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: phase_lr_factor(s, phases, cfg.warmup))
    rng = np.random.default_rng([seed, 2])
    if order is None:
        order = batch_order(len(pool), cfg.steps, cfg.batch_size, rng)
    tail = max(1, cfg.steps // 10)
    tail_loss = torch.zeros((), device=device)
    net.train()
    for step in range(cfg.steps):
        images, masks, keep = random_crops(pool, order[step], cfg.crop, rng)
        x = colour_jitter(to_input(images, device), cfg.jitter, rng)
        kept = torch.from_numpy(keep).to(device).unsqueeze(1).float() if keep is not None else None
        loss = seg_loss(net(x), to_target(masks, device), kept)
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
    where its logit is > 0 (:func:`whole_logits`)."""
    net.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = to_input(np.asarray(images[start:start + batch_size]), device)
        out.append((whole_logits(net, x)[:, 0] > 0).cpu().numpy())
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
