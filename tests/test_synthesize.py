"""``satgan synthesize``: a dataset of generated images beside mask copies; resumable
after a kill; per-image seeds; diversity; bad inputs named."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from satgan import SatganError
from satgan.cli import main
from satgan.config import ForgeConfig, PretransformConfig, SynthesizeConfig
from satgan.data.forge import forge
from satgan.data.pretransform import pretransform
from satgan.data.readers import file_sha256, read_geotags, read_image, read_mask
from satgan.generation.loading import Generator, load_generator
from satgan.synthetic.synthesize import MANIFEST, dataset_folders, synthesize, variant_diversity
from tests.conftest import REPO

CITIES = ["austin", "chicago", "kitsap", "tyrol-w", "vienna"]  # the styled fixture's labels, sorted as training does


@pytest.fixture(scope="module")
def forged(tmp_path_factory) -> Path:
    """Five procedural masks (one per city) of 240 px."""
    out = tmp_path_factory.mktemp("forged") / "masks"
    forge(ForgeConfig(source="all", out=str(out), count=5, size=240), progress=False)
    return out


def run(ckpt, masks, out, **kw) -> dict:
    return synthesize(SynthesizeConfig(checkpoint=str(ckpt), masks=str(masks), out=str(out), device="cpu", **kw),
                      progress=False)


def tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.tif"))}


def test_inria_dataset_with_mask_copies_and_a_manifest(tiny_checkpoint, forged, tmp_path):
    out = tmp_path / "syn"
    result = run(tiny_checkpoint, forged, out)
    assert result["written"] == 5 and result["kept"] == 0 and not result["failed"]
    images, masks = dataset_folders(out, "inria")
    names = sorted(p.name for p in images.iterdir())
    assert names == sorted(p.name for p in masks.iterdir()) and len(names) == 5
    record = json.loads((out / MANIFEST).read_text())
    assert record["settings"]["checkpoint_sha256"] == file_sha256(tiny_checkpoint)
    scale = record["settings"]["scale"]
    for name in names:
        image, mask = read_image(images / name), tifffile.imread(masks / name)
        side = round(240 / scale)
        assert image.shape == (side, side, 3) and mask.shape == (side, side)
        assert set(np.unique(mask)) <= {0, 255}
        source = read_mask(forged / "AerialImageDataset/train/gt" / name)
        # the copy is the source mask at the image's scale
        assert abs((mask > 0).mean() - source.mean()) < 0.05
        tags = dict((c, v) for c, _, _, v in read_geotags(images / name))
        assert tags[33550][0] == pytest.approx(0.3 * 240 / side), "pixel size scaled with the image"
        entry = record["images"][Path(name).stem]
        assert entry["size"] == [side, side] and entry["source"].endswith(name)
    # a segmentation pipeline reads it: satgan pretransform finds every pair
    arrays = pretransform(PretransformConfig(source=str(out), out=str(tmp_path / "arrays"), size=64, crop=64))
    assert sum(info["count"] for info in arrays["splits"].values()) == 5


def test_rerun_keeps_what_is_done_and_other_settings_are_refused(tiny_checkpoint, forged, tmp_path):
    out = tmp_path / "syn"
    run(tiny_checkpoint, forged, out, mode="resize")
    first = tree(out)
    again = run(tiny_checkpoint, forged, out, mode="resize")
    assert again["written"] == 0 and again["kept"] == 5 and tree(out) == first
    with pytest.raises(SatganError, match="mode 'resize' -> 'seamless'"):
        run(tiny_checkpoint, forged, out, mode="seamless")
    assert tree(out) == first


def test_resume_after_kill_gives_the_same_dataset(tiny_checkpoint, forged, tmp_path):
    """A real synthesize process is killed with SIGKILL after two images; a rerun finishes
    the rest, keeps those two, and the dataset equals an uninterrupted run's."""
    reference = tmp_path / "ref"
    run(tiny_checkpoint, forged, reference, mode="resize", dropout=True, variants=2)
    out = tmp_path / "out"
    code = (
        "import time, satgan.synthetic.synthesize as s\n"
        "s.SAVE_EVERY_S = 0\n"  # the manifest after every image, so the kill finds some recorded
        "write = s._write_pair\n"
        "s._write_pair = lambda *a: (write(*a), time.sleep(0.4))\n"
        "from satgan.cli import main\n"
        f"main(['synthesize', {str(tiny_checkpoint)!r}, {str(forged)!r}, {str(out)!r}, '--mode', 'resize',"
        " '--dropout', '--variants', '2', '--device', 'cpu'])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if len(json.loads((out / MANIFEST).read_text())["images"]) >= 2:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(json.loads((out / MANIFEST).read_text())["images"])
    assert 2 <= before < 10, "the kill came too late to test resuming"
    # a kill during a write leaves the temporary file (whether this one did depends on timing)
    (dataset_folders(out, "inria")[0] / ".vienna10001-v2.tmp-99999.tif").write_bytes(b"half")
    result = run(tiny_checkpoint, forged, out, mode="resize", dropout=True, variants=2)
    assert result["kept"] == before and result["written"] == 10 - before
    assert tree(out) == tree(reference)
    assert not [p for p in out.rglob(".*tmp*")], "no half-written file is left"


def loud_dropout(ckpt) -> Generator:
    """The tiny generator with dropout on and its last layer scaled up: one epoch of training
    leaves it nearly flat, and the test must see what its dropout changes."""
    gen = load_generator(ckpt, "cpu", dropout=True)
    with torch.no_grad():
        for p in gen.net.up[-1].parameters():
            p.mul_(30)
    return gen


def test_variants_differ_with_dropout_and_repeat_with_the_seed(tiny_checkpoint, forged, tmp_path):
    a = tmp_path / "a"
    cfg = {"mode": "resize", "dropout": True, "variants": 3, "seed": 7, "device": "cpu"}
    synthesize(SynthesizeConfig(str(tiny_checkpoint), str(forged), str(a), **cfg), loud_dropout(tiny_checkpoint),
               progress=False)
    images, _ = dataset_folders(a, "inria")
    v1, v2 = read_image(images / "vienna10001-v1.tif"), read_image(images / "vienna10001-v2.tif")
    assert np.abs(v1.astype(int) - v2).mean() > 0.5
    synthesize(SynthesizeConfig(str(tiny_checkpoint), str(forged), str(tmp_path / "b"), **cfg),
               loud_dropout(tiny_checkpoint), progress=False)
    assert tree(a) == tree(tmp_path / "b")
    measured = variant_diversity(a)
    assert measured["masks"] == 5 and measured["pixels"] > 0.002
    plain = tmp_path / "plain"
    gen = loud_dropout(tiny_checkpoint)
    gen.net.eval()
    synthesize(SynthesizeConfig(str(tiny_checkpoint), str(forged), str(plain), mode="resize", variants=2,
                                device="cpu"), gen, progress=False)
    assert variant_diversity(plain)["pixels"] == 0, "without a noise source the variants are equal"


def test_a_styled_model_draws_each_mask_as_its_city_with_its_own_code(styled_checkpoint, forged, tmp_path):
    out = tmp_path / "styled"
    run(styled_checkpoint, forged, out, mode="resize", variants=2, layout="paired")
    record = json.loads((out / MANIFEST).read_text())
    assert {e["city"] for e in record["images"].values()} == {"austin", "chicago", "kitsap", "tyrol-w", "vienna"}
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(p.name for p in (out / "masks").iterdir())
    assert variant_diversity(out, layout="paired")["pixels"] > 0.002
    run(styled_checkpoint, forged, tmp_path / "vienna", mode="resize", city="vienna")
    assert {e["city"] for e in json.loads((tmp_path / "vienna" / MANIFEST).read_text())["images"].values()} \
        == {"vienna"}
    run(styled_checkpoint, forged, tmp_path / "random", mode="resize", city="random", variants=4)
    drawn = json.loads((tmp_path / "random" / MANIFEST).read_text())["images"]
    assert len({e["city"] for e in drawn.values()}) >= 3, "random cities: several of the five over 20 images"
    assert all(e["city"] == CITIES[e["seed"] % 5] for e in drawn.values())


def test_bad_inputs_are_named(tiny_checkpoint, styled_checkpoint, forged, tmp_path):
    with pytest.raises(SatganError, match="no such folder"):
        run(tiny_checkpoint, tmp_path / "missing", tmp_path / "o1")
    with pytest.raises(SatganError, match="inside the masks folder"):
        run(tiny_checkpoint, forged, forged / "out")
    with pytest.raises(SatganError, match="not conditioned"):
        run(tiny_checkpoint, forged, tmp_path / "o2", city="vienna")
    with pytest.raises(SatganError, match="--city random: this model is not conditioned"):
        run(tiny_checkpoint, forged, tmp_path / "o2", city="random")
    with pytest.raises(SatganError, match="atlantis"):
        run(styled_checkpoint, forged, tmp_path / "o3", city="atlantis")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "tile.png").write_bytes((forged / "AerialImageDataset/train/gt/austin10001.tif").read_bytes())
    with pytest.raises(SatganError, match="which city"):
        run(styled_checkpoint, plain, tmp_path / "o4")
    for o in ("o1", "o2", "o3", "o4"):
        assert not (tmp_path / o).exists() or not any((tmp_path / o).rglob("*.tif"))


