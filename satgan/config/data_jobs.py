"""Settings of the data commands: ``synth``, ``pretransform``, ``forge`` and ``subset``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from satgan import SatganError
from satgan.settings import Settings, setting

INRIA_CITIES = ("austin", "chicago", "kitsap", "tyrol-w", "vienna")


@dataclass
class SynthConfig(Settings):
    """``satgan synth``: a synthetic dataset in the Inria layout."""

    out: str = setting(help="folder to write AerialImageDataset/ into", positional=True)
    cities: list[str] = setting(factory=lambda: list(INRIA_CITIES), help="comma-separated cities")
    per_city: int = setting(8, ge=1, help="training pairs per city (images 1-5 form the val split)")
    test_per_city: int = setting(1, ge=0, help="mask-less test images per Inria test city")
    size: int = setting(5000, ge=64, le=20000, help="pixels per side (Inria: 5000)")
    seed: int = setting(0, ge=0, help="the same seed gives the same bytes")
    workers: int = setting(1, ge=1, help="processes rendering in parallel")
    overwrite: bool = setting(False, help="replace files of the same names that satgan synth did not write")

    def check(self) -> None:
        if not self.cities:
            raise SatganError("SynthConfig.cities: give at least one city")


@dataclass
class PretransformConfig(Settings):
    """``satgan pretransform``: cut pairs into tiles and store them as training arrays."""

    source: str = setting(help="Inria AerialImageDataset (or its parent), or a paired folder", positional=True)
    out: str = setting(help="output folder", positional=True)
    grid: int = setting(1, ge=1, le=100, help="NxN tiles per image: 1 low, 2 mid, 5 high (1000 px Inria tiles)")
    size: int = setting(286, ge=8, le=8192, help="tile side after resizing, pixels")
    min_density: float = setting(0.0, ge=0, le=1, help="drop tiles with a smaller building fraction (0-1)")
    val: list[str] | None = setting(None, help="comma-separated stems or globs forming the val split "
                                               "(default: the layout's own)")
    crop: int = setting(256, ge=8, help="the training crop the tiles must allow")
    workers: int = setting(1, ge=1, help="processes reading files in parallel")
    skip_unpaired: bool = setting(False, help="leave out images without masks instead of stopping")
    labels: str | None = setting(None, help="each pair's style label (its city): a CSV of stem,label rows, or a "
                                            "regex on the image stem whose group 'label' (else its first group, "
                                            "else the match) is the label (default: the Inria city, or the "
                                            "paired folder's name)")

    def check(self) -> None:
        if self.labels and not self.labels.lower().endswith(".csv"):
            try:
                re.compile(self.labels)
            except re.error as exc:
                raise SatganError(f"labels: {self.labels!r} is not a regular expression ({exc}), "
                                  "nor a .csv file of stem,label rows") from None
    overwrite: bool = setting(False, help="replace an output made with other settings")


@dataclass
class ForgeConfig(Settings):
    """``satgan forge``: new building masks, as an Inria-layout mask folder."""

    source: str = setting(help="procedural: cities (comma-separated, or 'all'); rearrange/edit: a mask folder "
                               "or a dataset (Inria layout, paired folders)", positional=True)
    out: str = setting(help="folder to write AerialImageDataset/train/gt/ and forge.json into", positional=True)
    method: Literal["procedural", "rearrange", "edit"] = setting("procedural", help="how masks are made")
    count: int = setting(10, ge=1, le=100000, help="masks to forge")
    size: int = setting(1000, ge=64, le=20000, help="side of each mask in pixels (rearrange/edit: at most the "
                                                   "source masks' side)")
    seed: int = setting(0, ge=0, help="the same seed gives the same bytes")
    strength: float = setting(0.5, ge=0, le=1, help="edit: how much each mask is changed (0: not at all)")
    split: str = setting("train", help="rearrange/edit: which split of a dataset the source masks come from")
    overwrite: bool = setting(False, help="replace an earlier forge in OUT")


@dataclass
class SubsetConfig(Settings):
    """``satgan subset``: a pretransformed folder with N tiles of another's train split (and its other splits)."""

    source: str = setting(help="a pretransformed folder", positional=True)
    out: str = setting(help="the folder to write", positional=True)
    count: int = setting(help="train tiles to keep (the first of a seeded permutation, as segbench draws real "
                              "subsets)", ge=1)
    seed: int = setting(0, ge=0, help="which tiles: the same seed gives the same tiles")
    overwrite: bool = setting(False, help="replace an earlier pretransformed folder in OUT")

