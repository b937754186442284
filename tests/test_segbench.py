"""``satgan segbench``: the arms share budget, seeds, initial weights and real subsets;
results repeat; bad inputs fail up front with one message and write nothing."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from satgan.config import SegbenchConfig
from satgan.errors import SatganError
from satgan.segbench import (
    REAL_STREAM,
    SYNTHETIC_STREAM,
    digest,
    format_table,
    initial_network,
    segbench,
    segbench_figure,
    subset,
)

TINY = {"steps": 2, "batch_size": 3, "crop": 32, "ngf": 4, "seeds": 2, "device": "cpu"}
ARMS = ["real 25%", "real 25% + synthetic 0.5x", "real 25% + synthetic 1x",
        "real 100%", "real 100% + synthetic 0.5x", "real 100% + synthetic 1x", "synthetic only"]


@pytest.fixture(scope="module")
def synthetic_arrays(inria_arrays, tmp_path_factory) -> Path:
    """A second pretransformed folder standing in for synthetic data (a copy of the real one)."""
    out = tmp_path_factory.mktemp("segbench") / "synthetic"
    shutil.copytree(inria_arrays, out)
    return out


def config(real, out, **changes) -> SegbenchConfig:
    return SegbenchConfig(real=str(real), out=str(out), **{**TINY, "fractions": [0.25, 1.0], "ratios": [0.5, 1.0],
                                                            **changes})


@pytest.fixture(scope="module")
def bench(inria_arrays, synthetic_arrays, tmp_path_factory) -> tuple[SegbenchConfig, dict]:
    cfg = config(inria_arrays, tmp_path_factory.mktemp("segbench") / "out", synthetic=str(synthetic_arrays))
    return cfg, segbench(cfg, progress=False)


def test_arms_share_budget_seeds_and_real_tiles(bench):
    cfg, report = bench
    arms = {a["arm"]: a for a in report["arms"]}
    assert [a["arm"] for a in report["arms"]] == ARMS
    n = report["counts"]["real_train"]
    assert len(report["runs"]) == len(ARMS) * cfg.seeds
    for run in report["runs"]:  # the same budget everywhere
        assert (run["steps"], run["batch_size"], run["samples_seen"]) == (cfg.steps, cfg.batch_size,
                                                                          cfg.steps * cfg.batch_size)
        assert 0 <= run["iou"] <= 1 and 0 <= run["f1"] <= 1
    for seed in range(cfg.seeds):
        runs = {r["arm"]: r for r in report["runs"] if r["seed"] == seed}
        assert len({r["initial_weights"] for r in runs.values()}) == 1  # one start per seed
        for fraction in ("25%", "100%"):
            real = runs[f"real {fraction}"]
            for ratio in (0.5, 1.0):
                mix = runs[f"real {fraction} + synthetic {ratio:g}x"]
                assert (mix["real_tiles"], mix["real_subset"]) == (real["real_tiles"], real["real_subset"])
                assert mix["synthetic_tiles"] == math.floor(ratio * real["real_tiles"] + 0.5)  # half up
            assert real["real_subset"] == digest(subset(n, real["real_tiles"], seed, REAL_STREAM))
        assert runs["synthetic only"]["real_tiles"] == 0
        assert runs["synthetic only"]["synthetic_subset"] == digest(subset(report["counts"]["synthetic"], n, seed,
                                                                           SYNTHETIC_STREAM))
    assert arms["real 25%"]["real_tiles"] == math.floor(0.25 * n + 0.5) and arms["real 100%"]["real_tiles"] == n
    seeds = [r["initial_weights"] for r in report["runs"] if r["arm"] == "real 25%"]
    assert seeds[0] != seeds[1]  # seeds differ, or the std over them would mean nothing


def test_report_summarizes_the_runs(bench):
    cfg, report = bench
    arms = {a["arm"]: a for a in report["arms"]}
    for a in report["arms"]:
        ious = [r["iou"] for r in report["runs"] if r["arm"] == a["arm"]]
        assert a["seeds"] == list(range(cfg.seeds))
        assert a["iou_mean"] == pytest.approx(np.mean(ious)) and a["iou_std"] == pytest.approx(np.std(ious, ddof=1))
        if a["ratio"] is not None:
            assert a["delta_iou"] == pytest.approx(a["iou_mean"] - arms[a["baseline"]]["iou_mean"])
    assert arms["real 25%"]["delta_iou"] is None
    assert arms["synthetic only"]["baseline"] == "real 100%"
    out = Path(cfg.out)
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    table = (out / "report.md").read_text()
    assert format_table(report) in table and table.count("\n| real") == 6
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert len(segbench_figure(report).axes[0].lines) >= 3  # real only, two ratios, synthetic only


def test_initial_weights_depend_on_the_seed_alone(bench):
    cfg, report = bench
    a, b, c = initial_network(cfg, 1), initial_network(cfg, 1), initial_network(cfg, 0)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))
    assert {r["initial_weights"] for r in report["runs"] if r["seed"] == 1} == {digest(a)}


def test_real_subsets_are_nested():
    small, large = subset(40, 4, 3, REAL_STREAM), subset(40, 10, 3, REAL_STREAM)
    assert list(large[:4]) == list(small) and len(set(large)) == 10
    assert list(subset(40, 10, 4, REAL_STREAM)) != list(large)
    assert list(subset(40, 10, 3, SYNTHETIC_STREAM)) != list(large)  # synthetic draws its own permutation


def test_same_seeds_same_results(bench, inria_arrays, synthetic_arrays, tmp_path):
    cfg, report = bench
    cfg = config(inria_arrays, tmp_path / "again", synthetic=str(synthetic_arrays), ratios=[1.0],
                 synthetic_only=False)
    again = segbench(cfg, progress=False)
    before = {(r["arm"], r["seed"]): (r["iou"], r["f1"], r["train_loss"]) for r in report["runs"]}
    after = {(r["arm"], r["seed"]): (r["iou"], r["f1"], r["train_loss"]) for r in again["runs"]}
    assert after and all(before[key] == value for key, value in after.items())


def test_real_only_without_synthetic(inria_arrays, tmp_path):
    report = segbench(config(inria_arrays, tmp_path / "out", seeds=1, fractions=[1.0]), progress=False)
    assert [a["arm"] for a in report["arms"]] == ["real 100%"]
    assert report["counts"]["synthetic"] == 0 and report["settings"]["synthetic"] is None


def _without_test_split(inria_arrays: Path, root: Path) -> Path:
    shutil.copytree(inria_arrays, root)
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["splits"]["val"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.mark.parametrize("case, named", [
    ("missing real", "nowhere"),
    ("no test split", "it has train"),
    ("synthetic not pretransformed", "plain"),
    ("crop larger than tiles", "crop=128"),
    ("crop not a multiple of 16", "crop=40"),
    ("fraction gives no tiles", "0.01"),
    ("too few synthetic tiles", "needs 40 synthetic tiles"),
    ("scored on its training split", "test_split=train"),
])
def test_bad_inputs_fail_up_front(case, named, inria_arrays, synthetic_arrays, tmp_path):
    out, plain = tmp_path / "out", tmp_path / "plain"
    plain.mkdir()
    (plain / "a.png").write_bytes(b"")
    real, changes = inria_arrays, {"synthetic": str(synthetic_arrays)}
    if case == "missing real":
        real = tmp_path / "nowhere"
    elif case == "no test split":
        real = _without_test_split(inria_arrays, tmp_path / "trainonly")
    elif case == "synthetic not pretransformed":
        changes["synthetic"] = str(plain)
    elif case == "crop larger than tiles":
        changes["crop"] = 128
    elif case == "crop not a multiple of 16":
        changes["crop"] = 40
    elif case == "fraction gives no tiles":
        changes["fractions"] = [0.01, 1.0]
    elif case == "too few synthetic tiles":
        changes["ratios"] = [2.0]
    else:
        changes["test_split"] = "train"
    with pytest.raises(SatganError, match=named) as caught:
        segbench(config(real, out, **changes), progress=False)
    if case in ("missing real", "no test split"):
        assert str(real) in str(caught.value)  # names the folder
    assert not out.exists()


def test_command_line(inria_arrays, synthetic_arrays, tmp_path, capsys):
    from satgan.cli import main

    out = tmp_path / "out"
    common = ["--steps", "2", "--batch-size", "2", "--crop", "32", "--ngf", "4", "--seeds", "1", "--device", "cpu",
              "--fractions", "0.5", "--ratios", "1"]
    assert main(["segbench", str(inria_arrays), str(out), "--synthetic", str(synthetic_arrays), *common]) == 0
    printed = capsys.readouterr().out
    assert "| real 50% + synthetic 1x |" in printed and "| synthetic only |" in printed
    assert (out / "report.json").is_file()
    assert main(["segbench", str(tmp_path / "nowhere"), str(tmp_path / "out2"), *common]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("satgan: error:") and "nowhere" in err[0]
    assert not (tmp_path / "out2").exists()


def test_score_counts_pixels_as_a_known_prediction_says():
    """A 'network' that predicts a building where the red channel is bright: TP, FP and
    FN, IoU and F1 as counted by hand, with padding to the network's multiple cropped off."""
    from satgan.segmenter import Tiles, score

    images = np.zeros((2, 40, 40, 3), np.uint8)
    masks = np.zeros((2, 40, 40), np.uint8)
    images[0, :10, :10, 0] = 255  # predicted 100 px
    masks[0, 5:10, :10] = 255  # true 50 px, all predicted: TP 50, FP 50
    masks[1, 30:40, 30:40] = 255  # true 100 px, none predicted: FN 100

    class RedIsBuilding(torch.nn.Module):
        def forward(self, x):
            return x[:, :1] * 10  # [-1, 1] input: red 255 -> +10, red 0 -> -10

    result = score(RedIsBuilding(), Tiles(Path("."), "val", images, masks), device=torch.device("cpu"))
    assert (result["tp"], result["fp"], result["fn"]) == (50, 50, 100)
    assert result["iou"] == pytest.approx(50 / 200) and result["f1"] == pytest.approx(100 / 250)


