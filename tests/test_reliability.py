"""Bad input and faults across every command: one clear line, exit 2, nothing lost.

Each case runs the command line in-process and asserts what the README's "Errors"
paragraph promises: exit status 2, exactly one ``satgan: error:`` line naming the culprit,
no traceback, earlier outputs byte-identical, nothing half-written under a final name,
nothing written outside ``--out``. Read-only folders and full disks are simulated by
making the write fail (these tests run as root, for whom permissions do not apply).
"""

from __future__ import annotations

import errno
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from satgan.cli import main
from tests.conftest import fails

TINY = ["--preset", "quick", "--set", "model.noise=0", "--set", "data.crop=64", "--set", "model.ngf=8",
        "--set", "model.ndf=4", "--set", "train.epochs=1", "--set", "train.workers=0", "--set", "train.val_samples=2",
        "--set", "loss.seg_weight=0"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def place(tmp_path_factory, inria_arrays, tiny_checkpoint) -> dict[str, Path]:
    """Inputs to break: a mask, a copy of the arrays, a copy of a finished run, a file."""
    root = tmp_path_factory.mktemp("reliability")
    mask = np.zeros((200, 200), np.uint8)
    mask[50:120, 60:150] = 255
    Image.fromarray(mask).save(root / "mask.png")
    (root / "a_file").write_text("not a folder")
    shutil.copytree(tiny_checkpoint.parent.parent, root / "run")
    return {"root": root, "mask": root / "mask.png", "arrays": inria_arrays, "ckpt": tiny_checkpoint,
            "file": root / "a_file", "run": root / "run"}


def damaged_arrays(place, tmp_path: Path, how: str) -> Path:
    out = tmp_path / f"arrays-{how}"
    shutil.copytree(place["arrays"], out)
    if how == "manifest-truncated":
        text = (out / "manifest.json").read_text()
        (out / "manifest.json").write_text(text[: len(text) // 2])
    elif how == "manifest-folder":
        (out / "manifest.json").unlink()
        (out / "manifest.json").mkdir()
    elif how == "manifest-list":
        (out / "manifest.json").write_text("[1, 2]")
    elif how == "images-truncated":
        data = (out / "train" / "images.npy").read_bytes()
        (out / "train" / "images.npy").write_bytes(data[: len(data) // 3])
        data = (out / "val" / "images.npy").read_bytes()
        (out / "val" / "images.npy").write_bytes(data[: len(data) // 3])
    return out


# -- numbers, choices and types: checked when the settings are made --------------------------------
BAD_OPTIONS = [
    (["synth", "{root}/s", "--workers", "0"], r"workers=0: must be at least 1"),
    (["synth", "{root}/s", "--size", "10"], r"size=10: must be at least 64"),
    (["synth", "{root}/s", "--per-city", "abc"], r"per_city='abc': expected an integer"),
    (["synth", "{root}/s", "--seed", "-1"], r"seed=-1"),
    (["synth", "{root}/s", "--cities", "paris"], r"unknown cities \['paris'\]"),
    (["pretransform", "{arrays}", "{root}/p", "--size", "0"], r"size=0: must be at least 8"),
    (["pretransform", "{arrays}", "{root}/p", "--crop", "0"], r"crop=0"),
    (["pretransform", "{arrays}", "{root}/p", "--grid", "abc"], r"grid='abc': expected an integer"),
    (["pretransform", "{arrays}", "{root}/p", "--min-density", "2"], r"min_density=2.*at most 1"),
    (["pretransform", "{arrays}", "{root}/p", "--min-density", "nan"], r"min_density=nan"),
    (["pretransform", "{arrays}", "{root}/p", "--workers", "0"], r"workers=0"),
    (["pretransform", "{root}/missing", "{root}/p"], r"missing"),
    (["generate", "{ckpt}", "{mask}", "--out", "{root}/g", "--batch-size", "0"], r"batch_size=0"),
    (["generate", "{ckpt}", "{mask}", "--out", "{root}/g", "--batch-size", "-3"], r"batch_size=-3"),
    (["generate", "{ckpt}", "{mask}", "--out", "{root}/g", "--scale", "nan"], r"scale=nan"),
    (["generate", "{ckpt}", "{mask}", "--out", "{root}/g", "--scale", "0"], r"scale=0.*more than 0"),
    (["generate", "{ckpt}", "{mask}", "--out", "{root}/g", "--preview-size", "-5"], r"preview_size=-5"),
    (["generate", "{ckpt}", "{mask}", "--out", "{root}/g", "--device", "tpu9"], r"device='tpu9'"),
    (["generate", "{ckpt}", "{arrays}", "--out", "{root}/g", "--mode", "resize", "--limit", "0"], r"limit=0"),
    (["generate", "{ckpt}", "{arrays}", "--out", "{root}/g", "--mode", "resize", "--limit", "-3"], r"limit=-3"),
    (["generate", "{ckpt}", "{mask}", "--out", "{root}/g", "--overlap", "1"], r"overlap=1.*less than 1"),
    (["generate", "{ckpt}", "{mask}", "--out", "{root}/g", "--mode", "tiles"], r"mode='tiles': choose from"),
    (["generate", "{ckpt}", "{mask}", "--out", "{root}/g", "--grid", "0", "--mode", "grid"], r"grid=0"),
    (["generate", "{ckpt}", "{mask}"], r"--out"),
    (["generate", "{ckpt}", "{mask}", "--out", "{root}/g", "--city", "vienna"], r"not conditioned on a city"),
    (["generate", "{ckpt}", "{mask}", "--out", "{root}/g", "--city", "all"], r"--city all: this model is not"),
    (["generate", "{ckpt}", "{mask}", "--out", "{root}/g", "--style-seed", "3"], r"no style code or noise"),
    (["generate", "{ckpt}", "{mask}", "--out", "{root}/g", "--style-seed", "-3"], r"style_seed=-3"),
    (["pretransform", "{arrays}", "{root}/p", "--labels", "(["], r"not a regular expression"),
    (["pretransform", "{arrays}", "{root}/p", "--labels", "{root}/none.csv"], r"none.csv: no such label file"),
    (["train", "{arrays}", "{root}/t", *TINY, "--set", "loss.mode_seeking=1"], r"needs a style code or noise"),
    (["train", "{arrays}", "{root}/t", *TINY, "--set", "model.condition=city", "--set", "model.labels=austin"],
     r"model.labels: the training split has unknown labels 'chicago'"),
    (["train", "{arrays}", "{root}/t", *TINY, "--set", "model.condition=town"], r"model.condition='town'"),
    (["evaluate", "{ckpt}", "{arrays}", "--out", "{root}/r.json", "--batch-size", "0"], r"batch_size=0"),
    (["evaluate", "{ckpt}", "{arrays}", "--out", "{root}/r.json", "--baselines", "mean"], r"baselines='mean'"),
    (["evaluate", "{ckpt}", "{arrays}", "--out", "{root}/r.json", "--kid-subsets", "0"], r"kid_subsets=0"),
    (["evaluate", "{ckpt}", "{arrays}", "--out", "{root}/r.json", "--limit", "0"], r"limit=0"),
    (["evaluate", "--out", "{root}/r.json"], r"give CKPT"),
    (["evaluate", "{ckpt}", "{arrays}", "--out", "{root}/r.json", "--generated", "{root}", "--real", "{root}"],
     r"folder mode .* takes no checkpoints"),
    (["evaluate", "--out", "{root}/r.json", "--generated", "{root}"], r"needs both --generated and --real"),
    (["evaluate", "{arrays}", "--out", "{root}/r.json", "--baselines", "untrained"], r"untrained baseline"),
    (["gallery", "{ckpt}", "{arrays}", "--out", "{root}/gal", "--per-city", "-1"], r"per_city=-1"),
    (["gallery", "{ckpt}", "{arrays}", "--out", "{root}/gal", "--batch-size", "0"], r"batch_size=0"),
    (["gallery", "{ckpt}", "{arrays}", "--out", "{root}/gal", "--indices", "1,x"], r"indices='x': expected an integer"),
    (["gallery", "{ckpt}", "{arrays}", "--out", "{root}/gal", "--indices", "999"], r"indices \[999\] out of"),
    (["gallery", "{arrays}", "--out", "{root}/gal"], r"at least one checkpoint"),
    (["train", "{arrays}", "{root}/t", *TINY, "--set", "train.lr=-1"], r"train.lr=-1.0: must be more than 0"),
    (["train", "{arrays}", "{root}/t", *TINY, "--set", "train.device=tpu9"], r"train.device='tpu9'"),
    (["train", "{arrays}", "{root}/t", *TINY, "--set", "train.epochs=ten"], r"train.epochs='ten'"),
    (["train", "{arrays}", "{root}/t", *TINY, "--set", "loss.l1_weight=0", "--set", "loss.gan_weight=0"],
     r"the generator has no loss"),
    (["train", "{arrays}", "{root}/t", *TINY, "--set", "model.generator=gan"], r"model.generator='gan'"),
    (["train", "{arrays}", "{root}/t", *TINY, "--set", "foo.bar=1"], r"unknown section 'foo'"),
    (["train", "{arrays}", "{root}/t", *TINY, "--set", "train.foo=1"], r"unknown train setting 'foo'"),
    (["train", "{arrays}", "{root}/t", *TINY, "--set", "train.batch_size=999"], r"batch_size 999 is larger"),
    (["train", "{arrays}", "{root}/t", "--preset", "nope"], r"preset='nope': choose from pix2pix, satgan, quick"),
    (["train", "{arrays}", "{root}/t", *TINY, "--resume", "{root}/nope.pt"], r"nope.pt: no such checkpoint"),
    (["info", "{root}/nothing"], r"nothing"),
    (["forge", "atlantis", "{root}/f"], r"atlantis"),
    (["forge", "all", "{root}/f", "--count", "0"], r"count=0"),
    (["forge", "all", "{root}/f", "--size", "10"], r"size=10"),
    (["forge", "all", "{root}/f", "--method", "shuffle"], r"method='shuffle'"),
    (["forge", "all", "{root}/f", "--strength", "2"], r"strength=2"),
    (["forge", "{root}/missing", "{root}/f", "--method", "rearrange"], r"missing: no such folder"),
    (["forge", "{arrays}", "{root}/f", "--method", "edit"], r"neither a dataset .* nor a folder of mask files"),
    (["synthesize", "{ckpt}", "{root}/missing", "{root}/s"], r"missing: no such folder"),
    (["synthesize", "{ckpt}", "{root}", "{root}/s", "--variants", "0"], r"variants=0"),
    (["synthesize", "{ckpt}", "{root}", "{root}/s", "--layout", "coco"], r"layout='coco'"),
    (["synthesize", "{ckpt}", "{root}", "{root}/s"], r"inside the masks folder"),
    (["synthesize", "{ckpt}", "{root}", "{root}/../elsewhere", "--city", "vienna"], r"not conditioned on a city"),
    (["segbench", "{root}/missing", "{root}/b"], r"missing"),
    (["segbench", "{arrays}", "{root}/b", "--steps", "0"], r"steps=0"),
    (["segbench", "{arrays}", "{root}/b", "--fractions", "0"], r"fractions"),
    (["segbench", "{arrays}", "{root}/b", "--synthetic", "{root}/run", "--crop", "32"], r"not a pretransformed folder"),
    (["segbench", "{arrays}", "{root}/b"], r"72 px, smaller than crop=128"),
]


@pytest.mark.parametrize("argv,culprit", BAD_OPTIONS, ids=[" ".join(a[:1] + a[-2:]) for a, _ in BAD_OPTIONS])
def test_bad_options(place, capsys, argv, culprit):
    before = snapshot(place["root"])
    fails(capsys, [a.format(**place) for a in argv], culprit)
    assert snapshot(place["root"]) == before, "a refused command wrote something"


# -- damaged inputs ------------------------------------------------------------------------------
@pytest.mark.parametrize("how,culprit", [
    ("manifest-truncated", r"manifest.json: damaged"),
    ("manifest-folder", r"manifest.json.*is not a file"),
    ("manifest-list", r"manifest.json: not a satgan manifest"),
    ("images-truncated", r"images.npy: (cannot be read|holds)"),
])
@pytest.mark.parametrize("command", ["info", "train", "generate", "pretransform"])
def test_damaged_pretransformed_folders(place, capsys, tmp_path, how, culprit, command):
    arrays = damaged_arrays(place, tmp_path, how)
    before = snapshot(arrays)
    argv = {"info": ["info", arrays],
            "train": ["train", arrays, tmp_path / "run", *TINY],
            "generate": ["generate", place["ckpt"], arrays, "--out", tmp_path / "g", "--mode", "resize"],
            "pretransform": ["pretransform", json.loads((place["arrays"] / "manifest.json").read_text())["settings"]
                             ["source"], arrays, "--grid", "2", "--size", "72", "--crop", "64"],
            }[command]
    if command == "pretransform" and how == "images-truncated":
        pytest.skip("a rerun with the same settings rebuilds damaged arrays: nothing to refuse")
    fails(capsys, argv, culprit)
    assert snapshot(arrays) == before
    assert not (tmp_path / "run").exists() and not (tmp_path / "g").exists()


def test_config_file_of_wrong_types(place, capsys, tmp_path):
    for text, culprit in (('{"train": {"epochs": "ten"}}', r"bad.json: train.epochs='ten': expected an integer"),
                          ('{"train": {"epochs": 3', r"bad.json: cannot read the config file"),
                          ("[1, 2]", r"bad.json: expected a JSON object"),
                          ('{"model": {"norm": "group"}}', r"bad.json: model.norm='group'")):
        (tmp_path / "bad.json").write_text(text)
        fails(capsys, ["train", place["arrays"], tmp_path / "run", "--preset", "quick", "--config",
                       tmp_path / "bad.json"], culprit)
    assert not (tmp_path / "run").exists()


# -- outputs that cannot be written --------------------------------------------------------------
@pytest.mark.parametrize("command", ["synth", "generate", "evaluate", "gallery", "train", "pretransform", "forge",
                                     "synthesize", "segbench"])
@pytest.mark.parametrize("where", ["is-file", "parent-is-file"])
def test_output_paths_that_are_files(place, capsys, command, where):
    out = place["file"] if where == "is-file" else place["file"] / "sub"
    if command == "evaluate" and where == "is-file":
        pytest.skip("a report may replace a file; --out as a folder is tested below")
    argv = {"synth": ["synth", out, "--size", "64"],
            "generate": ["generate", place["ckpt"], place["mask"], "--out", out],
            "evaluate": ["evaluate", place["ckpt"], place["arrays"], "--out", out / "r.json"],
            "gallery": ["gallery", place["ckpt"], place["arrays"], "--out", out],
            "train": ["train", place["arrays"], out, *TINY],
            "pretransform": ["pretransform", place["arrays"], out],
            "forge": ["forge", "all", out, "--size", "64", "--count", "1"],
            "synthesize": ["synthesize", place["ckpt"], place["arrays"].parent, out],
            "segbench": ["segbench", place["arrays"], out, "--steps", "1"]}[command]
    before = snapshot(place["root"])
    fails(capsys, argv, re.escape(str(place["file"])) + r".*(is a file|not a folder)")
    assert snapshot(place["root"]) == before


def test_evaluate_out_that_is_a_folder_fails_before_scoring(place, capsys, tmp_path, monkeypatch):
    import satgan.evaluation.report as ev

    monkeypatch.setattr(ev, "evaluate_models", lambda *a: pytest.fail("scored before checking --out"))
    fails(capsys, ["evaluate", place["ckpt"], place["arrays"], "--out", tmp_path], r"is a folder")


def test_generate_out_inside_the_pretransformed_input(place, capsys, tmp_path):
    arrays = damaged_arrays(place, tmp_path, "none")
    before = snapshot(arrays)
    fails(capsys, ["generate", place["ckpt"], arrays, "--out", arrays, "--mode", "resize"], r"inside the input folder")
    fails(capsys, ["generate", place["ckpt"], arrays, "--out", arrays / "gen", "--mode", "resize"], r"inside the input")
    assert snapshot(arrays) == before


def test_read_only_output_is_one_line(place, capsys, tmp_path, monkeypatch):
    import satgan.atomic

    def refuse(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", str(dst))

    monkeypatch.setattr(satgan.atomic.os, "replace", refuse)
    fails(capsys, ["generate", place["ckpt"], place["mask"], "--out", tmp_path / "g", "--scale", "1"],
          r"mask.(tif|preview.jpg): the file system is read-only")
    assert not [p for p in (tmp_path / "g").rglob("*") if p.is_file()], "a temporary file was left behind"


def test_full_disk_during_a_checkpoint_save_keeps_the_previous_one(place, capsys, tmp_path, monkeypatch):
    import satgan.checkpoint

    run = tmp_path / "run"
    shutil.copytree(place["run"], run)
    last = run / "checkpoints" / "last.pt"
    before = last.read_bytes()

    def full(obj, path):
        Path(path).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1234 vs 1000")

    monkeypatch.setattr(satgan.checkpoint.torch, "save", full)
    fails(capsys, ["train", place["arrays"], run, *TINY[:-4], "--set", "train.epochs=2", "--set",
                   "train.val_samples=2", "--resume", "auto"],
          r"last.pt: cannot save the checkpoint \(the disk is full\); the previous last.pt is intact")
    assert last.read_bytes() == before
    assert not list(run.glob("checkpoints/.*tmp*")), "the partial file was left behind"


# -- runs that must not be lost -------------------------------------------------------------------
def test_overwrite_with_a_settings_error_keeps_the_old_run(place, capsys, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(place["run"], run)
    before = snapshot(run)
    fails(capsys, ["train", place["arrays"], run, *TINY, "--set", "loss.l1_weight=0", "--set", "loss.gan_weight=0",
                   "--overwrite"], r"no loss")
    fails(capsys, ["train", place["arrays"], run, *TINY, "--set", "train.batch_size=999", "--overwrite"],
          r"larger than the train split")
    assert snapshot(run) == before


def test_resume_and_overwrite_together_are_refused(place, capsys, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(place["run"], run)
    before = snapshot(run)
    fails(capsys, ["train", place["arrays"], run, *TINY, "--resume", "auto", "--overwrite"], r"contradict")
    assert snapshot(run) == before


def test_resume_where_every_checkpoint_is_corrupt_is_refused(place, capsys, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(place["run"], run)
    (run / "checkpoints" / "last.pt").write_bytes(b"garbage")
    before = snapshot(run)
    fails(capsys, ["train", place["arrays"], run, *TINY, "--resume", "auto"],
          r"no checkpoint there can be read \(last.pt\).*--overwrite")
    assert snapshot(run) == before


def test_a_failed_fresh_run_leaves_nothing_behind(place, capsys, tmp_path):
    fails(capsys, ["train", place["arrays"], tmp_path / "run", *TINY, "--set", "train.batch_size=999"], r"larger")
    assert not (tmp_path / "run").exists()
    assert main(["train", str(place["arrays"]), str(tmp_path / "run"), *TINY]) == 0  # the corrected rerun


def test_a_failed_gallery_keeps_the_earlier_one(place, capsys, tmp_path, monkeypatch):
    import satgan.gallery.files

    out = tmp_path / "gal"
    assert main(["gallery", str(place["ckpt"]), str(place["arrays"]), "--out", str(out), "--per-city", "1",
                 "--no-mask-iou"]) == 0
    before = snapshot(out)
    assert before

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "gallery.html"))

    monkeypatch.setattr(satgan.gallery.files, "write_html", no_space)
    fails(capsys, ["gallery", place["ckpt"], place["arrays"], "--out", out, "--per-city", "2", "--seed", "3",
                   "--no-mask-iou"],
          r"gallery.html: no space left on the disk")
    assert snapshot(out) == before


# -- nothing outside --out ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../escaped", "/abs/escaped", "a/b", "..", "."])
@pytest.mark.parametrize("command", ["gallery", "evaluate"])
def test_model_names_cannot_leave_out(place, capsys, tmp_path, name, command):
    out = tmp_path / "deep" / "out"
    spec = f"{name}={place['ckpt']}"
    argv = (["gallery", spec, place["arrays"], "--out", out] if command == "gallery"
            else ["evaluate", spec, place["arrays"], "--out", out / "r.json"])
    fails(capsys, argv, r"model name .*letters, digits")
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


# -- checkpoints and files that are not what they claim ---------------------------------------------
def test_checkpoints_that_are_not_checkpoints(place, capsys, tmp_path):
    good = torch.load(place["ckpt"], weights_only=True)
    cases = []
    (tmp_path / "truncated.pt").write_bytes(place["ckpt"].read_bytes()[:1000])
    cases.append(("truncated.pt", r"truncated.pt: not a readable checkpoint"))
    torch.save({**good, "config": "a string"}, tmp_path / "string.pt")
    cases.append(("string.pt", r"string.pt: the config must be a mapping"))
    torch.save({**good, "config": {**good["config"], "model": {**good["config"]["model"], "shiny": 1}}},
               tmp_path / "unknown_key.pt")
    cases.append(("unknown_key.pt", r"unknown_key.pt: unknown ModelConfig setting\(s\) \['shiny'\]"))
    torch.save({**good, "config": {**good["config"], "model": {**good["config"]["model"], "generator": "gan"}}},
               tmp_path / "unknown_gen.pt")
    cases.append(("unknown_gen.pt", r"unknown_gen.pt: model.generator='gan'"))
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    cases.append(("foreign.pt", r"foreign.pt: not a satgan checkpoint"))
    for name, culprit in cases:
        fails(capsys, ["generate", tmp_path / name, place["mask"], "--out", tmp_path / "g"], culprit)
    assert not (tmp_path / "g").exists()


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/satgan-payload-ran"),))


def test_a_malicious_checkpoint_never_runs(place, capsys, tmp_path):
    marker = Path("/tmp/satgan-payload-ran")
    marker.unlink(missing_ok=True)
    torch.save({"format": 2, "config": {}, "generator": _Payload()}, tmp_path / "evil.pt")
    line = fails(capsys, ["generate", tmp_path / "evil.pt", place["mask"], "--out", tmp_path / "g"],
                 r"evil.pt: not a satgan checkpoint: it holds objects a checkpoint never holds")
    assert "weights_only=False" not in line
    assert not marker.exists()


def test_masks_that_generation_cannot_take_are_named(place, capsys, tmp_path):
    Image.fromarray(np.zeros((40, 90), np.uint8)).save(tmp_path / "small.png")
    fails(capsys, ["generate", place["ckpt"], tmp_path / "small.png", "--out", tmp_path / "g", "--scale", "1"],
          r"small.png: .*smaller than the 64-pixel window")
    fails(capsys, ["generate", place["ckpt"], tmp_path / "small.png", "--out", tmp_path / "g", "--mode", "grid",
                   "--grid", "60"], r"small.png: .*empty tiles")
    fails(capsys, ["generate", place["ckpt"], tmp_path / "small.png", "--out", tmp_path / "g", "--window", "100"],
          r"window 100 must be a positive multiple of 64")
    assert not (tmp_path / "g").exists()  # nothing left behind, not even an empty folder


def test_a_tiff_claiming_a_huge_size_is_refused_before_reading(place, capsys, tmp_path):
    path = tmp_path / "huge.tif"
    tifffile.imwrite(path, np.zeros((16, 16), np.uint8))
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(400_000)
        tif.pages[0].tags["ImageLength"].overwrite(400_000)
    fails(capsys, ["generate", place["ckpt"], path, "--out", tmp_path / "g"],
          r"huge.tif: too large to hold in memory \(400000x400000 pixels")


def test_a_broken_tiff_gives_one_line_and_no_library_logging(place, capsys, tmp_path):
    path = tmp_path / "broken.tif"
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, np.zeros((64, 64), np.uint8))
    data = bytearray(good.read_bytes())
    data[8:40] = b"\xff" * 32
    path.write_bytes(bytes(data))
    fails(capsys, ["generate", place["ckpt"], path, "--out", tmp_path / "g"], r"broken.tif: cannot be read")
    # fails() has read stderr: exactly one line, so tifffile's own log lines were silenced


# -- notebooks: papermill parameters go through the same checks ------------------------------------
@pytest.mark.slow
def test_notebook_parameters_are_checked(place, tmp_path):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from tests.conftest import REPO

    for notebook, params, culprit in (
        ("02_pretransform", {"DATA_DIR": str(place["arrays"]), "OUT_DIR": str(tmp_path / "p"), "GRID": "abc"},
         r"SatganError.*grid='abc': expected an integer"),
        ("05_gallery", {"DATA_DIR": str(place["arrays"]), "CHECKPOINTS": [str(place["ckpt"])],
                        "OUT_DIR": str(tmp_path / "gal"), "PER_CITY": -1},
         r"SatganError.*per_city=-1: must be at least 0"),
    ):
        with pytest.raises(PapermillExecutionError) as info:
            papermill.execute_notebook(str(REPO / "notebooks" / f"{notebook}.ipynb"), str(tmp_path / "out.ipynb"),
                                       parameters=params, kernel_name="python3", progress_bar=False)
        assert re.search(culprit, f"{info.value.ename}: {info.value.evalue}"), info.value.evalue
    assert not (tmp_path / "p").exists() and not (tmp_path / "gal").exists()


# -- publishing is all or nothing ------------------------------------------------------------------
def test_a_gallery_blocked_by_a_file_keeps_the_earlier_one(place, capsys, tmp_path):
    out = tmp_path / "gal"
    assert main(["gallery", f"good={place['ckpt']}", str(place["arrays"]), "--out", str(out), "--per-city", "1",
                 "--no-mask-iou"]) == 0
    (out / "files" / "bad").write_text("a file where the model 'bad' needs a folder")
    before = snapshot(out)
    fails(capsys, ["gallery", f"bad={place['ckpt']}", place["arrays"], "--out", out, "--per-city", "1",
                   "--no-mask-iou"],
          r"files/bad is a file where a folder is needed.*nothing was changed")
    assert snapshot(out) == before
    assert not [p for p in out.iterdir() if "satgan-staging" in p.name]


def test_a_publish_that_fails_midway_puts_the_earlier_files_back(tmp_path, monkeypatch):
    import os

    import satgan.atomic
    from satgan.atomic import staged_folder

    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    for name in ("a.txt", "sub/b.txt", "sub/c.txt"):
        (out / name).write_text(f"old {name}")
    (out / satgan.atomic.PUBLISHED).write_text('["a.txt", "sub/b.txt", "sub/c.txt"]')  # an earlier publish's
    before = snapshot(out)
    real_replace, moved = os.replace, []

    def failing_replace(src, dst):
        if "satgan-staging" in str(src) and "-replaced" not in str(src) + str(dst):  # a staged file going out
            moved.append(dst)
            if len(moved) == 3:
                raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(satgan.atomic.os, "replace", failing_replace)
    with pytest.raises(OSError), staged_folder(out) as stage:
        (stage / "sub").mkdir()
        for name in ("a.txt", "sub/b.txt", "sub/c.txt", "sub/new.txt"):
            (stage / name).write_text(f"new {name}")
    assert len(moved) == 3  # two files had been replaced when the third move failed
    assert snapshot(out) == before


# -- what a user reads: satgan's one line, nothing from the libraries above it ----------------------
def test_a_raw_pickle_checkpoint_gives_one_line_without_torch_warnings(place, capsys, tmp_path):
    import pickle

    with open(tmp_path / "raw.pt", "wb") as f:  # protocol 4: torch warns about it before refusing
        pickle.dump({"format": 2, "config": {}, "generator": _Payload()}, f, protocol=4)
    fails(capsys, ["generate", tmp_path / "raw.pt", place["mask"], "--out", tmp_path / "g"],
          r"raw.pt: not a satgan checkpoint")
    assert not Path("/tmp/satgan-payload-ran").exists()


def test_a_tiff_cut_short_gives_pretransform_one_line(capsys, tmp_path):
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    geo = [(33550, "d", 3, (0.3, 0.3, 0.0), False), (33922, "d", 6, (0, 0, 0, 1, 2, 0), False)]
    for i in range(2):
        tifffile.imwrite(src / "images" / f"t{i}.tif", np.full((64, 64, 3), 90, np.uint8), compression="zlib",
                         extratags=geo)
        tifffile.imwrite(src / "masks" / f"t{i}.tif", np.zeros((64, 64), np.uint8))
    cut = src / "images" / "t1.tif"
    cut.write_bytes(cut.read_bytes()[:300])  # the tags' values lie past the end
    try:
        rc = main(["pretransform", str(src), str(tmp_path / "arrays")])
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2
    assert [line for line in err.splitlines() if "t1.tif" in line or "Tiff" in line] == \
        [line for line in err.splitlines() if line.startswith("satgan: error: ")], err
    assert "t1.tif: cannot be read" in err and "raised" not in err
