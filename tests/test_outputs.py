"""Outputs never clobber inputs (issue 35), for every command that writes.

Class 1: an output that is one of the command's inputs (through a link too), lies inside an
input folder or holds one, is refused even with ``--overwrite``; an existing file of another
kind (a checkpoint where a report or a segmenter goes) only without it. Class 2: staging
folders are named and marked as satgan's; folders that merely carry such names (or the old
``.OUT.partial``/``.OUT.old``) are never deleted. Each refusal is one ``satgan: error:`` line,
exit status 2, and every input byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from satgan import SatganWarning
from satgan.atomic import STAGING, STAGING_MARK, make_staging, staged_folder, sweep_staging
from satgan.cli import main
from satgan.config import ForgeConfig
from satgan.data.arrays import load_manifest
from satgan.data.forge import forge
from satgan.data.subset import subset_folder
from satgan.evaluation.report import is_report
from satgan.segmentation.segmenters import is_segmenter_file, load_segmenter
from tests.conftest import fails, write_pair_folder
from tests.test_reliability import TINY

SEGMENTER = ["--width", "4", "--steps", "1", "--batch-size", "2", "--crop", "32", "--device", "cpu"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (links as what they point to) with a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def place(tmp_path_factory, inria_arrays, tiny_checkpoint, tiny_segmenter) -> dict[str, Path]:
    """Copies of every kind of input, so that a check that failed to refuse harms no other test."""
    root = tmp_path_factory.mktemp("outputs")
    shutil.copytree(inria_arrays, root / "arrays")
    shutil.copy(tiny_checkpoint, root / "ckpt.pt")
    shutil.copy(tiny_segmenter, root / "seg.pt")
    (root / "masks").mkdir()
    mask = np.zeros((80, 80), np.uint8)
    mask[20:50, 10:60] = 255
    Image.fromarray(mask).save(root / "masks" / "austin1.png")
    forge(ForgeConfig(source="all", out=str(root / "forge"), count=2, size=64), progress=False)
    write_pair_folder(root / "pairs", [0.2, 0.3])
    (root / "link.pt").symlink_to(root / "ckpt.pt")
    return {"root": root, "arrays": root / "arrays", "ckpt": root / "ckpt.pt", "seg": root / "seg.pt",
            "masks": root / "masks", "forge": root / "forge", "pairs": root / "pairs", "link": root / "link.pt"}


# == class 1: an output that is an input, or a file of another kind ================================
FILE_OUTPUTS = [  # (argv, culprit): evaluate's --out and segmenter's --out onto an input
    (["evaluate", "{ckpt}", "{arrays}", "--out", "{ckpt}"], r"--out \S*ckpt.pt is the checkpoint \S*ckpt.pt"),
    (["evaluate", "{ckpt}", "{arrays}", "--out", "{ckpt}", "--overwrite"], r"is the checkpoint .*destroy"),
    (["evaluate", "{ckpt}", "{arrays}", "--out", "{link}"], r"link.pt is the checkpoint \S*ckpt.pt \(a link to"),
    (["evaluate", "{link}", "{arrays}", "--out", "{ckpt}", "--overwrite"], r"ckpt.pt is the checkpoint \S*link.pt"),
    (["evaluate", "{ckpt}", "{arrays}", "--out", "{arrays}/manifest.json"],
     r"manifest.json is a file of the data folder \S*arrays"),
    (["evaluate", "{ckpt}", "{arrays}", "--out", "{arrays}/manifest.json", "--overwrite"],
     r"manifest.json is a file of the data folder"),
    (["evaluate", "{ckpt}", "{arrays}", "--out", "{arrays}/train/images.npy", "--overwrite"],
     r"images.npy is a file of the data folder"),
    (["evaluate", "{ckpt}", "{arrays}", "--out", "{seg}", "--segmenter", "{seg}", "--overwrite"],
     r"seg.pt is the segmenter"),
    (["evaluate", "--generated", "{masks}", "--real", "{masks}", "--out", "{masks}/austin1.png", "--overwrite"],
     r"austin1.png is a file of the generated folder"),
    (["segmenter", "{arrays}", "--out", "{arrays}/manifest.json", "--overwrite", *SEGMENTER],
     r"manifest.json is a file of the data folder"),
    (["segmenter", "{arrays}", "--out", "{ckpt}", *SEGMENTER],
     r"ckpt.pt: exists and is not a segmenter saved by satgan; pass --overwrite"),
    (["segmenter", "{arrays}", "--out", "{link}", *SEGMENTER], r"link.pt: exists and is not a segmenter"),
    (["evaluate", "{ckpt}", "{arrays}", "--out", "{seg}"], r"seg.pt: exists and is not a report of satgan evaluate"),
]


@pytest.mark.parametrize("argv, culprit", FILE_OUTPUTS, ids=[" ".join(a[:1] + a[3:]) for a, _ in FILE_OUTPUTS])
def test_a_file_output_never_replaces_an_input(place, capsys, monkeypatch, argv, culprit):
    import satgan.evaluation.report as report

    monkeypatch.setattr(report, "evaluate_models", lambda *a: pytest.fail("scored before checking --out"))
    before = snapshot(place["root"])
    fails(capsys, [a.format(**place) for a in argv], culprit)
    assert snapshot(place["root"]) == before


FOLDER_OUTPUTS = [  # (argv, culprit): every command writing a folder, onto, inside or around an input folder
    (["gallery", "{ckpt}", "{arrays}", "--out", "{arrays}"], r"is the data folder .*must not go inside"),
    (["gallery", "{ckpt}", "{arrays}", "--out", "{arrays}/gallery"], r"lies inside the data folder \S*arrays"),
    (["gallery", "{ckpt}", "{arrays}", "--out", "{root}"], r"holds the data folder \S*arrays"),
    (["gallery", "{ckpt}", "{arrays}", "--out", "{ckpt}"], r"is the checkpoint"),
    (["generate", "{ckpt}", "{masks}", "--out", "{masks}/gen"], r"lies inside the input folder \S*masks"),
    (["generate", "{ckpt}", "{masks}", "--out", "{root}"], r"holds the input folder \S*masks"),
    (["generate", "{ckpt}", "{masks}/austin1.png", "--out", "{masks}/austin1.png"], r"is the input mask"),
    (["generate", "{ckpt}", "{masks}", "--out", "{link}"], r"is the checkpoint \S*ckpt.pt \(a link to"),
    (["synthesize", "{ckpt}", "{forge}", "{forge}"], r"dataset folders would hold the masks"),
    (["synthesize", "{ckpt}", "{masks}", "{masks}"], r"is the masks folder .*must not go inside the masks folder"),
    (["synthesize", "{ckpt}", "{forge}", "{forge}/AerialImageDataset/syn"], r"lies inside the masks folder"),
    (["synthesize", "{ckpt}", "{forge}", "{root}"], r"holds the masks folder \S*forge"),
    (["segbench", "{arrays}", "{arrays}/bench", "--steps", "1"], r"lies inside the real folder"),
    (["segbench", "{arrays}", "{root}", "--steps", "1"], r"holds the real folder"),
    (["segbench", "{arrays}", "{forge}", "--steps", "1", "--synthetic", "{forge}/AerialImageDataset"],
     r"holds the synthetic folder"),
    (["subset", "{arrays}", "{arrays}", "--count", "2", "--overwrite"], r"OUT \S*arrays is the source folder"),
    (["subset", "{arrays}", "{arrays}/few", "--count", "2"], r"lies inside the source folder"),
    (["subset", "{arrays}", "{root}", "--count", "2", "--overwrite"], r"holds the source folder"),
    (["pretransform", "{pairs}", "{pairs}/arrays", "--size", "64", "--crop", "64"], r"lies inside the source folder"),
    (["pretransform", "{pairs}", "{root}", "--size", "64", "--crop", "64", "--overwrite"],
     r"holds the source folder \S*pairs"),
    (["forge", "{forge}", "{forge}", "--method", "edit", "--count", "1", "--size", "64", "--overwrite"],
     r"holds the source masks' folder \S*gt"),
    (["forge", "{forge}", "{forge}/AerialImageDataset/train/gt/new", "--method", "rearrange", "--size", "64"],
     r"lies inside the source masks' folder"),
    (["train", "{arrays}", "{arrays}/run", *TINY], r"RUN_DIR \S*run lies inside the data folder"),
    (["train", "{arrays}", "{arrays}", *TINY, "--overwrite"], r"RUN_DIR \S*arrays is the data folder"),
    (["train", "{arrays}", "{root}", *TINY, "--overwrite"], r"holds the data folder"),
]


@pytest.mark.parametrize("argv, culprit", FOLDER_OUTPUTS,
                         ids=[f"{a[0]}-{i}" for i, (a, _) in enumerate(FOLDER_OUTPUTS)])
def test_a_folder_output_never_is_holds_or_lies_inside_an_input(place, capsys, argv, culprit):
    before = snapshot(place["root"])
    fails(capsys, [a.format(**place) for a in argv], culprit)
    assert snapshot(place["root"]) == before
    assert not [p for p in place["root"].rglob(f"*{STAGING}*")], "a staging folder was left behind"


def test_an_existing_file_of_another_kind_is_replaced_only_with_overwrite(place, capsys, tmp_path):
    """evaluate: notes where the report goes; segmenter: a generator checkpoint where the segmenter goes.
    Each is refused, then replaced with --overwrite; a rerun onto its own output needs no --overwrite."""
    report = tmp_path / "r.json"
    report.write_text("my notes, not a report\n")
    evaluate = ["evaluate", place["ckpt"], place["arrays"], "--out", report, "--limit", "2", "--no-mask-iou",
                "--kid-subsets", "2", "--device", "cpu"]
    fails(capsys, evaluate, r"r.json: exists and is not a report of satgan evaluate; pass --overwrite")
    assert report.read_text() == "my notes, not a report\n"
    assert main([str(a) for a in [*evaluate, "--overwrite"]]) == 0
    assert is_report(report)
    assert main([str(a) for a in evaluate]) == 0  # its own report: rewritten as before
    assert is_report(report) and not is_report(place["ckpt"]) and not is_report(place["arrays"] / "manifest.json")

    other = tmp_path / "other-generator.pt"
    shutil.copy(place["ckpt"], other)
    segmenter = ["segmenter", place["arrays"], "--out", other, *SEGMENTER]
    fails(capsys, segmenter, r"other-generator.pt: exists and is not a segmenter saved by satgan")
    assert other.read_bytes() == place["ckpt"].read_bytes()
    assert main([str(a) for a in [*segmenter, "--overwrite"]]) == 0
    assert is_segmenter_file(other) and load_segmenter(other, "cpu").info["settings"]["width"] == 4
    assert main([str(a) for a in segmenter]) == 0  # its own segmenter: saved again
    assert not is_segmenter_file(place["ckpt"]) and not is_segmenter_file(report)
    capsys.readouterr()


def test_overwrite_is_an_option_of_evaluate_and_segmenter(capsys):
    for command in ("evaluate", "segmenter"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--overwrite" in capsys.readouterr().out


# == class 2: staging names and nested folders ======================================================
def test_subset_with_its_source_inside_out_keeps_the_source(place, capsys, tmp_path):
    """The hostile pass's example: OUT a pretransformed folder, SRC inside it, --overwrite."""
    out = tmp_path / "out"
    shutil.copytree(place["arrays"], out)
    shutil.copytree(place["arrays"], out / "src")
    before = snapshot(out)
    fails(capsys, ["subset", out / "src", out, "--count", "2", "--overwrite"], r"OUT \S*out holds the source folder")
    fails(capsys, ["subset", out, out / "src" / "few", "--count", "2"], r"lies inside the source folder")
    assert snapshot(out) == before


