"""A full disk at every write that used to lose work or print a traceback (torch.save, the
segmenter cache, segbench's runs and report, the TensorBoard log), and segbench's sanity
checks (folders without buildings, real data offered as synthetic, no arm using the
synthetic tiles, two segbench into one --out). A full disk is simulated by making the write
functions fail at a chosen call, as they fail on a real one."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from satgan import SatganError, SatganWarning
from satgan.data.readers import file_sha256
from satgan.synthetic import report as report_module
from satgan.synthetic.plan import Arm
from satgan.synthetic.report import LOCK, RUNS, recommendation, run_file
from satgan.synthetic.segbench import run_key, segbench
from tests.test_segbench import config

TORCH_FULL = ("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0: file "
              "write failed")
SMALL = {"seeds": 1, "steps": 2, "batch_size": 2, "fractions": [0.5, 1.0]}


def full_disk(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")  # a failed write names no file


def fail_at(calls: list, when, real):
    """``real`` that fails as a full disk does on the calls ``when(n, args)`` picks (n from 1)."""
    def write(*args, **kwargs):
        calls.append(args)
        if when(len(calls), args):
            return full_disk()
        return real(*args, **kwargs)
    return write


def variant(src: Path, dst: Path, images=None, masks=None, val: int | None = None) -> Path:
    """A copy of a pretransformed folder with its arrays changed (``val``: only the first tiles
    of the val split), and its manifest's counts and hashes with them."""
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    for split, info in manifest["splits"].items():
        keep = slice(0, val if split == "val" and val else None)
        info["samples"] = info["samples"][keep]
        for key, change in (("images", images), ("masks", masks)):
            path = dst / info[key]
            array = np.load(path)[keep]
            np.save(path, np.ascontiguousarray(change(array) if change is not None else array))
            info["sha256"][key] = file_sha256(path)
        info["count"] = len(info["samples"])
        info["image_shape"][0] = info["mask_shape"][0] = info["count"]
    manifest["content_hash"] = hashlib.sha256(json.dumps({k: v["sha256"] for k, v in manifest["splits"].items()},
                                                         sort_keys=True).encode()).hexdigest()
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


@pytest.fixture(scope="module")
def small(inria_arrays, tmp_path_factory) -> Path:
    """The real folder with 8 val tiles: every run here is scored in a moment."""
    return variant(inria_arrays, tmp_path_factory.mktemp("small") / "real", val=8)


@pytest.fixture(scope="module")
def flipped(small, tmp_path_factory) -> Path:
    """Other data than the real folder's (mirrored tiles): a stand-in for synthetic pairs."""
    return variant(small, tmp_path_factory.mktemp("flipped") / "f", images=lambda a: a[:, :, ::-1],
                   masks=lambda a: a[:, :, ::-1])


@pytest.fixture(scope="module")
def no_buildings(small, tmp_path_factory) -> Path:
    return variant(small, tmp_path_factory.mktemp("empty") / "e", images=lambda a: a[:, :, ::-1],
                   masks=np.zeros_like)


# -- a full disk ---------------------------------------------------------------------------------
def test_save_torch_turns_torch_write_failures_into_os_errors(tmp_path, monkeypatch):
    from satgan import runtime
    from satgan.runtime import save_torch

    path = save_torch({"a": torch.zeros(3)}, tmp_path / "x.pt")
    before = path.read_bytes()
    real_save = torch.save

    def torn(obj, f):  # half a file, then torch's words for a failed write
        Path(f).write_bytes(b"PK\x03\x04")
        raise RuntimeError(TORCH_FULL)

    monkeypatch.setattr(torch, "save", torn)
    monkeypatch.setattr(runtime, "NEARLY_FULL", 1 << 62)  # the disk is full
    with pytest.raises(OSError) as caught:
        save_torch({"a": 1}, path)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert "PytorchStreamWriter" in caught.value.strerror
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["x.pt"]
    monkeypatch.setattr(runtime, "NEARLY_FULL", 0)  # room left: another write error
    with pytest.raises(OSError) as caught:
        save_torch({"a": 1}, path)
    assert caught.value.errno == errno.EIO and caught.value.filename == str(path)
    monkeypatch.setattr(torch, "save", lambda obj, f: (_ for _ in ()).throw(RuntimeError("something else")))
    with pytest.raises(RuntimeError, match="something else"):  # not a write failure: not turned into one
        save_torch({"a": 1}, path)
    monkeypatch.setattr(torch, "save", real_save)
    with pytest.raises(OSError) as caught:
        save_torch({"a": 1}, tmp_path / "nowhere" / "x.pt")
    assert caught.value.errno == errno.ENOENT and caught.value.filename == str(tmp_path / "nowhere" / "x.pt")


