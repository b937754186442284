import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
from PIL import Image

from satgan import SatganError
from satgan.config import PretransformConfig
from satgan.data.pretransform import pretransform
from satgan.data.tiling import grid_shape, mask_coverage, mosaic, tile_fractions
from tests.conftest import REPO, write_pair_folder


def run(source, out, **kw):
    return pretransform(PretransformConfig(source=str(source), out=str(out), **kw))


def test_arrays_and_manifest(inria_root, tmp_path):
    m = run(inria_root, tmp_path / "out", grid=2, size=96, crop=64)
    assert {k: v["count"] for k, v in m["splits"].items()} == {"train": 20, "val": 100}
    images = np.load(tmp_path / "out/train/images.npy", mmap_mode="r")
    masks = np.load(tmp_path / "out/train/masks.npy", mmap_mode="r")
    assert images.shape == (20, 96, 96, 3) and images.dtype == np.uint8
    assert masks.shape == (20, 96, 96) and masks.dtype == np.uint8
    sample = m["splits"]["train"][ "samples"][5]
    assert sample["source"] == "train/images/chicago6.tif" and (sample["row"], sample["col"]) == (0, 1)
    assert sample["city"] == "chicago"
    # the recorded fraction is the true fraction of the source tile, and the stored mask agrees
    gt = tifffile.imread(inria_root / "train/gt/chicago6.tif") > 0
    assert sample["fraction"] == pytest.approx(gt[:160, 160:].mean(), abs=1e-6)
    assert masks[5].mean() / 255 == pytest.approx(sample["fraction"], abs=0.01)
    assert json.loads((tmp_path / "out/manifest.json").read_text())["content_hash"] == m["content_hash"]
    assert not (tmp_path / "out/.parts").exists()


def test_density_filter_uses_true_building_fraction(tmp_path):
    src = write_pair_folder(tmp_path / "src", [0.05, 0.2, 0.34, 0.5, 0.9])
    m = run(src, tmp_path / "out", size=64, crop=64, min_density=0.3)
    kept = [s["fraction"] for s in m["splits"]["train"]["samples"]]
    assert kept == pytest.approx([0.34, 0.5, 0.9], abs=1e-3)
    assert m["splits"]["train"]["tiles_before_filter"] == 5


def test_mask_coverage_is_area_fraction():
    mask = np.zeros((100, 100), bool)
    mask[:, :50] = True
    cov = mask_coverage(mask, 10)
    assert (cov[:, :5] == 255).all() and (cov[:, 5:] == 0).all()
    mask = np.zeros((90, 90), bool)
    mask[::3] = True  # every third row: one third of the area
    assert abs(int(mask_coverage(mask, 10).mean()) - 85) <= 1


def test_non_square_images_get_square_tiles(tmp_path):
    src = write_pair_folder(tmp_path / "src", [0.0], size=(100, 200))
    mask = np.zeros((100, 200), np.uint8)
    mask[:, :100] = 255  # the left half is building
    Image.fromarray(mask).save(src / "masks" / "tile0.png")
    m = run(src, tmp_path / "out", size=64, crop=64)
    samples = m["splits"]["train"]["samples"]
    assert [(x["row"], x["col"], x["fraction"]) for x in samples] == [(0, 0, 1.0), (0, 1, 0.0)]
    assert grid_shape(5000, 5000, 5) == (5, 5) and grid_shape(406, 438, 1) == (1, 1)
    assert grid_shape(300, 100, 2) == (6, 2)


def test_failed_overwrite_keeps_the_old_output(tmp_path):
    src = write_pair_folder(tmp_path / "src", [0.1, 0.2])
    out = tmp_path / "out"
    old = run(src, out, size=64, crop=64)
    with pytest.raises(SatganError, match="empty after filtering"):
        run(src, out, size=64, crop=64, min_density=0.9, overwrite=True)
    assert json.loads((out / "manifest.json").read_text())["content_hash"] == old["content_hash"]
    assert np.load(out / "train/images.npy").shape == (2, 64, 64, 3)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "train"]


