"""``satgan evaluate``: checkpoints and baselines on a split, folders of old results, reports."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from satgan import SatganError, SatganWarning
from satgan.cli import main
from satgan.config import EvaluateConfig, model_spec
from satgan.data.arrays import tile_names
from satgan.evaluation.baselines import FlatFill
from satgan.evaluation.folder_scoring import city_of, match_key
from satgan.evaluation.report import evaluate, format_rows, report_rows


def test_names_cities_and_old_file_names(tmp_path):
    assert city_of("austin12") == "austin" and city_of("Generated-tyrol-w3-2") == "tyrol-w"
    assert city_of("OriginalResized-kitsap1") == "kitsap" and city_of("tile") == "all"
    assert match_key(tmp_path / "Generated-austin1-2.jpeg") == match_key(tmp_path / "OriginalResized-austin1-2.jpeg")
    assert model_spec("base=runs/x/checkpoints/last.pt") == ("base", "runs/x/checkpoints/last.pt")
    assert model_spec("runs/quick/checkpoints/last.pt") == ("quick", "runs/quick/checkpoints/last.pt")


def test_tile_names_follow_the_old_project(inria_arrays):
    manifest = json.loads((inria_arrays / "manifest.json").read_text())
    names = tile_names(manifest, "val")
    assert names[:5] == ["austin1-1", "austin1-2", "austin1-3", "austin1-4", "austin2-1"]


def test_flat_fill_uses_the_mean_colours():
    flat = FlatFill(np.array([200, 100, 50]), np.array([10, 20, 30]))
    masks = np.array([[[255, 0], [128, 0]]], np.uint8)
    out = flat(masks)
    assert out[0, 0, 0].tolist() == [200, 100, 50] and out[0, 0, 1].tolist() == [10, 20, 30]
    assert out[0, 1, 0].tolist() == [105, 60, 40]  # half covered: half-way


def test_checkpoint_and_baselines_report_per_city(inria_arrays, tiny_checkpoint, tiny_segmenter, tiny_judge_2,
                                                  tmp_path):
    out = tmp_path / "report.json"
    report = evaluate(EvaluateConfig(out=str(out), checkpoints=[f"tiny={tiny_checkpoint}"], data=str(inria_arrays),
                                     baselines=["flat", "untrained"], limit=24, kid_subsets=5,
                                     segmenter=str(tiny_segmenter), segmenter_2=str(tiny_judge_2)))
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert set(report["models"]) == {"tiny", "flat", "untrained", "real"}
    assert report["count"] == 24 and report["tile_side"] == 64
    for name, entry in report["models"].items():  # mask fidelity for every row, per city too
        for judge in ("mask_iou", "mask_iou_2"):  # by both judges
            assert 0 <= entry["overall"][judge] <= 1 and 0 <= entry["overall"][judge.replace("iou", "f1")] <= 1, name
            assert all(judge in c for c in entry["cities"].values()), name
    real = report["models"].pop("real")
    assert set(real["overall"]) == {"count", "mask_iou", "mask_f1", "mask_iou_2", "mask_f1_2"}
    assert real["overall"]["count"] == 24
    assert report["segmenter"]["data"] == str(inria_arrays.resolve())
    assert report["segmenter"]["settings"]["architecture"] == "unet"
    assert report["segmenter_2"]["settings"]["architecture"] == "dilated"
    for entry in report["models"].values():
        assert entry["overall"]["count"] == 24
        assert {c: v["count"] for c, v in entry["cities"].items()} == {"austin": 20, "chicago": 4}
        assert 5 < entry["overall"]["psnr"] < 40 and -1 <= entry["overall"]["ssim"] <= 1
        if report["inception"]["available"] or os.environ.get("SATGAN_REQUIRE_INCEPTION"):
            assert entry["overall"]["fid"] > 0 and "kid" in entry["overall"]
    rows = report_rows(report, cities=True)
    assert len(rows) == 3 * 3 and rows[0]["model"] == "tiny" and rows[0]["city"] == "overall"
    assert "mask IoU" in format_rows(rows).splitlines()[0]


def test_missing_inception_weights_leave_the_other_metrics(inria_arrays, tmp_path, monkeypatch):
    monkeypatch.setenv("SATGAN_INCEPTION", str(tmp_path / "absent.pt"))  # nothing installed where it looks
    with pytest.warns(SatganWarning, match="FID and KID skipped"):
        report = evaluate(EvaluateConfig(out=str(tmp_path / "r.json"), data=str(inria_arrays), baselines=["flat"],
                                         limit=8, mask_iou=False))
    assert report["inception"]["available"] is False and "absent.pt" in report["inception"]["reason"]
    overall = report["models"]["flat"]["overall"]
    assert "psnr" in overall and "ssim" in overall and "fid" not in overall
    # a path the user names must exist
    with pytest.raises(SatganError, match="no FID Inception weights"):
        evaluate(EvaluateConfig(out=str(tmp_path / "r2.json"), data=str(inria_arrays), baselines=["flat"],
                                inception=str(tmp_path / "typo.pt")))
    assert not (tmp_path / "r2.json").exists()


def test_folder_mode_scores_old_results_by_name(tmp_path, capsys):
    gen_dir, real_dir = tmp_path / "generated", tmp_path / "real"
    gen_dir.mkdir()
    real_dir.mkdir()
    rng = np.random.default_rng(0)
    for city in ("austin1", "vienna2", "vienna3"):
        smooth = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((96, 96), Image.BICUBIC)
        smooth.save(real_dir / f"OriginalResized-{city}.jpeg")  # another size than the generated one
        smooth.resize((64, 64), Image.BICUBIC).save(gen_dir / f"Generated-{city}.jpeg")
    (gen_dir / "Generated-kitsap1.jpeg").write_bytes(b"not a jpeg")
    (real_dir / "OriginalResized-kitsap1.jpeg").write_bytes((real_dir / "OriginalResized-austin1.jpeg").read_bytes())
    (real_dir / "OriginalResized-chicago9.jpeg").write_bytes((real_dir / "OriginalResized-austin1.jpeg").read_bytes())
    code = main(["evaluate", "--generated", str(gen_dir), "--real", str(real_dir), "--out", str(tmp_path / "r.json"),
                 "--kid-subsets", "3", "--cities"])
    captured = capsys.readouterr()
    assert code == 1 and "Generated-kitsap1.jpeg" in captured.err  # named, the rest scored
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["count"] == 3 and report["real_resized"] == 3 and report["unmatched"] == {"generated": 0, "real": 1}
    assert list(report["skipped"]) == ["kitsap1"]
    entry = report["models"]["generated"]
    assert set(entry["cities"]) == {"austin", "vienna"} and entry["cities"]["vienna"]["count"] == 2
    assert entry["overall"]["psnr"] > 30  # the same pictures, resized and JPEG'd
    assert "vienna" in captured.out


def test_folder_mode_reads_an_old_results_folder_holding_every_role(tmp_path):
    """The old project wrote MaskResized-, Generated- and OriginalResized- files side by side."""
    rng = np.random.default_rng(1)
    for n in (1, 2):
        smooth = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((64, 64), Image.BICUBIC)
        smooth.save(tmp_path / f"OriginalResized-chicago{n}.jpeg")
        smooth.save(tmp_path / f"Generated-chicago{n}.jpeg")
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / f"MaskResized-chicago{n}.jpeg")
    report = evaluate(EvaluateConfig(out=str(tmp_path / "r.json"), generated=str(tmp_path), real=str(tmp_path),
                                     kid_subsets=2))
    assert report["count"] == 2 and report["models"][tmp_path.name]["overall"]["psnr"] > 35
    plain = tmp_path / "plain"
    plain.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(plain / "x.png")
    with pytest.raises(SatganError, match="generated and real are the same files"):
        evaluate(EvaluateConfig(out=str(tmp_path / "r2.json"), generated=str(plain), real=str(plain)))


def test_bad_evaluate_input(inria_arrays, tiny_checkpoint, tmp_path):
    with pytest.raises(SatganError, match="baselines=.mean.: choose from flat, untrained"):
        evaluate(EvaluateConfig(out=str(tmp_path / "r.json"), data=str(inria_arrays), baselines=["mean"]))
    with pytest.raises(SatganError, match="architecture from a checkpoint"):
        evaluate(EvaluateConfig(out=str(tmp_path / "r.json"), data=str(inria_arrays), baselines=["untrained"]))
    with pytest.raises(SatganError, match="both --generated and --real"):
        evaluate(EvaluateConfig(out=str(tmp_path / "r.json"), generated=str(tmp_path)))
    assert not (tmp_path / "r.json").exists()