def test_a_full_disk_at_the_segmenter_cache_is_one_warning_and_out_one_error(small, tmp_path, monkeypatch, capsys):
    from satgan import runtime
    from satgan.cli import main

    def torn(obj, f):
        Path(f).write_bytes(b"PK")
        raise RuntimeError(TORCH_FULL)

    monkeypatch.setattr(torch, "save", torn)
    monkeypatch.setattr(runtime, "NEARLY_FULL", 1 << 62)
    out = tmp_path / "seg.pt"
    args = ["segmenter", str(small), "--width", "4", "--steps", "2", "--batch-size", "2", "--crop", "32",
            "--device", "cpu", "--cache", str(tmp_path / "cache")]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert any(line.startswith("warning: segmenter not cached") for line in lines)
    assert lines[-1] == f"satgan: error: {out}: no space left on the disk"
    assert not out.exists() and not list((tmp_path / "cache").rglob("*.pt"))


def test_a_full_disk_at_a_runs_result_keeps_the_runs_before_it(small, tmp_path, monkeypatch):
    out, calls = tmp_path / "out", []
    monkeypatch.setattr(report_module, "write_json",
                        fail_at(calls, lambda n, a: n == 2, report_module.write_json))
    cfg = config(small, out, **SMALL)
    with pytest.raises(SatganError) as caught:
        segbench(cfg, progress=False)
    second = run_file(out, "real 100%", 0)
    assert str(caught.value) == (f"{second}: cannot be written (no space left on the disk); the 1 finished run(s) "
                                 f"are kept in {out / RUNS}: run the same command again (once there is room) and it "
                                 "reuses them")
    assert sorted(p.name for p in (out / RUNS).iterdir()) == [run_file(out, "real 50%", 0).name]
    assert not (out / LOCK).exists() and not (out / "report.json").exists()
    monkeypatch.undo()
    again = segbench(cfg, progress=False)
    assert again["reused_runs"] == 1
    fresh = segbench(config(small, tmp_path / "fresh", **SMALL), progress=False)
    assert fresh["reused_runs"] == 0
    keep = ("arm", "seed", "iou", "f1", "tp", "fp", "fn", "train_loss", "initial_weights", "real_subset")
    assert [{k: r[k] for k in keep} for r in again["runs"]] == [{k: r[k] for k in keep} for r in fresh["runs"]]
    arm, device, data = Arm("real 50%", 0.5, 10, 0), torch.device("cpu"), {"real": "r", "synthetic": None, "test": []}
    key = run_key(cfg, arm, 0, device, data)
    assert run_key(replace(cfg, out="elsewhere", seeds=3, generator="g.pt"), arm, 0, device, data) == key
    other_data, meta = {**data, "real": "x"}, torch.device("meta")
    for changed in (run_key(replace(cfg, steps=3), arm, 0, device, data), run_key(cfg, arm, 1, device, data),
                    run_key(cfg, arm, 0, meta, data), run_key(cfg, arm, 0, device, other_data),
                    run_key(cfg, replace(arm, real=9), 0, device, data)):
        assert changed != key  # other settings, seed, device, data or tiles: trained again


def test_a_full_disk_at_the_first_write_leaves_no_folder(small, tmp_path, monkeypatch):
    out = tmp_path / "deep" / "out"
    monkeypatch.setattr(report_module, "write_json", fail_at([], lambda n, a: True, report_module.write_json))
    with pytest.raises(SatganError, match=r"cannot be written \(no space left on the disk\); no run had finished"):
        segbench(config(small, out, **SMALL), progress=False)
    assert not (tmp_path / "deep").exists()