def test_interrupted_commit_is_finished_by_a_rerun(inria_root, tmp_path, monkeypatch):
    reference = run(inria_root, tmp_path / "ref", size=64, crop=64)
    out = tmp_path / "out"
    import satgan.data.staging as staging  # commits the output

    moves = []
    real_replace = os.replace

    def replace_then_die(a, b):
        moves.append(b)
        if len(moves) == 3:  # train moved, val half-moved
            raise KeyboardInterrupt
        real_replace(a, b)

    monkeypatch.setattr(staging.os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(inria_root, out, size=64, crop=64)
    monkeypatch.setattr(staging.os, "replace", real_replace)
    assert not (out / "manifest.json").exists() and (out / ".parts").exists()
    with pytest.raises(SatganError, match="interrupted run"):
        staging.load_manifest(out)
    assert run(inria_root, out, size=64, crop=64)["content_hash"] == reference["content_hash"]
    assert not (out / ".parts").exists()
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == sorted(
        p.name for p in (tmp_path / "ref").rglob("*") if p.is_file())


def test_mosaic_lays_tiles_in_row_order_and_crops():
    tiles = [np.full((4, 4), i, np.uint8) for i in range(9)]
    scene = mosaic(tiles, 10)
    assert scene.shape == (10, 10)
    assert scene[0, 0] == 0 and scene[0, 5] == 1 and scene[5, 0] == 3 and scene[9, 9] == 8
    with pytest.raises(SatganError, match="needs 9, got 4"):
        mosaic(tiles[:4], 10)


def test_tile_fractions():
    mask = np.zeros((10, 10), bool)
    mask[:5, :5] = True
    assert tile_fractions(mask, 2).tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_rerun_is_noop_and_other_settings_are_refused(inria_root, tmp_path):
    out = tmp_path / "out"
    first = run(inria_root, out, size=64, crop=64)
    mtime = (out / "val/images.npy").stat().st_mtime_ns
    assert run(inria_root, out, size=64, crop=64)["content_hash"] == first["content_hash"]
    assert (out / "val/images.npy").stat().st_mtime_ns == mtime
    with pytest.raises(SatganError, match=r"other settings \(size: 64 -> 72\).*--overwrite"):
        run(inria_root, out, size=72, crop=64)
    assert (out / "manifest.json").exists()  # refused: nothing lost
    m = run(inria_root, out, size=72, crop=64, overwrite=True)
    assert np.load(out / "val/images.npy", mmap_mode="r").shape[1] == 72 and m["settings"]["size"] == 72


def test_workers_do_not_change_the_output(inria_root, tmp_path):
    one = run(inria_root, tmp_path / "a", grid=2, size=64, crop=64, workers=1)
    two = run(inria_root, tmp_path / "b", grid=2, size=64, crop=64, workers=2)
    assert one["content_hash"] == two["content_hash"]


def test_resume_after_kill_gives_identical_output(inria_root, tmp_path):
    """A real pretransform process is killed with SIGKILL mid-way; a rerun finishes it."""
    reference = run(inria_root, tmp_path / "ref", size=64, crop=64)
    out = tmp_path / "out"
    # Slow every job down so the kill lands in the middle of the work.
    code = (
        "import time, satgan.data.pretransform as p\n"
        "job = p._run_job\n"
        "p._run_job = lambda j: (time.sleep(0.15), job(j))[1]\n"
        "from satgan.cli import main\n"
        f"main(['pretransform', {str(inria_root)!r}, {str(out)!r}, '--size', '64', '--crop', '64'])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(list(out.glob(".parts/*/*.npz"))) < 5 and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists(), "the kill came too late to test resuming"
    done_before = len(list(out.glob(".parts/*/*.npz")))
    assert 5 <= done_before < 30
    resumed = run(inria_root, out, size=64, crop=64)
    assert resumed["content_hash"] == reference["content_hash"]
    for split in ("train", "val"):
        for name in ("images.npy", "masks.npy"):
            assert (out / split / name).read_bytes() == (tmp_path / "ref" / split / name).read_bytes()


def test_empty_split_after_filter_leaves_nothing(tmp_path):
    src = tmp_path / "src"
    write_pair_folder(src / "train", [0.5, 0.6])
    write_pair_folder(src / "val", [0.01, 0.02])
    out = tmp_path / "out"
    with pytest.raises(SatganError, match=r"split 'val' is empty.*min_density=0.2.*highest is 0.020"):
        run(src, out, size=64, crop=64, min_density=0.2)
    assert list(out.iterdir()) == []


def test_bad_inputs_are_named(tmp_path):
    src = write_pair_folder(tmp_path / "src", [0.3, 0.4])
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(src / "masks" / "tile1.png")
    with pytest.raises(SatganError, match=r"tile1\.png is 100x120 but its mask .*tile1\.png is 50x50"):
        run(src, tmp_path / "o1", size=64, crop=64)
    ok = write_pair_folder(tmp_path / "ok", [0.3])
    with pytest.raises(SatganError, match="below the training crop 256"):
        run(ok, tmp_path / "o2", size=200)
    with pytest.raises(SatganError, match="into 7x7 tiles; choose a grid of at most 12"):
        run(ok, tmp_path / "o3", grid=14, size=64, crop=64)
    with pytest.raises(SatganError, match="grid=0: must be at least 1"):
        run(ok, tmp_path / "o4", grid=0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(SatganError, match="not empty and holds no satgan pretransform"):
        run(ok, tmp_path / "busy", size=64, crop=64)
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_corrupt_tiff_is_named_and_nothing_is_written(tmp_path):
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        tifffile.imwrite(src / "images" / f"{name}.tif", rng.integers(0, 255, (120, 120, 3), dtype=np.uint8))
        tifffile.imwrite(src / "masks" / f"{name}.tif", (rng.random((120, 120)) > 0.5).astype(np.uint8) * 255,
                         compression="lzw", predictor=True)
    data = (src / "masks" / "b.tif").read_bytes()
    (src / "masks" / "b.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(SatganError, match=r"b\.tif: cannot be read"):
        run(src, tmp_path / "out", size=64, crop=64)
    assert not (tmp_path / "out" / "manifest.json").exists()
    assert not list((tmp_path / "out").glob("*/*.npy"))
    # once the file is fixed, the same command finishes the job without --overwrite
    tifffile.imwrite(src / "masks" / "b.tif", np.zeros((120, 120), np.uint8), compression="lzw")
    assert run(src, tmp_path / "out", size=64, crop=64)["splits"]["train"]["count"] == 2


def test_rgba_and_16bit_sources_are_converted(tmp_path):
    src = write_pair_folder(tmp_path / "src", [0.3, 0.4])
    Image.fromarray(np.full((100, 120, 4), 90, np.uint8)).save(src / "images" / "tile0.png")
    (src / "images" / "tile1.png").unlink()
    tifffile.imwrite(src / "images" / "tile1.tif", np.full((100, 120, 3), 4095, np.uint16), photometric="rgb")
    with pytest.warns(UserWarning) as record:
        m = run(src, tmp_path / "out", size=64, crop=64)
    messages = " ".join(str(r.message) for r in record)
    assert "alpha" in messages and "12-bit" in messages
    images = np.load(tmp_path / "out/train/images.npy")
    assert (images[0] == 90).all() and (images[1] == 255).all() and m["splits"]["train"]["count"] == 2


def test_real_folders(shared_data, tmp_path):
    geo = run(shared_data / "geocompass", tmp_path / "geo", size=286, workers=2)
    assert {k: v["count"] for k, v in geo["splits"].items()} == {"train": 560, "val": 74}
    rio = run(shared_data / "spacenet-rio", tmp_path / "rio", size=286, min_density=0.001)
    assert rio["splits"]["train"]["count"] == 10  # 5 of the 15 chips hold no building
    assert np.load(tmp_path / "rio/train/images.npy", mmap_mode="r").shape == (10, 286, 286, 3)