def test_user_folders_with_staging_like_names_survive(place, tmp_path):
    """The old staging names (.OUT.partial, .OUT.old) are a user's now; a folder named like the new
    ones but without satgan's mark is left alone and named in a warning."""
    out = tmp_path / "few"
    mine = {name: tmp_path / name for name in (".few.partial", ".few.old", f".few.{STAGING}-mine")}
    for folder in mine.values():
        folder.mkdir()
        (folder / "notes.txt").write_text("mine")
    with pytest.warns(SatganWarning, match=r"named like satgan's staging"):
        subset_folder(place["arrays"], out, 2)
    with pytest.warns(SatganWarning, match=rf"\.few\.{STAGING}-mine: named like satgan's staging but not made"):
        subset_folder(place["arrays"], out, 3, overwrite=True)
    assert load_manifest(out)["splits"]["train"]["count"] == 3
    for folder in mine.values():
        assert (folder / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["few", *mine])  # no staging of its own left

    gallery = tmp_path / "gal"
    user = gallery / f".{STAGING}-notes"
    user.mkdir(parents=True)
    (user / "notes.txt").write_text("mine")
    (gallery / ".staging-1").mkdir()  # the old in-folder staging name
    (gallery / ".staging-1" / "a.txt").write_text("mine")
    with pytest.warns(SatganWarning, match=rf"{STAGING}-notes: named like satgan's staging"), \
            staged_folder(gallery) as stage:
        (stage / "page.html").write_text("new")
    assert (gallery / "page.html").read_text() == "new"
    assert (user / "notes.txt").read_text() == "mine" and (gallery / ".staging-1" / "a.txt").read_text() == "mine"


