"""The reference building segmenter: mask fidelity on known cases, the cache, bad inputs."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import satgan.segmentation.segmenters as segmenter_module
from satgan import SatganError, SatganWarning
from satgan.cli import main
from satgan.config import SegmenterConfig
from satgan.segmentation.segmenters import cache_key, load_segmenter, reference_segmenter, segmenter_from_spec
from satgan.segmentation.training import fidelity, pixel_counts

TINY = {"width": 4, "steps": 2, "batch_size": 2, "crop": 32, "device": "cpu"}


# -- the metric on hand-made cases -----------------------------------------------------------------
def _square(y: int, x: int, side: int = 10, size: int = 40) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[y:y + side, x:x + side] = 255
    return mask


def test_a_perfect_prediction_scores_one():
    mask = _square(5, 5)
    scores = fidelity(pixel_counts(mask[None] >= 128, mask[None]))
    assert scores["iou"] == 1.0 and scores["f1"] == 1.0 and scores["tp"] == 100


def test_empty_masks():
    empty = np.zeros((1, 40, 40), np.uint8)
    assert fidelity(pixel_counts(empty >= 128, empty))["iou"] == 1.0  # nothing to find, nothing found
    found = fidelity(pixel_counts(_square(0, 0)[None] >= 128, empty))  # a building where the mask has none
    assert found["iou"] == 0.0 and found["fp"] == 100 and found["fn"] == 0
    missed = fidelity(pixel_counts(empty >= 128, _square(0, 0)[None]))
    assert missed["iou"] == 0.0 and missed["fn"] == 100


def test_a_shifted_mask_scores_its_overlap():
    truth, predicted = _square(10, 10), _square(10, 15)  # shifted by half its side: 50 px shared
    scores = fidelity(pixel_counts(predicted[None] >= 128, truth[None]))
    assert (scores["tp"], scores["fp"], scores["fn"]) == (50, 50, 50)
    assert scores["iou"] == pytest.approx(50 / 150) and scores["f1"] == pytest.approx(100 / 200)


def test_counts_pool_over_pixels_not_images():
    """A small perfect tile does not lift a large missed one: pooled, not averaged per image."""
    truth = np.stack([_square(0, 0, 2), _square(0, 0, 20)])
    predicted = np.stack([_square(0, 0, 2) >= 128, np.zeros((40, 40), bool)])
    counts = pixel_counts(predicted, truth)
    assert counts.tolist() == [[4, 0, 0], [0, 0, 400]]
    assert fidelity(counts)["iou"] == pytest.approx(4 / 404)


def test_half_covered_pixels_are_buildings():
    coverage = np.array([[[127, 128, 255]]], np.uint8)
    assert pixel_counts(np.array([[[False, True, True]]]), coverage).tolist() == [[2, 0, 0]]


# -- training, the cache and files -----------------------------------------------------------------
@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("SATGAN_CACHE", str(folder))
    return folder


def _count_training(monkeypatch) -> list:
    calls = []
    real_fit = segmenter_module.fit

    def counting_fit(*args, **kwargs):
        calls.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(segmenter_module, "fit", counting_fit)
    return calls


def test_trained_once_then_read_from_the_cache(inria_arrays, cache, monkeypatch):
    calls = _count_training(monkeypatch)
    cfg = SegmenterConfig(data=str(inria_arrays), **TINY)
    first = reference_segmenter(cfg, progress=False)
    second = reference_segmenter(cfg, progress=False)
    assert len(calls) == 1  # the second call trained nothing
    assert [p.parent.name for p in cache.rglob("*.pt")] == ["segmenters"]
    for a, b in zip(first.net.state_dict().values(), second.net.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())
    assert second.info["val"]["iou"] == first.info["val"]["iou"]  # the real val tiles' own score
    assert first.info["data"]["tiles"] > 0 and not list(inria_arrays.rglob("*.pt"))  # nothing in the data folder


def test_new_settings_or_new_data_train_again(inria_arrays, cache, monkeypatch, tmp_path):
    calls = _count_training(monkeypatch)
    cfg = SegmenterConfig(data=str(inria_arrays), **TINY)
    reference_segmenter(cfg, progress=False)
    reference_segmenter(replace(cfg, steps=3), progress=False)
    assert len(calls) == 2
    reference_segmenter(replace(cfg, device="cpu", cache=str(cache)), progress=False)  # where is not what
    assert len(calls) == 2
    moved = tmp_path / "moved"
    shutil.copytree(inria_arrays, moved)  # the same bytes elsewhere: the same segmenter
    reference_segmenter(replace(cfg, data=str(moved)), progress=False)
    assert len(calls) == 2
    manifest = json.loads((moved / "manifest.json").read_text())
    manifest["splits"]["train"]["samples"] = manifest["splits"]["train"]["samples"][::-1]
    (moved / "manifest.json").write_text(json.dumps(manifest))  # the data changed: its manifest did
    assert cache_key(replace(cfg, data=str(moved))) != cache_key(cfg)
    reference_segmenter(replace(cfg, data=str(moved)), progress=False)
    assert len(calls) == 3


def test_an_unwritable_cache_warns_and_still_judges(inria_arrays, tmp_path, monkeypatch):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    cfg = SegmenterConfig(data=str(inria_arrays), cache=str(blocked / "cache"), **TINY)
    with pytest.warns(SatganWarning, match="not cached"):
        seg = reference_segmenter(cfg, progress=False)
    assert seg(np.zeros((1, 32, 32, 3), np.uint8)).shape == (1, 32, 32)


def test_cli_saves_a_segmenter_that_evaluate_reads(inria_arrays, tiny_checkpoint, tiny_judge_2, cache, tmp_path,
                                                   capsys):
    out = tmp_path / "seg.pt"
    args = ["--width", "4", "--steps", "2", "--batch-size", "2", "--crop", "32", "--device", "cpu"]
    assert main(["segmenter", str(inria_arrays), "--out", str(out), *args]) == 0
    printed = capsys.readouterr().out
    assert "real val tiles: mask IoU" in printed and f"saved: {out}" in printed
    seg = load_segmenter(out, "cpu")
    assert seg.info["settings"]["width"] == 4
    assert main(["evaluate", f"tiny={tiny_checkpoint}", str(inria_arrays), "--out", str(tmp_path / "r.json"),
                 "--segmenter", str(out), "--segmenter-2", str(tiny_judge_2), "--limit", "4", "--baselines",
                 "flat"]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report["models"]) == {"tiny", "flat", "real"}
    assert report["segmenter"]["settings"]["width"] == 4
    assert main(["evaluate", f"tiny={tiny_checkpoint}", str(inria_arrays), "--out", str(tmp_path / "r2.json"),
                 "--no-mask-iou", "--limit", "4"]) == 0
    assert "mask_iou" not in json.loads((tmp_path / "r2.json").read_text())["models"]["tiny"]["overall"]


def test_a_held_out_folder_is_judged_by_a_segmenter_trained_elsewhere(inria_arrays, cache, tmp_path):
    seg = segmenter_from_spec(str(inria_arrays), data=str(tmp_path / "unused"), device="cpu", progress=False,
                              settings=SegmenterConfig(data="", **TINY))
    assert seg.info["data"]["root"] == str(inria_arrays.resolve())


# -- bad inputs: one clear error each --------------------------------------------------------------
def _fails(capsys, argv: list, culprit: str) -> None:
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("satgan: error:")]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert culprit in lines[0], lines[0]


def test_masks_without_buildings_are_refused(inria_arrays, cache, tmp_path):
    empty = tmp_path / "empty"
    shutil.copytree(inria_arrays, empty)
    masks = np.load(empty / "train" / "masks.npy")
    np.save(empty / "train" / "masks.npy", np.zeros_like(masks))
    with pytest.raises(SatganError, match=r"buildings cover 0.00% of the train split"):
        reference_segmenter(SegmenterConfig(data=str(empty), **TINY), progress=False)
    assert not list(cache.rglob("*.pt"))


def test_bad_segmenter_inputs(inria_arrays, tiny_checkpoint, cache, tmp_path, capsys):
    report = tmp_path / "r.json"
    base = ["evaluate", tiny_checkpoint, inria_arrays, "--out", report, "--limit", "2"]
    _fails(capsys, [*base, "--segmenter", tmp_path / "nowhere.pt"], "nowhere.pt: no such file or folder")
    _fails(capsys, [*base, "--segmenter", tiny_checkpoint], "not a satgan segmenter")
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04 cut short")
    _fails(capsys, [*base, "--segmenter", tmp_path / "cut.pt"], "cut.pt: not a readable segmenter")
    plain = tmp_path / "plain"
    plain.mkdir()
    _fails(capsys, [*base, "--segmenter", plain], "manifest")
    assert not report.exists()
    _fails(capsys, ["segmenter", inria_arrays, "--crop", "40"], "crop=40: must be a multiple of 16")
    _fails(capsys, ["segmenter", inria_arrays, "--out", tmp_path, "--steps", "1"], "is a folder")
    _fails(capsys, ["segmenter", tmp_path / "nowhere"], "nowhere")


def test_a_segmenter_file_without_its_record_is_one_error(tmp_path):
    torch.save({"kind": "satgan-segmenter", "format": 1, "weights": {}}, tmp_path / "bare.pt")
    with pytest.raises(SatganError, match="bare.pt: a damaged segmenter"):
        load_segmenter(tmp_path / "bare.pt", "cpu")