def test_an_unreadable_mask_is_named_and_the_rest_are_made(tiny_checkpoint, forged, tmp_path, capsys):
    masks = tmp_path / "masks"
    masks.mkdir()
    for name in ("austin10001", "vienna10001"):
        (masks / f"{name}.tif").write_bytes((forged / f"AerialImageDataset/train/gt/{name}.tif").read_bytes())
    (masks / "broken1.tif").write_bytes(b"not a tiff")
    code = main(["synthesize", str(tiny_checkpoint), str(masks), str(tmp_path / "o"), "--mode", "resize",
                 "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 1 and "broken1.tif" in captured.err
    assert sorted(p.name for p in dataset_folders(tmp_path / "o", "inria")[0].iterdir()) == \
        ["austin10001.tif", "vienna10001.tif"]


def test_the_masks_are_never_overwritten(tiny_checkpoint, forged, tmp_path):
    """MASKS = a forge's gt/ and OUT = that forge: the dataset's gt/ would be the masks."""
    import shutil

    copy = tmp_path / "forge"
    shutil.copytree(forged, copy)
    gt = copy / "AerialImageDataset" / "train" / "gt"
    before = tree(copy)
    with pytest.raises(SatganError, match="masks would be overwritten"):
        run(tiny_checkpoint, gt, copy, mode="resize")
    assert tree(copy) == before


def test_a_dataset_it_did_not_write_is_refused(tiny_checkpoint, forged, tmp_path):
    out = tmp_path / "real"
    images, _ = dataset_folders(out, "inria")
    images.mkdir(parents=True)
    (images / "austin1.tif").write_bytes(b"a real image")
    with pytest.raises(SatganError, match="did not write"):
        run(tiny_checkpoint, forged, out, mode="resize")
    assert (images / "austin1.tif").read_bytes() == b"a real image"


def test_when_no_mask_can_be_generated_it_is_one_error(tiny_checkpoint, shared_data, tmp_path, capsys):
    photos = shared_data / "geocompass" / "val" / "images"
    code = main(["synthesize", str(tiny_checkpoint), str(photos), str(tmp_path / "o"), "--mode", "resize",
                 "--device", "cpu"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("satgan: error:")]
    assert code == 2 and len(lines) == 1 and "none of the 74 masks" in lines[0]
