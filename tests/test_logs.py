"""Batch logs: plain lines when the output is a file, and no torch where none is needed."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

import satgan.progress
from satgan.progress import PlainProgress, interactive, progress_bar
from tests.conftest import REPO, write_pair_folder


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_progress_prints_a_bounded_number_of_lines(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(satgan.progress.time, "monotonic", clock)
    out = io.StringIO()
    bar = PlainProgress(total=1000, desc="train", unit="batch", stream=out, every_s=10)
    for _ in range(1000):  # 1000 steps over 35 simulated seconds
        clock.now += 0.035
        bar.update()
    bar.set_postfix({"loss": "0.5"})
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4  # at 10, 20, 30 s, and the end
    assert "\r" not in out.getvalue()
    assert lines[0].startswith("train: ") and "left" in lines[0]
    assert lines[-1].startswith("train: 1000/1000 batch (100 %)") and lines[-1].endswith("[loss=0.5] done")


def test_a_failing_loop_says_stopped_not_done():
    out = io.StringIO()
    with pytest.raises(ValueError):
        for i in PlainProgress(range(10), desc="write", stream=out, every_s=1e9):
            if i == 3:
                raise ValueError
    assert out.getvalue().strip() == out.getvalue().strip().splitlines()[-1]
    assert "3/10" in out.getvalue() and out.getvalue().strip().endswith("stopped")


def test_a_file_gets_plain_lines_and_a_terminal_a_bar():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not interactive(io.StringIO()) and interactive(Tty())
    assert isinstance(progress_bar(range(3), stream=io.StringIO()), PlainProgress)
    assert not isinstance(progress_bar(range(3), stream=Tty()), PlainProgress)


def _satgan(args: list[str], log, env_extra: dict | None = None) -> int:
    env = {**os.environ, **(env_extra or {})}
    env.pop("SATGAN_PROGRESS_EVERY", None)
    return subprocess.run([sys.executable, "-m", "satgan", *args], stdout=log, stderr=subprocess.STDOUT,
                          cwd=REPO, env=env).returncode


def test_train_and_segbench_logs_written_to_a_file_have_no_carriage_returns(inria_arrays, tmp_path):
    log_path = tmp_path / "train.log"
    with open(log_path, "w") as log:
        assert _satgan(["train", str(inria_arrays), str(tmp_path / "run"), "--preset", "quick",
                        "--set", "data.crop=64", "--set", "model.ngf=8", "--set", "model.ndf=4",
                        "--set", "train.epochs=3", "--set", "train.workers=0", "--set", "train.val_samples=2",
                        "--set", "train.batch_size=1", "--set", "loss.seg_weight=0"], log) == 0
        assert _satgan(["segbench", str(inria_arrays), str(tmp_path / "seg"), "--steps", "30", "--seeds", "1",
                        "--fractions", "1.0", "--crop", "32", "--ngf", "4"], log) == 0
    text = log_path.read_bytes().decode()
    assert "\r" not in text
    lines = text.splitlines()
    epochs = [line for line in lines if line.startswith("epoch ") and line.endswith(" done")]
    assert len(epochs) == 3  # one closing line per epoch, its losses in brackets
    assert "[" in epochs[0] and "G_" in epochs[0]
    assert any(line.startswith("segbench: 30/30 step") for line in lines)
    # each bar prints at most one line per 10 s and one at its end: a short run has few lines
    assert len(lines) < 40, text


def test_pretransform_does_not_import_torch(tmp_path):
    write_pair_folder(tmp_path / "src", [0.2, 0.4, 0.6], size=(64, 64))
    code = ("import sys; from satgan.cli import main; "
            f"rc = main(['pretransform', {str(tmp_path / 'src')!r}, {str(tmp_path / 'out')!r}, '--size', '40', "
            "'--crop', '32', '--val', 'tile0']); "
            "assert rc == 0, rc; "
            "assert 'torch' not in sys.modules, 'pretransform imported torch'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "manifest.json").exists()