def _dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def test_only_marked_staging_of_a_dead_run_is_swept(tmp_path):
    """A staging folder satgan made in a run that died goes; one holding the earlier files an
    interrupted publish moved aside stays (named); one of a live run stays silently."""
    dead = make_staging(tmp_path)
    (dead / "files").mkdir()
    (dead / "files" / "half.jpg").write_text("half-written")
    kept = make_staging(tmp_path)
    (kept / "files-replaced").mkdir()
    (kept / "files-replaced" / "gallery.html").write_text("the earlier page")
    for folder in (dead, kept):
        mark = json.loads((folder / STAGING_MARK).read_text())
        (folder / STAGING_MARK).write_text(json.dumps({**mark, "pid": _dead_pid()}))
    live = make_staging(tmp_path)  # this process's: at work
    with pytest.warns(SatganWarning, match=r"left the earlier files it was replacing there \(files-replaced\)"):
        sweep_staging(tmp_path, precious=("files-replaced",))
    assert not dead.exists() and live.exists()
    assert (kept / "files-replaced" / "gallery.html").read_text() == "the earlier page"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shutil.rmtree(kept)
        sweep_staging(tmp_path)  # the live one: no warning
    assert live.exists()


def test_pretransform_never_uses_or_deletes_folders_it_did_not_write(place, capsys, tmp_path):
    out = tmp_path / "p"
    (out / ".parts").mkdir(parents=True)
    (out / ".parts" / "notes.txt").write_text("mine")
    argv = ["pretransform", place["pairs"], out, "--size", "64", "--crop", "64"]
    fails(capsys, argv, r"\.parts: not a staging folder of satgan pretransform.*move it away")
    fails(capsys, [*argv, "--overwrite"], r"\.parts: not a staging folder")
    assert (out / ".parts" / "notes.txt").read_text() == "mine"

    done = tmp_path / "done"
    assert main([str(a) for a in argv[:2]] + [str(done), *map(str, argv[3:])]) == 0
    (done / "manifest.json").unlink()
    (done / "manifest.json").mkdir()
    (done / "manifest.json" / "notes.txt").write_text("mine")
    fails(capsys, ["pretransform", place["pairs"], done, "--size", "72", "--crop", "64", "--overwrite"],
          r"manifest.json: is not a file; satgan replaces only a manifest it wrote")
    assert (done / "manifest.json" / "notes.txt").read_text() == "mine"