def test_the_real_folder_as_synthetic_is_refused(inria_arrays, tmp_path):
    with pytest.raises(SatganError, match="is the real folder"):
        segbench(SegbenchConfig(real=str(inria_arrays), out=str(tmp_path / "o"), synthetic=str(inria_arrays),
                                **TINY), progress=False)
    assert not (tmp_path / "o").exists()


def test_test_scores_every_arm_on_another_folder(inria_arrays, synthetic_arrays, tmp_path):
    """--test: every tile of a held-out folder (all its splits), or one split of it; never the
    real folder's own training split."""
    cfg = config(inria_arrays, tmp_path / "out", seeds=1, fractions=[1.0], test=str(synthetic_arrays))
    report = segbench(cfg, progress=False)
    manifest = json.loads((synthetic_arrays / "manifest.json").read_text())
    every = sum(s["count"] for s in manifest["splits"].values())
    assert report["counts"]["test"] == every and report["settings"]["test_splits"] == ["train", "val"]
    assert report["settings"]["test"] == str(synthetic_arrays.resolve())
    one = segbench(replace(cfg, out=str(tmp_path / "out2"), test_split="val"), progress=False)
    assert one["counts"]["test"] == manifest["splits"]["val"]["count"]
    # scored on other tiles, the same training gives another score
    own = segbench(replace(cfg, out=str(tmp_path / "out3"), test=None), progress=False)
    assert own["runs"][0]["initial_weights"] == report["runs"][0]["initial_weights"]
    assert (own["runs"][0]["tp"], own["runs"][0]["fn"]) != (report["runs"][0]["tp"], report["runs"][0]["fn"])
    with pytest.raises(SatganError, match="--test is the real folder: give --test-split"):
        segbench(replace(cfg, out=str(tmp_path / "out4"), test=str(inria_arrays)), progress=False)
    with pytest.raises(SatganError, match="--test: .*nowhere"):
        segbench(replace(cfg, out=str(tmp_path / "out5"), test=str(tmp_path / "nowhere")), progress=False)


def test_test_may_not_be_the_synthetic_training_tiles(inria_arrays, synthetic_arrays, tmp_path):
    with pytest.raises(SatganError, match="--test is the synthetic folder: give --test-split"):
        segbench(config(inria_arrays, tmp_path / "out", seeds=1, fractions=[1.0], synthetic=str(synthetic_arrays),
                        test=str(synthetic_arrays)), progress=False)
    assert not (tmp_path / "out").exists()
