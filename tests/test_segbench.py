"""``satgan segbench``: the arms share budget, seeds, initial weights and real subsets;
mixing, pre-training and filtering do what they say; gains are paired by seed; results
repeat; bad inputs fail up front with one message and write nothing."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from satgan import SatganError
from satgan.config import SegbenchConfig
from satgan.data.readers import file_sha256
from satgan.data.subset import subset
from satgan.segmentation.training import Tiles, phase_lr_factor, random_crops, seg_loss
from satgan.synthetic.plan import COPY_PASTE, MIX, PRETRAIN, Arm, arm_order
from satgan.synthetic.report import format_table, recommendation, segbench_figure, significant, summarize
from satgan.synthetic.segbench import digest, filter_synthetic, generator_claim, initial_network, segbench

TINY = {"steps": 4, "batch_size": 4, "crop": 32, "ngf": 4, "seeds": 2, "device": "cpu"}
ARMS = ["real 25%", "real 25% + 50% synthetic", "real 25% after synthetic pre-training",
        "real 25% + 50% synthetic, filtered 1.25", "real 25% after synthetic pre-training, filtered 1.25",
        "real 25% + 50% copy-paste",
        "real 100%", "real 100% + 50% synthetic", "real 100% after synthetic pre-training",
        "real 100% + 50% synthetic, filtered 1.25", "real 100% after synthetic pre-training, filtered 1.25",
        "real 100% + 50% copy-paste", "synthetic only"]


@pytest.fixture(scope="module")
def synthetic_arrays(inria_arrays, tmp_path_factory) -> Path:
    """A second pretransformed folder standing in for synthetic data: the real tiles mirrored
    (a copy would be the real data by its content hash, which segbench refuses)."""
    out = tmp_path_factory.mktemp("segbench") / "synthetic"
    shutil.copytree(inria_arrays, out)
    manifest = json.loads((out / "manifest.json").read_text())
    for info in manifest["splits"].values():
        for key in ("images", "masks"):
            np.save(out / info[key], np.ascontiguousarray(np.load(out / info[key])[:, :, ::-1]))
            info["sha256"][key] = file_sha256(out / info[key])
    content = json.dumps({k: v["sha256"] for k, v in manifest["splits"].items()}, sort_keys=True).encode()
    manifest["content_hash"] = hashlib.sha256(content).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def config(real, out, **changes) -> SegbenchConfig:
    return SegbenchConfig(real=str(real), out=str(out), **{**TINY, "fractions": [0.25, 1.0], "shares": [0.5],
                                                            **changes})


@pytest.fixture(scope="module")
def bench(inria_arrays, synthetic_arrays, tmp_path_factory) -> tuple[SegbenchConfig, dict]:
    cfg = config(inria_arrays, tmp_path_factory.mktemp("segbench") / "out", synthetic=str(synthetic_arrays),
                 filter=1.25)
    return cfg, segbench(cfg, progress=False)


def test_arms_share_budget_seeds_and_real_tiles(bench):
    cfg, report = bench
    arms = {a["arm"]: a for a in report["arms"]}
    assert [a["arm"] for a in report["arms"]] == ARMS
    n, n_synthetic = report["counts"]["real_train"], report["counts"]["synthetic"]
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
            for name, run in runs.items():
                if name.startswith(f"real {fraction} "):  # every way of adding synthetic tiles
                    assert (run["real_tiles"], run["real_subset"]) == (real["real_tiles"], real["real_subset"])
                    assert run["synthetic_tiles"] == n_synthetic
                    assert ("filtered" in name) == ("filter" in run)
            assert real["real_subset"] == digest(subset(n, real["real_tiles"], seed))
        assert runs["synthetic only"]["real_tiles"] == 0 and runs["synthetic only"]["synthetic_tiles"] == n_synthetic
    assert arms["real 25%"]["real_tiles"] == math.floor(0.25 * n + 0.5) and arms["real 100%"]["real_tiles"] == n
    seeds = [r["initial_weights"] for r in report["runs"] if r["arm"] == "real 25%"]
    assert seeds[0] != seeds[1]  # seeds differ, or the std over them would mean nothing


def test_report_pairs_gains_by_seed(bench):
    cfg, report = bench
    arms = {a["arm"]: a for a in report["arms"]}
    iou = {(r["arm"], r["seed"]): r["iou"] for r in report["runs"]}
    for a in report["arms"]:
        ious = [iou[(a["arm"], s)] for s in range(cfg.seeds)]
        assert a["seeds"] == list(range(cfg.seeds))
        assert a["iou_mean"] == pytest.approx(np.mean(ious)) and a["iou_std"] == pytest.approx(np.std(ious, ddof=1))
        if a["baseline"] is not None:
            deltas = [iou[(a["arm"], s)] - iou[(a["baseline"], s)] for s in range(cfg.seeds)]
            assert a["delta_iou"] == pytest.approx(np.mean(deltas))
            assert a["delta_se"] == pytest.approx(np.std(deltas, ddof=1) / math.sqrt(cfg.seeds))
    assert arms["real 25%"]["delta_iou"] is None
    assert arms["synthetic only"]["baseline"] == "real 100%"
    assert arms["real 25% + 50% synthetic"]["baseline"] == "real 25%"
    out = Path(cfg.out)
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    table = (out / "report.md").read_text()
    assert format_table(report) in table and table.count("\n| real") == 12
    assert report["recommendation"] in table
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert len(segbench_figure(report).axes[0].lines) >= 5  # real only and four ways of adding synthetic tiles


def test_filtered_arms_ignore_a_share_of_synthetic_pixels(bench):
    _, report = bench
    for run in report["runs"]:
        if "filter" in run:
            stats = run["filter"]
            assert 0 <= stats["ignored"] <= 1 and stats["bar_ground"] > 0 and stats["bar_building"] > 0
            assert stats["ignored"] == run["ignored"]
    # the same judge per seed and fraction: both filtered arms of it ignore the same pixels
    by = {(r["arm"], r["seed"]): r for r in report["runs"]}
    for seed in range(2):
        a = by[("real 25% + 50% synthetic, filtered 1.25", seed)]["filter"]
        b = by[("real 25% after synthetic pre-training, filtered 1.25", seed)]["filter"]
        assert a == b


def test_mixed_batches_hold_the_share_and_pretraining_comes_first():
    cfg = SegbenchConfig(real="r", out="o", steps=10, batch_size=4, pretrain=0.3)
    mix = Arm("m", 1.0, real=5, synthetic=7, schedule=MIX, share=0.5)
    order, phases = arm_order(mix, cfg, seed=0)
    assert order.shape == (10, 4) and phases is None
    assert ((order >= 5).sum(1) == 2).all()  # two synthetic positions (5..11) in every batch
    assert order.max() <= 11 and set(order[order < 5].tolist()) == set(range(5))
    pre = Arm("p", 1.0, real=5, synthetic=7, schedule=PRETRAIN)
    order, phases = arm_order(pre, cfg, seed=0)
    assert phases == [3, 7] and order.shape == (10, 4)
    assert (order[:3] >= 5).all() and (order[3:] < 5).all()
    assert arm_order(Arm("r", 1.0, real=5, synthetic=0), cfg, 0) == (None, None)


def test_the_learning_rate_restarts_with_each_phase():
    factors = [phase_lr_factor(s, [4, 6], 0.25) for s in range(10)]
    assert factors[0] == pytest.approx(1.0) and factors[3] < 0.5  # warm-up of 1 step, then cosine
    assert factors[4] > factors[3] and factors[5] == pytest.approx(1.0)  # the second phase warms up again (2 steps)
    assert factors[9] < factors[7] < factors[6]  # and decays again


def test_ignored_pixels_leave_the_loss():
    logits = torch.tensor([[[[4.0, -4.0], [4.0, 4.0]]]])
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])  # the last pixel is labelled wrongly
    keep = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])
    assert seg_loss(logits, target, torch.ones_like(keep)) == pytest.approx(seg_loss(logits, target).item())
    kept = seg_loss(logits, target, keep)
    assert kept < seg_loss(logits, target)
    three = seg_loss(logits.flatten()[:3].view(1, 1, 1, 3), target.flatten()[:3].view(1, 1, 1, 3))
    assert kept == pytest.approx(three.item(), rel=1e-5)  # as if the pixel were not there


def test_crops_cut_the_ignore_map_with_the_mask():
    rng = np.random.default_rng(0)
    masks = (rng.random((3, 16, 16)) > 0.5).astype(np.uint8) * 255
    images = rng.integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    tiles = Tiles(Path("."), "train", images, masks, ignore=masks >= 128)
    plain = Tiles(Path("."), "train", images, masks)
    _, crop_masks, keep = random_crops([(tiles, 0), (tiles, 1), (plain, 2)], np.array([0, 1, 2]), 8, rng)
    assert (keep[:2] == (crop_masks[:2] < 128)).all()  # flipped and turned in step with the mask
    assert keep[2].all()  # a tile without a map keeps everything
    assert random_crops([(plain, 0)], np.array([0]), 8, rng)[2] is None


def test_the_filter_ignores_pixels_the_real_data_would_not_label_so():
    """A judge that calls bright red pixels buildings: on real tiles it agrees with every
    label but a few; on a synthetic tile, pixels labelled against it are ignored."""

    class RedIsBuilding(torch.nn.Module):
        def forward(self, x):
            return x[:, :1] * 3

    images = np.zeros((2, 16, 16, 3), np.uint8)
    masks = np.zeros((2, 16, 16), np.uint8)
    images[:, :8, :, 0] = 255
    masks[:, :8] = 255
    masks[0, 0, 0] = 0  # one disagreeing pixel per class makes the bars non-trivial
    masks[0, 15, 15] = 255
    real = Tiles(Path("r"), "train", images, masks)
    s_images, s_masks = images[:1].copy(), masks[:1].copy()
    s_masks[0, 8:10] = 255  # labelled building where the image shows ground
    s_masks[0, 0, 0] = 255
    synthetic = Tiles(Path("s"), "train", s_images, s_masks)
    filtered, stats = filter_synthetic(RedIsBuilding(), real, np.array([0, 1]), synthetic, 1.25, torch.device("cpu"))
    expected = np.zeros((1, 16, 16), bool)
    expected[0, 8:10] = True
    expected[0, 15, 15] = True  # labelled building on ground, as in the real tile it came from
    assert (filtered.ignore == expected).all()
    assert stats["ignored_ground"] == 0 and stats["ignored_building"] == pytest.approx(33 / 161)
    assert synthetic.ignore is None  # the unfiltered tiles are left as they were


def test_initial_weights_depend_on_the_seed_alone(bench):
    cfg, report = bench
    a, b, c = initial_network(cfg, 1), initial_network(cfg, 1), initial_network(cfg, 0)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))
    assert {r["initial_weights"] for r in report["runs"] if r["seed"] == 1} == {digest(a)}


def test_real_subsets_are_nested():
    small, large = subset(40, 4, 3), subset(40, 10, 3)
    assert list(large[:4]) == list(small) and len(set(large)) == 10
    assert list(subset(40, 10, 4)) != list(large)
    assert list(subset(40, 10, 3, stream=1)) != list(large)  # another stream, another draw


def test_holm_corrects_for_the_arms_of_a_fraction():
    """p = 0.03 alone is significant; as the second-best of three arms (0.01, 0.03, 0.5) it
    is not (0.03 x 2 > 0.05), while the best (0.01 x 3 = 0.03) stays significant."""
    from satgan.synthetic.report import _holm

    rows = [{"p_value": 0.03}]
    _holm(rows)
    assert rows[0]["significant"]
    rows = [{"p_value": 0.5}, {"p_value": 0.03}, {"p_value": 0.01}]
    _holm(rows)
    assert [r["significant"] for r in rows] == [False, False, True]


def test_a_gain_from_filtered_ground_says_so():
    report = _report([0.04, 0.05, 0.03, 0.04, 0.05])
    report["arms"][1]["ignored_building"] = 0.99
    assert "comes from the synthetic ground" in recommendation(report)


def test_real_only_runs_are_not_refused_over_synthetic_options(inria_arrays, tmp_path):
    cfg = config(inria_arrays, tmp_path / "out", seeds=1, fractions=[1.0], batch_size=2, steps=1,
                 shares=[0.75], pretrain=0.5)
    assert [a["arm"] for a in segbench(cfg, progress=False)["arms"]] == ["real 100%"]


def test_two_shares_that_give_the_same_batch_are_refused(inria_arrays, synthetic_arrays, tmp_path):
    with pytest.raises(SatganError, match="the same arm twice"):
        segbench(config(inria_arrays, tmp_path / "out", synthetic=str(synthetic_arrays), shares=[0.3, 0.31],
                        batch_size=16), progress=False)
    assert not (tmp_path / "out").exists()


def _report(deltas: list[float], seeds: int = 5, copy_paste: list[float] | None = None) -> dict:
    runs = [{"arm": "real 10%", "seed": s, "iou": 0.3, "f1": 0.4} for s in range(seeds)]
    runs += [{"arm": "real 10% + 50% synthetic", "seed": s, "iou": 0.3 + deltas[s], "f1": 0.4} for s in range(seeds)]
    arms = [Arm("real 10%", 0.1, 56, 0), Arm("real 10% + 50% synthetic", 0.1, 56, 100, MIX, 0.5)]
    if copy_paste is not None:
        runs += [{"arm": "real 10% + 50% copy-paste", "seed": s, "iou": 0.3 + copy_paste[s], "f1": 0.4}
                 for s in range(seeds)]
        arms.append(Arm("real 10% + 50% copy-paste", 0.1, 56, 100, MIX, 0.5, source=COPY_PASTE))
    return {"arms": summarize(arms, runs), "settings": {"seeds": seeds}, "runs": runs}


def test_the_recommendation_follows_the_gain_and_its_uncertainty():
    use = _report([0.04, 0.05, 0.03, 0.04, 0.05])
    deltas = np.array([0.04, 0.05, 0.03, 0.04, 0.05])
    t = deltas.mean() / (deltas.std(ddof=1) / math.sqrt(5))
    from scipy import stats
    assert use["arms"][1]["p_value"] == pytest.approx(2 * stats.t.sf(t, 4))
    assert significant(use["arms"][1]) and "use the synthetic set" in recommendation(use)
    unsure = _report([0.1, -0.08, 0.05, -0.02, 0.0])
    assert not significant(unsure["arms"][1]) and "no arm helps for sure" in recommendation(unsure)
    worse = _report([-0.02, -0.03, -0.01, -0.02, -0.04])
    assert "do not use the synthetic set" in recommendation(worse)
    assert statistics.fmean([0.04, 0.05, 0.03, 0.04, 0.05]) == pytest.approx(use["arms"][1]["delta_iou"])
    assert "run more seeds" in recommendation(_report([0.05], seeds=1))


def test_the_recommendation_says_whether_generated_pairs_beat_copy_paste():
    gains = [0.04, 0.05, 0.03, 0.04, 0.05]
    beaten = recommendation(_report(gains, copy_paste=[0.0, 0.01, 0.0, -0.01, 0.0]))
    assert "use the synthetic set as 'real 10% + 50% synthetic'" in beaten, "copy-paste is never the pick"
    assert "Copy-paste of the same real tiles (real 10% + 50% copy-paste, no generator)" in beaten
    assert "the generated pairs beat it by +0.042 IoU" in beaten
    level = recommendation(_report(gains, copy_paste=[0.05, 0.04, 0.04, 0.03, 0.05]))
    assert "the generated pairs do not beat it (+0.000 IoU" in level
    report = _report(gains, copy_paste=[0.0, 0.01, 0.0, -0.01, 0.0])
    assert "Holm-corrected over 2 arms" in recommendation(report)  # the family counts the copy-paste arm


def test_copy_paste_pastes_whole_buildings_from_its_own_tiles():
    from satgan.synthetic.copy_paste import copy_paste_tiles, paste_buildings

    image, mask = np.full((20, 20, 3), 7, np.uint8), np.zeros((20, 20), np.uint8)
    source_image, source_mask = np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20), np.uint8)
    source_mask[2:5, 2:8], source_image[2:5, 2:8] = 255, 200  # a 3 x 6 building
    source_mask[12:14, 12:14], source_image[12:14, 12:14] = 255, 100  # a 2 x 2 one
    source_mask[0, 19] = 255  # a speck: not a building
    out_image, out_mask, pasted = paste_buildings(image, mask, source_image, source_mask, np.random.default_rng(0))
    assert pasted == 2 and (out_mask == 255).sum() in (18 + 4, 18 + 4 - 4, 18)  # overlaps cover, never add
    assert set(np.unique(out_image[out_mask == 255])) <= {100, 200}
    assert (out_image[out_mask == 0] == 7).all() and (image == 7).all() and (mask == 0).all()
    big = np.zeros((30, 30), np.uint8)
    big[:, :25] = 255
    assert paste_buildings(image, mask, np.zeros((30, 30, 3), np.uint8), big, np.random.default_rng(0))[2] == 0
    # from the given real tiles only: each tile a colour of its own
    n = 6
    images = np.stack([np.full((16, 16, 3), 10 * (i + 1), np.uint8) for i in range(n)])
    masks = np.zeros((n, 16, 16), np.uint8)
    masks[:, 4:9, 4:9] = 255
    tiles = Tiles(Path("."), "train", images, masks)
    made = copy_paste_tiles(tiles, np.array([1, 4]), 8, seed=0)
    assert len(made) == 8 and set(np.unique(made.images)) <= {20, 50}
    assert (made.masks == 255).sum(axis=(1, 2)).min() >= 25
    again = copy_paste_tiles(tiles, np.array([1, 4]), 8, seed=0)
    assert np.array_equal(made.images, again.images) and np.array_equal(made.masks, again.masks)


def test_the_report_says_which_claim_the_generator_makes(inria_arrays, tiny_checkpoint, tmp_path):
    from satgan.data.subset import subset_folder

    assert generator_claim(tiny_checkpoint, inria_arrays, [1.0])["kind"] == "no leakage"
    assert generator_claim(tiny_checkpoint, inria_arrays, [0.5, 1.0])["kind"] == "more real pairs"
    assert "100% arms are leak-free" in generator_claim(tiny_checkpoint, inria_arrays, [0.5, 1.0])["sentence"]
    assert "leak-free" not in generator_claim(tiny_checkpoint, inria_arrays, [0.1, 0.25])["sentence"]
    fewer = tmp_path / "fewer"
    subset_folder(inria_arrays, fewer, 2)
    claim = generator_claim(tiny_checkpoint, fewer, [1.0])
    assert claim["kind"] == "other data" and str(fewer) in claim["sentence"]


def test_same_seeds_same_results(bench, inria_arrays, synthetic_arrays, tmp_path):
    cfg, report = bench
    cfg = config(inria_arrays, tmp_path / "again", synthetic=str(synthetic_arrays), pretrain=0, filter=1.25,
                 synthetic_only=False)
    again = segbench(cfg, progress=False)
    before = {(r["arm"], r["seed"]): (r["iou"], r["f1"], r["train_loss"]) for r in report["runs"]}
    after = {(r["arm"], r["seed"]): (r["iou"], r["f1"], r["train_loss"]) for r in again["runs"]}
    assert len(after) == 4 * 2 * 2 and all(before[key] == value for key, value in after.items())  # copy-paste too


def test_real_only_without_synthetic(inria_arrays, tmp_path):
    report = segbench(config(inria_arrays, tmp_path / "out", seeds=1, fractions=[1.0]), progress=False)
    assert [a["arm"] for a in report["arms"]] == ["real 100%"]
    assert report["counts"]["synthetic"] == 0 and report["settings"]["synthetic"] is None
    assert "No synthetic arm ran" in report["recommendation"]


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
    ("a share that leaves no synthetic tile", "0 synthetic tiles"),
    ("a share that leaves no real tile", "is 4 synthetic tiles"),
    ("pre-training of no steps", "0 pre-training steps"),
    ("generator missing", "nothing.pt"),
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
    elif case == "a share that leaves no synthetic tile":
        changes["shares"] = [0.1]
    elif case == "a share that leaves no real tile":
        changes["shares"] = [0.9]
    elif case == "pre-training of no steps":
        changes["pretrain"] = 0.1
    elif case == "generator missing":
        changes["generator"] = str(tmp_path / "nothing.pt")
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
              "--fractions", "0.5", "--shares", "0.5"]
    assert main(["segbench", str(inria_arrays), str(out), "--synthetic", str(synthetic_arrays), *common]) == 0
    printed = capsys.readouterr().out
    assert "| real 50% + 50% synthetic |" in printed and "| synthetic only |" in printed
    assert "run more seeds" in printed  # one seed decides nothing
    assert (out / "report.json").is_file()
    assert main(["segbench", str(tmp_path / "nowhere"), str(tmp_path / "out2"), *common]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("satgan: error:") and "nowhere" in err[0]
    assert not (tmp_path / "out2").exists()


def test_score_counts_pixels_as_a_known_prediction_says():
    """A 'network' that predicts a building where the red channel is bright: TP, FP and
    FN, IoU and F1 as counted by hand, with padding to the network's multiple cropped off."""
    from satgan.segmentation.training import score

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
