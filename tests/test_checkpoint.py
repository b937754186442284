"""Checkpoints written by earlier versions load, generate the same images and resume;
settings that moved are read from old configs and named when given the old way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from satgan import SatganError
from satgan.checkpoint import load_checkpoint
from satgan.config import apply_overrides, make_config, preset
from satgan.generation.loading import load_generator
from satgan.models.discriminators.oasis import OasisSettings
from satgan.models.discriminators.patch import PatchSettings
from satgan.models.discriminators.projected import ProjectedSettings
from satgan.models.discriminators.projected_seg import ProjectedSegSettings
from satgan.training.trainer import train

# Written by commit aed7393 (expected.json says so): tiny runs of each discriminator kind,
# with the images they drew for one mask.
OLD = Path(__file__).parent / "fixtures" / "checkpoints"


def _mask() -> np.ndarray:
    mask = np.zeros((64, 96), bool)
    mask[10:30, 20:60] = True
    mask[40:60, 5:25] = True
    return mask


@pytest.mark.parametrize("name", ["patch", "projected", "oasis"])
def test_old_checkpoints_generate_the_images_they_generated(name):
    expected = json.loads((OLD / "expected.json").read_text())["images"][name]
    gen = load_generator(OLD / f"{name}.pt", device="cpu")
    if expected["city"]:
        gen = gen.styled(expected["city"], seed=expected["seed"])
    image = gen(_mask()[None])[0].astype(int)
    then = np.asarray(Image.open(OLD / f"{name}.png")).astype(int)
    assert image.shape == then.shape and np.abs(image - then).max() <= 1


def test_old_checkpoints_have_their_discriminator_settings_where_they_are_now():
    settings = {name: load_checkpoint(OLD / f"{name}.pt").config.discriminator
                for name in ("patch", "projected", "oasis")}
    assert settings == {"patch": PatchSettings(layers=2, scales=2, spectral_norm=True),
                        "projected": ProjectedSettings(), "oasis": OasisSettings(levels=2)}


def test_an_old_checkpoint_resumes(inria_arrays, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(OLD / "patch.pt", run / "checkpoints" / "last.pt")
    old = load_checkpoint(run / "checkpoints" / "last.pt")
    with pytest.warns(UserWarning, match="trained on other data"):
        train(inria_arrays, run, apply_overrides(old.config, ["train.epochs=2"]), resume="auto")
    resumed = load_checkpoint(run / "checkpoints" / "last.pt")
    assert resumed.training_state()["epoch"] == 2
    assert resumed.config.discriminator == old.config.discriminator


def test_moved_settings_are_read_from_old_files_and_named_on_the_command_line(tmp_path):
    old_run = tmp_path / "config.json"
    old_run.write_text(json.dumps({"model": {"discriminator": "patch", "num_d": 2, "d_layers": 2},
                                   "loss": {"class_balance": 0.5}, "data": {"crop": 128}}))
    cfg = make_config("pix2pix", str(old_run))
    assert cfg.discriminator == PatchSettings(layers=2, scales=2)  # class_balance was oasis's: left out
    with pytest.raises(SatganError, match=r"model.num_d is now discriminator.scales \(model.discriminator=patch\)"):
        apply_overrides(preset("pix2pix"), ["model.num_d=2"])
    with pytest.raises(SatganError, match="disagrees with discriminator.layers=3"):
        old_run.write_text(json.dumps({"model": {"d_layers": 2}, "discriminator": {"layers": 3}}))
        make_config("pix2pix", str(old_run))


def test_changing_the_kind_starts_its_settings_afresh():
    cfg = apply_overrides(preset("pix2pix"), ["discriminator.scales=2", "model.discriminator=oasis",
                                              "discriminator.levels=2"])
    assert cfg.discriminator == OasisSettings(levels=2)
    assert preset("quick").discriminator == ProjectedSegSettings()
