"""Settings of the synthetic-data commands: ``synthesize``, the reference ``segmenter``
and ``segbench``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from satgan import SatganError
from satgan.settings import Device, Settings, device_setting, setting


@dataclass
class SynthesizeConfig(Settings):
    """``satgan synthesize``: a generated image for every mask, written with the masks as a dataset."""

    checkpoint: str = setting(help="a checkpoint (RUN_DIR/checkpoints/last.pt)", positional=True)
    masks: str = setting(help="a folder of masks (or an Inria layout, e.g. satgan forge's OUT)", positional=True)
    out: str = setting(help="the dataset folder to write", positional=True)
    mode: Literal["seamless", "resize"] = setting("seamless", help="whole masks at the training scale, or each "
                                                                 "mask resized to one tile")
    layout: Literal["inria", "paired"] = setting("inria", help="AerialImageDataset/train/{images,gt}/, or "
                                                               "images/ + masks/")
    variants: int = setting(1, ge=1, le=100, help="generations per mask, each with its own seed (they differ "
                                                  "with --dropout, a style code or noise)")
    seed: int = setting(0, ge=0, help="seeds of the variants' dropout, style code and noise")
    dropout: bool = setting(False, help="keep pix2pix's dropout on as noise, seeded per image")
    city: str | None = setting(None, help="a city-conditioned model: draw every mask as this city, or 'random' "
                                          "(each image a city drawn from its seed); default: the city a mask's "
                                          "Inria-style name says")
    scale: float | None = setting(None, gt=0, help="seamless: mask pixels per output pixel (default: the "
                                                   "checkpoint's training scale)")
    batch_size: int = setting(8, ge=1, help="tiles, or training-crop-sized windows, per forward pass")
    device: Device = device_setting()


@dataclass
class SegmenterConfig(Settings):
    """The reference building segmenter (``satgan segmenter``, mask fidelity in ``evaluate``):
    trained from scratch on a pretransformed folder's train split, cached per data and settings."""

    data: str = setting(help="a pretransformed folder whose train split it learns from", positional=True)
    out: str | None = setting(None, help="also save the trained segmenter to this .pt file")
    overwrite: bool = setting(False, help="replace an existing --out that is not a segmenter satgan saved (an "
                                          "input is never replaced)")
    architecture: Literal["unet", "dilated", "lite1"] = setting(
        "unet", help="unet: the reference segmenter (the first judge); dilated: the second judge, built unlike it; "
                     "lite1: a decoder on frozen EfficientNet-Lite1 features (the alignment loss's)")
    width: int = setting(16, ge=4, le=128, help="base width (unet: widths w, 2w, 4w, 8w; dilated: 2w at 1/4 "
                                                "scale; lite1: the decoder's)")
    steps: int = setting(3000, ge=1, help="training steps (on geocompass: 0.30 IoU at 600, 0.34 at 3000, "
                                          "about 5 minutes on 2 cores; docs/RESULTS.md)")
    batch_size: int = setting(16, ge=1, help="random crops per step")
    crop: int = setting(128, ge=32, help="training crop side, a multiple of 16 (flips, turns, colour jitter)")
    lr: float = setting(3e-3, gt=0, help="peak AdamW learning rate (warm-up, then cosine decay to 0)")
    weight_decay: float = setting(1e-4, ge=0, help="AdamW weight decay")
    warmup: float = setting(0.05, ge=0, lt=1, help="share of the steps spent warming the learning rate up")
    jitter: float = setting(0.1, ge=0, le=0.5, help="colour jitter: brightness, contrast and per-channel gain "
                                                   "vary by up to this share")
    seed: int = setting(0, ge=0, help="weights, crops and augmentations")
    cache: str | None = setting(None, help="cache folder (default: $SATGAN_CACHE, else ~/.cache/satgan)")
    device: Device = device_setting()

    def check(self) -> None:
        if self.crop % 16:
            raise SatganError(f"crop={self.crop}: must be a multiple of 16 (the segmenter pools four times)")


@dataclass
class SegbenchConfig(Settings):
    """``satgan segbench``: does synthetic data help a segmentation network? Same budget per arm."""

    real: str = setting(help="a pretransformed folder of real pairs (its train split trains, --test-split scores)",
                        positional=True)
    out: str = setting(help="folder for report.json, report.md and report.png", positional=True)
    synthetic: str | None = setting(None, help="a pretransformed folder of synthetic pairs (its train split)")
    fractions: list[float] = setting(factory=lambda: [0.1, 0.25, 1.0], gt=0, le=1,
                                     help="fractions of the real training tiles, one arm each")
    shares: list[float] = setting(factory=lambda: [0.25, 0.5, 0.75], gt=0, lt=1,
                                  help="shares of synthetic tiles in every batch, one mixing arm each per fraction")
    pretrain: float = setting(0.5, ge=0, lt=1, help="also an arm per fraction that spends this share of the steps "
                                                   "on synthetic tiles alone, then fine-tunes on the real ones "
                                                   "(0: no such arm)")
    filter: float | None = setting(None, gt=0, help="also run every synthetic arm with FreeMask's filter: synthetic "
                                                    "pixels whose loss under the fraction's real-only segmenter "
                                                    "exceeds K times that class's mean loss on its real tiles are "
                                                    "ignored (FreeMask uses about 1.25)")
    synthetic_only: bool = setting(True, help="also an arm of synthetic tiles alone")
    copy_paste: bool = setting(True, help="beside each mixing arm the generator-free baseline synthetic pairs must "
                                          "beat: the same share of copy-paste tiles (buildings of the arm's own "
                                          "real tiles pasted onto others of them)")
    generator: str | None = setting(None, help="the checkpoint that made the synthetic pairs: the report says "
                                               "whether it learnt from the real tiles the arms get and nothing "
                                               "else (no leakage)")
    seeds: int = setting(3, ge=1, le=20, help="seeds per arm (same seeds, same initial weights in every arm)")
    steps: int = setting(400, ge=1, help="training steps per run, the same for every arm")
    batch_size: int = setting(16, ge=1, help="tiles per step")
    crop: int = setting(128, ge=32, help="training crop side, a multiple of 16 (random crops, flips, turns, "
                                         "colour jitter)")
    lr: float = setting(3e-3, gt=0, help="peak AdamW learning rate (warm-up, then cosine decay to 0)")
    ngf: int = setting(16, ge=4, le=128, help="the reference segmenter's base width")
    test: str | None = setting(None, help="score every arm on this pretransformed folder instead (all its tiles, "
                                          "or its --test-split): data neither the generator nor the arms saw")
    test_split: str | None = setting(None, help="the split every arm is scored on (default: the real folder's val; "
                                                "with --test, all of that folder's splits)")
    device: Device = device_setting()