def test_a_full_disk_at_the_report_keeps_the_earlier_one_and_every_run(small, tmp_path, monkeypatch):
    out = tmp_path / "out"
    cfg = config(small, out, **SMALL)
    segbench(cfg, progress=False)
    before = {name: (out / name).read_bytes() for name in ("report.json", "report.md", "report.png")}
    real_write_text = Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name.startswith(".report.tmp-") and self.suffix == ".json":
            real_write_text(self, "{\"half", encoding="utf-8")
            full_disk()
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(SatganError) as caught:
        segbench(cfg, progress=False)
    assert str(caught.value).startswith(f"{out / 'report.json'}: cannot be written (no space left on the disk); "
                                        f"the 2 finished run(s) are kept in {out / RUNS}")
    assert {name: (out / name).read_bytes() for name in before} == before  # the earlier three, whole
    assert sorted(p.name for p in out.iterdir()) == sorted([*before, RUNS])  # no temporary file, no lock
    monkeypatch.undo()
    assert segbench(cfg, progress=False)["reused_runs"] == 2


def test_a_full_disk_under_tensorboard_is_one_warning_without_a_thread_traceback(tmp_path, monkeypatch, capfd):
    from tensorboard.summary.writer import record_writer

    from satgan.config import PretransformConfig
    from satgan.data.pretransform import pretransform
    from satgan.progress import EventLog
    from satgan.training.trainer import train
    from tests.conftest import write_pair_folder
    from tests.test_train import tiny

    calls: list = []
    monkeypatch.setattr(record_writer.RecordWriter, "write",
                        fail_at(calls, lambda n, a: n > 3, record_writer.RecordWriter.write))
    log = EventLog(tmp_path / "tb")
    with pytest.warns(SatganWarning, match=f"TensorBoard log stopped: {tmp_path / 'tb'} cannot be written "
                                           r"\(No space left on device\)") as caught:
        for step in range(8):
            log.add_scalar("loss", float(step), step)
            log.flush()
        log.add_image("grid", np.zeros((4, 4, 3), np.uint8), 0, dataformats="HWC")
        log.close()
    assert len([w for w in caught if issubclass(w.category, SatganWarning)]) == 1
    # training: its log fails at the fourth write, the training goes on to the end
    write_pair_folder(tmp_path / "src" / "train", [0.2, 0.4, 0.6, 0.8], size=(40, 40))
    write_pair_folder(tmp_path / "src" / "val", [0.5], size=(40, 40))
    pretransform(PretransformConfig(source=str(tmp_path / "src"), out=str(tmp_path / "data"), size=36, crop=32))
    calls.clear()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        train(tmp_path / "data", tmp_path / "run", tiny("train.epochs=1", "train.val_samples=1"))
    stopped = [w for w in seen if "TensorBoard log stopped" in str(w.message)]
    assert len(stopped) == 1 and str(tmp_path / "run" / "tb") in str(stopped[0].message)
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception in thread" not in err


# -- segbench's sanity ---------------------------------------------------------------------------
def test_a_test_folder_without_buildings_is_refused(small, no_buildings, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SatganError, match=f"no building pixels in the train\\+val split of {no_buildings}"):
        segbench(config(small, out, **SMALL, test=str(no_buildings)), progress=False)
    with pytest.raises(SatganError, match=f"no building pixels in the val split of {no_buildings}"):
        segbench(config(small, out, **SMALL, test=str(no_buildings), test_split="val"), progress=False)
    assert not out.exists()


def test_a_real_folder_without_buildings_is_refused_as_satgan_segmenter_refuses_it(no_buildings, tmp_path, capsys):
    from satgan.cli import main

    with pytest.raises(SatganError, match=f"{no_buildings}: buildings cover 0.00% of the train split's pixels"):
        segbench(config(no_buildings, tmp_path / "out", **SMALL), progress=False)
    assert not (tmp_path / "out").exists()
    assert main(["segmenter", str(no_buildings), "--device", "cpu", "--steps", "1"]) == 2
    assert "buildings cover 0.00% of the train split's pixels" in capsys.readouterr().err