def test_reruns_onto_their_own_outputs_still_work(place, capsys, tmp_path):
    """A forge and a gallery published twice into the same folder; a subset replaced by itself."""
    forged = tmp_path / "forged"
    for _ in range(2):
        assert main(["forge", "all", str(forged), "--count", "1", "--size", "64", "--overwrite"]) == 0
    gallery = tmp_path / "gal"
    for seed in ("0", "1"):
        assert main(["gallery", str(place["ckpt"]), str(place["arrays"]), "--out", str(gallery), "--per-city", "1",
                     "--no-mask-iou", "--seed", seed, "--scenes", "0", "--device", "cpu"]) == 0
    assert (gallery / "gallery.html").is_file()
    few = tmp_path / "few"
    for count in ("2", "3"):
        assert main(["subset", str(place["arrays"]), str(few), "--count", count, "--overwrite"]) == 0
    assert not [p for p in tmp_path.rglob(f"*{STAGING}*")], "a staging folder was left behind"
    capsys.readouterr()


# == the library checks, not only the command line =================================================
def test_train_forge_and_segbench_check_their_inputs_in_the_library(place):
    """A notebook calls the library: the same refusals without the command line."""
    from satgan import SatganError
    from satgan.config import SegbenchConfig, make_config
    from satgan.synthetic.segbench import segbench
    from satgan.training.trainer import train

    before = snapshot(place["root"])
    cfg = make_config("quick", None, ["data.crop=64", "model.ngf=8", "model.ndf=4", "train.epochs=1",
                                      "train.workers=0", "model.noise=0", "loss.seg_weight=0"])
    with pytest.raises(SatganError, match=r"RUN_DIR \S*arrays is the data folder"):
        train(place["arrays"], place["arrays"], cfg, overwrite=True)
    with pytest.raises(SatganError, match=r"holds the source masks' folder"):
        forge(ForgeConfig(source=str(place["forge"]), out=str(place["forge"]), method="edit", count=1, size=64,
                          overwrite=True), progress=False)
    with pytest.raises(SatganError, match=r"lies inside the real folder"):
        segbench(SegbenchConfig(real=str(place["arrays"]), out=str(place["arrays"] / "bench"), steps=1),
                 progress=False)
    assert snapshot(place["root"]) == before


