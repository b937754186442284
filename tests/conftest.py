"""Shared fixtures: small synthetic Inria data, hand-made paired folders, the real folders."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from satgan.config import SynthConfig
from satgan.data.synthetic import synthesize_inria

REPO = Path(__file__).resolve().parents[1]
# The real paired folders sit beside the project (../shared/data), or where SATGAN_SHARED_DATA says.
SHARED_DATA = Path(os.environ.get("SATGAN_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory) -> Path:
    """Segmenters trained by tests are cached in a folder of the test session, never the user's."""
    folder = tmp_path_factory.mktemp("cache")
    saved = os.environ.get("SATGAN_CACHE")
    os.environ["SATGAN_CACHE"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("SATGAN_CACHE", None)
    else:
        os.environ["SATGAN_CACHE"] = saved


@pytest.fixture(scope="session")
def inria_root(tmp_path_factory) -> Path:
    """A small synthetic Inria download: 5 cities x 6 pairs of 320 px, plus test images."""
    out = tmp_path_factory.mktemp("synth")
    return synthesize_inria(SynthConfig(out=str(out), per_city=6, size=320, test_per_city=1))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real paired data not found at {SHARED_DATA}")
    return SHARED_DATA


def write_pair_folder(root: Path, fractions: list[float], size: tuple[int, int] = (100, 120)) -> Path:
    """A paired folder whose masks have exactly the given building fractions (PNG, 0/255)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    h, w = size
    rng = np.random.default_rng(0)
    for i, fraction in enumerate(fractions):
        mask = np.zeros(h * w, np.uint8)
        mask[: round(fraction * h * w)] = 255
        Image.fromarray(mask.reshape(h, w)).save(root / "masks" / f"tile{i}.png")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / "images" / f"tile{i}.png")
    return root


@pytest.fixture(scope="session")
def inria_arrays(inria_root, tmp_path_factory) -> Path:
    """``inria_root`` pretransformed: 2x2 grids of 160 px tiles resized to 72 px."""
    from satgan.config import PretransformConfig
    from satgan.data.pretransform import pretransform

    out = tmp_path_factory.mktemp("arrays") / "grid2-72"
    pretransform(PretransformConfig(source=str(inria_root), out=str(out), grid=2, size=72, crop=64))
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(inria_arrays, tmp_path_factory) -> Path:
    """A checkpoint of a tiny generator (crop 64: a U-Net of depth 6, with dropout, no noise: the tests
    that use it are about generating from a mask alone) trained one epoch with quick's
    discriminator, without the alignment loss (its segmenter would take minutes)."""
    from satgan.config import apply_overrides, preset
    from satgan.training.trainer import train

    run = tmp_path_factory.mktemp("run") / "tiny"
    cfg = apply_overrides(preset("quick"), ["data.crop=64", "model.ngf=8", "model.ndf=4", "train.epochs=1",
                                            "train.batch_size=4", "train.val_samples=2", "train.workers=0",
                                            "model.noise=0", "loss.seg_weight=0"])
    train(inria_arrays, run, cfg)
    return run / "checkpoints" / "last.pt"


@pytest.fixture(scope="session")
def styled_checkpoint(inria_arrays, tmp_path_factory) -> Path:
    """One epoch of a city-conditioned generator with a style code, noise and mode seeking."""
    from satgan.config import apply_overrides, preset
    from satgan.training.trainer import train

    run = tmp_path_factory.mktemp("styled") / "run"
    cfg = apply_overrides(preset("quick"), ["data.crop=64", "model.ngf=8", "model.ndf=4", "train.batch_size=4",
                                            "train.val_samples=2", "train.workers=0", "train.val_kid=false",
                                            "train.epochs=1", "model.condition=city", "model.latent=4",
                                            "loss.mode_seeking=1", "model.noise=1",
                                            "loss.seg_weight=0"])
    train(inria_arrays, run, cfg)
    return run / "checkpoints" / "last.pt"


@pytest.fixture(scope="session")
def tiny_segmenter(inria_arrays, tmp_path_factory) -> Path:
    """A reference segmenter of width 4 trained 3 steps on ``inria_arrays``, saved as a file."""
    from satgan.config import SegmenterConfig
    from satgan.segmentation.segmenters import train_segmenter

    cfg = SegmenterConfig(data=str(inria_arrays), width=4, steps=3, batch_size=2, crop=32, device="cpu")
    return train_segmenter(cfg, progress=False).save(tmp_path_factory.mktemp("segmenter") / "tiny.pt")


@pytest.fixture(scope="session")
def tiny_judge_2(inria_arrays, tmp_path_factory) -> Path:
    """A second judge (the dilated network, seed 1) of width 4 trained 3 steps, saved as a file."""
    from satgan.config import SegmenterConfig
    from satgan.segmentation.segmenters import JUDGES, train_segmenter

    cfg = SegmenterConfig(data=str(inria_arrays), width=4, steps=3, batch_size=2, crop=32, device="cpu",
                          **JUDGES["mask_iou_2"])
    return train_segmenter(cfg, progress=False).save(tmp_path_factory.mktemp("judge2") / "tiny2.pt")


def fails(capsys, argv: list, culprit: str) -> str:
    """Run ``satgan argv``; it must exit 2 with one error line matching ``culprit``, no traceback."""
    from satgan.cli import main

    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse
        rc = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("satgan: error:")]
    assert rc == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    assert re.search(culprit, lines[0]), lines[0]
    return lines[0]