def test_synthetic_data_that_is_the_real_data_is_refused(small, flipped, tmp_path):
    copy = shutil.copytree(small, tmp_path / "copy")  # the same content hash under another name
    out = tmp_path / "out"
    with pytest.raises(SatganError, match=f"--synthetic {copy} holds the same tiles as the real folder "
                                          f"{small.resolve()} \\(the same content hash\\): it is the real data"):
        segbench(config(small, out, **SMALL, synthetic=str(copy)), progress=False)
    with pytest.raises(SatganError, match="its train split holds the same tiles as the real train split"):
        segbench(config(small, out, **SMALL, test=str(copy)), progress=False)
    assert not out.exists()
    report = segbench(config(small, out, **{**SMALL, "fractions": [1.0]}, synthetic=str(flipped), shares=[],
                             pretrain=0.5, synthetic_only=False), progress=False)
    assert [a["arm"] for a in report["arms"]] == ["real 100%", "real 100% after synthetic pre-training"]


def test_no_arm_using_the_synthetic_tiles_is_refused_and_said_rightly(small, flipped, tmp_path, capsys):
    from satgan.cli import main

    with pytest.raises(SatganError, match=f"shares is empty and pretrain is 0: no arm adds the synthetic tiles of "
                                          f"{flipped}"):
        segbench(config(small, tmp_path / "out", **SMALL, synthetic=str(flipped), shares=[], pretrain=0),
                 progress=False)
    assert main(["segbench", str(small), str(tmp_path / "out"), "--synthetic", str(flipped), "--shares", "",
                 "--pretrain", "0", "--device", "cpu", "--crop", "32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shares is empty" in err[0] and not (tmp_path / "out").exists()
    report = {"arms": [], "settings": {"seeds": 3, "synthetic": str(flipped)}}
    assert "give --synthetic" not in recommendation(report) and "--shares" in recommendation(report)
    assert "give --synthetic" in recommendation({"arms": [], "settings": {"seeds": 3, "synthetic": None}})


def test_the_messages_on_training_splits_say_what_to_give(small, tmp_path):
    with pytest.raises(SatganError, match="test_split=train: the arms train on the train split of the real folder "
                                          f"{small.resolve()}; score them on a split they do not train on"):
        segbench(config(small, tmp_path / "o", **SMALL, test_split="train"), progress=False)
    with pytest.raises(SatganError, match="--test is the real folder: give --test-split naming a split the arms do "
                                          "not train on, e.g. --test-split val"):
        segbench(config(small, tmp_path / "o", **SMALL, test=str(small)), progress=False)


def test_a_busy_out_is_refused_and_a_stale_lock_taken_over(small, tmp_path):
    from satgan.cli import main

    out = tmp_path / "out"
    out.mkdir()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK).write_text(f"{alive.pid} {socket.gethostname()}\n")
        with pytest.raises(SatganError, match=f"--out {out}: another segbench \\(pid {alive.pid} on "):
            segbench(config(small, out, **SMALL), progress=False)
        assert (out / LOCK).read_text() == f"{alive.pid} {socket.gethostname()}\n"  # left to its owner
        assert sorted(p.name for p in out.iterdir()) == [LOCK]
        assert main(["segbench", str(small), str(out), "--device", "cpu", "--seeds", "1", "--steps", "1",
                     "--batch-size", "2", "--crop", "32", "--ngf", "4", "--fractions", "1"]) == 2
        (out / LOCK).write_text(f"{alive.pid} another-host\n")  # a lock of another machine: never taken over
        with pytest.raises(SatganError, match="another segbench"):
            segbench(config(small, out, **SMALL), progress=False)
    finally:
        alive.kill()
        alive.wait()
    (out / LOCK).write_text(f"{alive.pid} {socket.gethostname()}\n")  # its process is gone: a stale lock
    with pytest.warns(SatganWarning, match=f"taking over the lock of segbench pid {alive.pid}"):
        report = segbench(config(small, out, **{**SMALL, "fractions": [1.0]}), progress=False)
    assert report["reused_runs"] == 0 and not (out / LOCK).exists() and (out / "report.json").is_file()
    assert os.listdir(out / RUNS)