# == class 3: files of the same names that satgan did not write ====================================
def test_synth_never_replaces_images_it_did_not_write(capsys, tmp_path):
    """A real Inria folder has the same file names as the synthetic one (austin1.tif)."""
    real = tmp_path / "inria" / "AerialImageDataset" / "train" / "images"
    real.mkdir(parents=True)
    (real / "austin1.tif").write_bytes(b"a real photograph")
    argv = ["synth", tmp_path / "inria", "--cities", "austin", "--per-city", "1", "--size", "64",
            "--test-per-city", "0"]
    fails(capsys, argv, r"austin1.tif: already there and not written by satgan synth; .*--overwrite")
    assert (real / "austin1.tif").read_bytes() == b"a real photograph"
    assert not (real.parent / "gt").exists(), "nothing is written before the check"
    (real / "austin1.tif").unlink()
    for _ in range(2):  # its own files it replaces (same seed, same bytes)
        assert main([str(a) for a in argv]) == 0
    assert main([str(a) for a in [*argv, "--cities", "austin,chicago"]]) == 0
    (real / "chicago1.tif").write_bytes(b"mine")
    assert main([str(a) for a in [*argv, "--cities", "chicago", "--overwrite"]]) == 0
    assert (real / "chicago1.tif").read_bytes() != b"mine"
    capsys.readouterr()


@pytest.mark.parametrize("mode, mine", [("resize", "austin1.png"), ("grid", "austin1-grid.png"),
                                        ("grid", "austin1-3.png"), ("seamless", "austin1.preview.jpg"),
                                        ("seamless", "austin1.tif")])
def test_generate_never_replaces_files_it_did_not_write(place, capsys, tmp_path, mode, mine):
    out = tmp_path / "gen"
    argv = ["generate", place["ckpt"], place["masks"], "--out", out, "--mode", mode, "--device", "cpu", "--scale", "1"]
    assert main([str(a) for a in argv]) == 0
    written = snapshot(out)
    assert mine in written
    assert main([str(a) for a in argv]) == 0, "its own earlier outputs are replaced"
    (out / mine).write_bytes(b"a user's file")
    fails(capsys, argv, rf"{re.escape(mine)}: already there and not written by satgan generate")
    assert (out / mine).read_bytes() == b"a user's file"
    assert main([str(a) for a in [*argv, "--overwrite"]]) == 0
    assert (out / mine).read_bytes() != b"a user's file"
    capsys.readouterr()


def test_generate_from_a_split_never_replaces_files_it_did_not_write(place, capsys, tmp_path):
    out = tmp_path / "tiles"
    argv = ["generate", place["ckpt"], place["arrays"], "--out", out, "--mode", "resize", "--limit", "2",
            "--device", "cpu"]
    assert main([str(a) for a in argv]) == 0
    first = sorted(out.iterdir())[0]
    first.write_bytes(b"mine")
    fails(capsys, argv, rf"{re.escape(first.name)}: already there and not written by satgan generate")
    assert first.read_bytes() == b"mine"


