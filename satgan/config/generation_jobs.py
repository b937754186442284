"""Settings of the commands that run trained checkpoints: ``generate``, ``evaluate`` and
``gallery``, and ``model_spec`` for their ``NAME=PATH`` checkpoints."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from satgan import SatganError
from satgan.settings import Device, Settings, device_setting, setting


@dataclass
class GenerateConfig(Settings):
    """``satgan generate``: images from masks with a trained checkpoint."""

    checkpoint: str = setting(help="a checkpoint (RUN_DIR/checkpoints/last.pt)", positional=True)
    input: str = setting(help="a mask file, a folder of masks, or a pretransformed folder", positional=True)
    out: str = setting(help="output folder")
    mode: Literal["resize", "grid", "seamless"] = setting("seamless", help="how masks become images")
    grid: int = setting(2, ge=1, le=100, help="grid mode: NxN tiles across the shorter side")
    scale: float | None = setting(None, gt=0, help="seamless: mask pixels per output pixel "
                                                   "(default: the checkpoint's training scale)")
    overlap: float = setting(0.25, ge=0, lt=1, help="seamless: least overlap of neighbouring windows (fraction)")
    window: int | None = setting(None, ge=1, help="seamless: window side in output pixels, a multiple of the "
                                                  "generator's input multiple (default: 768 where the scene allows)")
    shared_norm: bool = setting(True, help="seamless: one set of instance-norm statistics for the whole scene, "
                                           "so windows agree (otherwise each window normalises itself)")
    batch_size: int = setting(8, ge=1, help="tiles, or training-crop-sized windows, per forward pass")
    device: Device = device_setting()
    city: str | None = setting(None, help="a city-conditioned model: draw every mask as this city, or 'all' "
                                          "(one output per city, in OUT/CITY/); default: a tile's own city, "
                                          "a mask file's from its Inria-style name (austin12)")
    style_seed: int | None = setting(None, ge=0, help="a model with a style code or noise: draw the code and the "
                                                      "noise from this seed (one code per run; default: the average "
                                                      "style, noise seed 0)")
    truncation: float = setting(1.0, ge=0, le=1, help="a model with a style code: scale the code by this (1: its "
                                                      "full variety; 0: the average style, the noise still "
                                                      "drawn from --style-seed)")
    dropout: bool = setting(False, help="keep pix2pix's dropout on as noise (otherwise deterministic)")
    seed: int = setting(0, ge=0, help="with --dropout")
    sharpen: float | None = setting(None, ge=0, le=4, help="unsharp-mask amount of the output (default: the "
                                                          "checkpoint's model.sharpen; 0: the generator's own output)")
    split: str = setting("val", help="pretransformed input: which split")
    limit: int | None = setting(None, ge=1, help="pretransformed input: at most this many tiles")
    preview_size: int = setting(1024, ge=16, help="seamless: longest side of the JPEG preview")
    overwrite: bool = setting(False, help="replace files of the same names in --out that satgan generate did not "
                              "write")


@dataclass
class EvaluateConfig(Settings):
    """``satgan evaluate``: PSNR, SSIM, FID and KID, per city and overall."""

    out: str = setting(help="the JSON report to write")
    checkpoints: list[str] = setting(factory=list, cli=False, help="checkpoints as PATH or NAME=PATH")
    data: str | None = setting(None, cli=False, help="a pretransformed folder")
    split: str = setting("val", help="which split to score")
    limit: int | None = setting(None, ge=1, help="at most this many tiles (the first ones)")
    baselines: list[Literal["flat", "untrained"]] = setting(
        factory=list, help="comma-separated: flat (two mean colours), untrained")
    generated: str | None = setting(None, help="folder mode: generated images, matched by name with --real")
    real: str | None = setting(None, help="folder mode: the real images")
    inception: str | None = setting(None, help="path to the FID Inception file (default_1.pt); default: found")
    kid_subsets: int = setting(100, ge=1, help="KID subsets")
    sharpen: float | None = setting(None, ge=0, le=4, help="unsharp-mask amount for every checkpoint (default: "
                                                          "each checkpoint's model.sharpen)")
    mask_iou: bool = setting(True, help="mask fidelity: IoU and F1 between each input mask and the buildings two "
                                        "judges (the reference segmenter and a second one built unlike it) find in "
                                        "the image (and in the real one: the ceiling)")
    segmenter: str | None = setting(None, help="the reference segmenter: a saved one (.pt) or a pretransformed "
                                               "folder whose train split trains one, cached (default: DATA's own)")
    segmenter_2: str | None = setting(None, help="the second judge (mask_iou_2): a saved segmenter (.pt) or a "
                                                 "pretransformed folder to train one on (default: DATA's own, a "
                                                 "dilated residual network of another seed)")
    batch_size: int = setting(16, ge=1, help="tiles per forward pass")
    device: Device = device_setting()
    overwrite: bool = setting(False, help="replace an existing --out that is not a report satgan evaluate wrote "
                                          "(an input is never replaced)")

    def check(self) -> None:
        if bool(self.generated) != bool(self.real):
            raise SatganError("folder mode needs both --generated and --real")
        if self.generated and (self.checkpoints or self.data):
            raise SatganError("give either checkpoints and DATA, or --generated and --real folders, not both")
        if not self.generated:
            if not self.data:
                raise SatganError("give a pretransformed DATA folder (or --generated and --real folders)")
            if not self.checkpoints and not self.baselines:
                raise SatganError("nothing to evaluate: give checkpoints and/or --baselines flat")
            if "untrained" in self.baselines and not self.checkpoints:
                raise SatganError("the untrained baseline takes its architecture from a checkpoint: give one")


@dataclass
class GalleryConfig(Settings):
    """``satgan gallery``: mask | generated (per model) | real, as figures, files and HTML."""

    out: str = setting(help="output folder (gallery.html, figures/, files/)")
    data: str = setting(cli=False, help="a pretransformed folder")
    checkpoints: list[str] = setting(factory=list, cli=False, help="checkpoints as PATH or NAME=PATH")
    split: str = setting("val", help="which split")
    per_city: int = setting(2, ge=0, help="random samples per city")
    indices: list[int] | None = setting(None, ge=0, help="comma-separated sample indices instead of random ones")
    scenes: int = setting(1, ge=0, help="whole scenes per city, grid tiles reassembled")
    style_masks: int = setting(2, ge=0, help="city-conditioned models: samples drawn as every city")
    variations: int = setting(4, ge=0, help="models with a style code or noise: samples per mask, from seeds 0, 1, ...")
    truncation: float = setting(1.0, ge=0, le=1, help="models with a style code: scale the code by this (1: its "
                                                      "full variety; 0: the average style, only the noise varies)")
    seed: int = setting(0, ge=0, help="which random samples")
    mask_iou: bool = setting(True, help="each tile's mask fidelity beside it (see satgan evaluate --mask-iou)")
    segmenter: str | None = setting(None, help="the reference segmenter: a saved one (.pt) or a pretransformed "
                                               "folder whose train split trains one, cached (default: DATA's own)")
    batch_size: int = setting(16, ge=1, help="tiles per forward pass")
    device: Device = device_setting()

    def check(self) -> None:
        if not self.checkpoints:
            raise SatganError("a gallery needs at least one checkpoint")
        if not self.indices and self.per_city == 0:
            raise SatganError("no samples chosen: give --indices or a --per-city of 1 or more")


_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def model_spec(spec: str) -> tuple[str, str]:
    """A checkpoint given as ``NAME=PATH`` or ``PATH``, as (name, path). A bare path is
    named after its run folder. The name becomes a folder and a column title, so it must
    be one plain path component (letters, digits, ``_.+-``)."""
    name, sep, path = spec.partition("=")
    if not sep or Path(spec).expanduser().exists():
        p = Path(spec)
        name, path = (p.parent.parent.name if p.parent.name == "checkpoints" else p.stem), spec
    if not _MODEL_NAME.fullmatch(name) or name in (".", ".."):
        raise SatganError(f"model name {name!r} (from {spec!r}): use letters, digits and _.+- only, "
                          "as in NAME=PATH, e.g. base=runs/p2p/checkpoints/last.pt")
    if not path:
        raise SatganError(f"{spec!r}: no checkpoint path after the name")
    return name, path