def test_train_overwrite_deletes_only_the_runs_own_files(place, capsys, tmp_path):
    run = tmp_path / "run"
    argv = ["train", place["arrays"], run, *TINY]
    assert main([str(a) for a in argv]) == 0
    own = [p.relative_to(run) for p in run.rglob("*") if p.is_file() and p.parent != run]
    assert any(p.parts[0] == "samples" for p in own) and any(p.parts[0] == "checkpoints" for p in own)
    for folder in ("samples", "tb", "checkpoints"):
        (run / folder).mkdir(exist_ok=True)
        (run / folder / "notes.txt").write_text(f"mine in {folder}")
    assert main([str(a) for a in [*argv, "--overwrite"]]) == 0
    for folder in ("samples", "tb", "checkpoints"):
        assert (run / folder / "notes.txt").read_text() == f"mine in {folder}"
    assert (run / "checkpoints" / "last.pt").is_file()
    capsys.readouterr()


def test_gallery_checks_its_indices_before_training_a_segmenter(place, capsys, monkeypatch, tmp_path):
    import satgan.gallery.files as files

    monkeypatch.setattr(files, "segmenter_from_spec", lambda *a, **k: pytest.fail("a segmenter before the indices"))
    fails(capsys, ["gallery", place["ckpt"], place["arrays"], "--out", tmp_path / "g", "--indices", "999"],
          r"sample indices \[999\] out of range")


def test_a_cached_segmenter_names_the_folder_it_was_asked_about(place, tmp_path):
    from satgan.config import SegmenterConfig
    from satgan.segmentation.segmenters import reference_segmenter

    settings = dict(width=4, steps=1, batch_size=2, crop=32, device="cpu")
    first = reference_segmenter(SegmenterConfig(data=str(place["arrays"]), **settings), progress=False)
    copy = shutil.copytree(place["arrays"], tmp_path / "copy")
    again = reference_segmenter(SegmenterConfig(data=str(copy), **settings), progress=False)
    assert again.info["key"] == first.info["key"], "the copy hits the cache"
    assert again.info["data"]["root"] == str(copy.resolve())
    assert again.info["data"]["trained_on"] == str(place["arrays"].resolve())


def test_an_error_is_said_on_stdout_when_stderr_cannot_be_written(tmp_path):
    import sys

    missing = tmp_path / "nothing"
    code = f"import sys; sys.stderr.close(); from satgan.cli import main; sys.exit(main(['info', {str(missing)!r}]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout.startswith("satgan: error: ") and str(missing) in done.stdout


# == what the hostile pass found (docs/development.md, "The hostile pass") ==========================
def test_subset_overwrite_never_deletes_a_users_files(place, capsys, tmp_path):
    few = tmp_path / "few"
    assert main(["subset", str(place["arrays"]), str(few), "--count", "2"]) == 0
    (few / "notes.txt").write_text("mine")
    (few / "mine").mkdir()
    fails(capsys, ["subset", place["arrays"], few, "--count", "3", "--overwrite"],
          r"few: holds files a pretransformed folder does not \(mine/, notes.txt\)")
    assert (few / "notes.txt").read_text() == "mine" and (few / "mine").is_dir()


def test_gallery_and_segbench_never_replace_a_users_files(place, capsys, tmp_path):
    gallery = tmp_path / "gal"
    (gallery / "figures").mkdir(parents=True)
    (gallery / "gallery.html").write_text("mine")
    argv = ["gallery", place["ckpt"], place["arrays"], "--out", gallery, "--per-city", "1", "--no-mask-iou",
            "--scenes", "0", "--device", "cpu"]
    fails(capsys, argv, r"gallery.html is there and satgan did not write it")
    assert (gallery / "gallery.html").read_text() == "mine"
    (gallery / "gallery.html").unlink()
    for _ in range(2):  # its own files, listed when published, it replaces
        assert main([str(a) for a in argv]) == 0
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "report.md").write_text("mine")
    fails(capsys, ["segbench", place["arrays"], bench, "--steps", "1", "--seeds", "1", "--fractions", "1",
                   "--batch-size", "2", "--crop", "32", "--ngf", "4", "--device", "cpu"],
          r"report.md: already there and not written by satgan segbench")
    assert (bench / "report.md").read_text() == "mine" and sorted(p.name for p in bench.iterdir()) == ["report.md"]


def test_a_segbench_refused_by_a_busy_out_leaves_the_other_runs_folder(place, tmp_path, monkeypatch):
    """The race of two segbench runs into one new OUT: the one refused must not tidy up the other's."""
    from contextlib import contextmanager

    import satgan.synthetic.segbench as segbench_module
    from satgan import SatganError
    from satgan.config import SegbenchConfig

    out = tmp_path / "bench"

    @contextmanager
    def held_by_another(folder):
        (folder / "runs").mkdir()  # what the other run, a moment ahead, has made
        (folder / ".segbench.lock").write_text("1 elsewhere\n")
        raise SatganError(f"--out {folder}: another segbench writes there")
        yield  # pragma: no cover

    monkeypatch.setattr(segbench_module, "output_lock", held_by_another)
    with pytest.raises(SatganError, match="another segbench"):
        segbench_module.segbench(SegbenchConfig(real=str(place["arrays"]), out=str(out), steps=1, seeds=1,
                                                fractions=[1.0], batch_size=2, crop=32, ngf=4, device="cpu"),
                                 progress=False)
    assert (out / "runs").is_dir() and (out / ".segbench.lock").is_file()


def test_a_scene_too_large_for_memory_is_one_error(place, capsys, tmp_path):
    for scale in ("1e-9", "0.0001"):
        fails(capsys, ["generate", place["ckpt"], place["masks"], "--out", tmp_path / "g", "--scale", scale],
              r"a scene of \d+x\d+ pixels .* does not fit in a quarter of this machine's memory; use a larger scale")
    assert not (tmp_path / "g").exists()
    fails(capsys, ["synthesize", place["ckpt"], place["forge"], tmp_path / "new" / "syn", "--scale", "1e-9"],
          r"none of the 2 masks could be generated; the first: .* does not fit")
    assert not (tmp_path / "new").exists(), "a fresh OUT keeps nothing of a run that made nothing"


def test_a_closed_or_full_stderr_never_stops_a_run(tmp_path):
    import sys

    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "satgan", "synth", str(tmp_path / "s"), "--size", "64",
                               "--per-city", "1", "--cities", "austin"], stderr=full, stdout=subprocess.PIPE,
                              text=True, timeout=300)
    assert done.returncode == 0 and "wrote" in done.stdout
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "satgan", "synth"], stderr=full, stdout=subprocess.PIPE,
                              text=True, timeout=300)
    assert done.returncode == 2 and done.stdout.startswith("satgan: error: synth: the following arguments")


def test_wrong_kinds_of_input_are_named_for_what_they_are(place, inria_root, capsys, tmp_path):
    broken = tmp_path / "arrays"
    shutil.copytree(place["arrays"], broken)
    (broken / "val" / "images.npy").write_text("hello")
    line = fails(capsys, ["info", broken], r"images.npy: cannot be read \(not a numpy array file\)")
    assert "allow_pickle" not in line
    fails(capsys, ["pretransform", place["ckpt"], tmp_path / "o", "--size", "72", "--crop", "64"],
          r"ckpt.pt: is a file, not a folder")
    fails(capsys, ["forge", place["forge"] / "AerialImageDataset" / "train" / "gt", tmp_path / "f", "--method",
                   "edit", "--count", "1", "--size", "64", "--split", "val"], r"has no splits; --split val cannot be")
    fails(capsys, ["segmenter", place["arrays"], "--cache", place["arrays"] / "cache", *SEGMENTER],
          r"--cache \S*cache lies inside the data folder")
    assert not (place["arrays"] / "cache").exists()


def test_a_pretransform_stopped_by_a_bad_file_leaves_no_partial_output(inria_root, capsys, tmp_path):
    source = tmp_path / "src"
    shutil.copytree(inria_root, source)
    victim = source / "train" / "images" / "austin3.tif"
    victim.write_bytes(victim.read_bytes()[:300])
    fails(capsys, ["pretransform", source, tmp_path / "o", "--size", "72", "--crop", "64"], r"austin3.tif")
    assert not (tmp_path / "o").exists()
