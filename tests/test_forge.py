"""``satgan forge``: procedural, rearranged and edited masks; same seed, same bytes; the
source and forged distributions; bad inputs named with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from satgan import SatganError
from satgan.atomic import PUBLISHED
from satgan.cli import main
from satgan.config import ForgeConfig
from satgan.data.footprints import Canvas, footprints, mask_summary, principal_angle, turned
from satgan.data.forge import FORGE_JSON, forge, masks_folder
from satgan.data.readers import read_geotags, read_mask
from satgan.data.sources import open_source
from satgan.data.writers import TIEPOINT_TAG, window_geotags


def run(source, out, **kw) -> dict:
    return forge(ForgeConfig(source=str(source), out=str(out), **kw), progress=False)


def files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def train_masks(inria_root: Path) -> dict[str, Path]:
    return {p.mask.name: p.mask for p in open_source(inria_root).splits["train"]}


def test_procedural_same_seed_same_bytes(tmp_path):
    a = run("austin,vienna", tmp_path / "a", count=4, size=300, seed=3)
    run("austin,vienna", tmp_path / "b", count=4, size=300, seed=3)
    c = run("austin,vienna", tmp_path / "c", count=4, size=300, seed=4)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert files(tmp_path / "a") != files(tmp_path / "c")
    assert [m["name"] for m in a["masks"]] == ["austin10001", "vienna10001", "austin10002", "vienna10002"]
    gt = masks_folder(tmp_path / "a")
    for m in a["masks"]:
        path = gt / f"{m['name']}.tif"
        with tifffile.TiffFile(path) as tif:
            assert tif.pages[0].compression == 5  # LZW
            raw = tif.asarray()
        assert raw.shape == (300, 300) and set(np.unique(raw)) <= {0, 255}
        assert m["fraction"] == pytest.approx((raw > 0).mean(), abs=1e-6)
        assert read_geotags(path), "procedural masks are placed on the synthetic cities' maps"
    report = json.loads((tmp_path / "a" / FORGE_JSON).read_text())
    assert report["method"] == "procedural" and report["seed"] == 3
    assert report["source"] == {"styles": ["austin", "vienna"]}
    assert report["distribution"]["masks"] == 4 and report["distribution"]["count"]["mean"] > 0
    assert c["masks"][0]["fraction"] != a["masks"][0]["fraction"]


def test_procedural_styles_differ_as_the_cities_do(tmp_path):
    """Dense chicago grids and vienna blocks cover far more ground than forested kitsap."""
    report = run("all", tmp_path / "o", count=10, size=600)
    frac = {}
    for m in report["masks"]:
        frac.setdefault(m["city"], []).append(m["fraction"])
    assert np.mean(frac["chicago"]) > 3 * np.mean(frac["kitsap"])
    assert np.mean(frac["vienna"]) > 3 * np.mean(frac["kitsap"])


def test_rearrange_keeps_counts_and_separate_whole_buildings(inria_root, tmp_path):
    report = run(inria_root, tmp_path / "r", method="rearrange", count=6, size=160, seed=1)
    sources = train_masks(inria_root)
    gt = masks_folder(tmp_path / "r")
    placed = target = 0
    for m in report["masks"]:
        mask = read_mask(gt / f"{m['name']}.tif")
        assert m["template"] in sources, "the template is a training mask, not a validation one"
        # the gap keeps every placed footprint its own component
        assert mask_summary(mask)["count"] == m["placed"] == m["buildings"]
        placed, target = placed + m["placed"], target + m["target_buildings"]
        top, left = m["window"]
        window = read_mask(sources[m["template"]])[top : top + 160, left : left + 160]
        assert m["target_buildings"] == mask_summary(window)["count"]
    assert placed >= 0.8 * target > 0
    src, forged = report["source"]["distribution"], report["distribution"]
    assert set(src) == set(forged) == {"masks", "count", "fraction", "area"}
    assert report["source"]["sha256"] and all(len(h) == 64 for h in report["source"]["sha256"].values())
    # the forge follows the source's density: mean fraction within a factor of two
    assert 0.5 < forged["fraction"]["mean"] / src["fraction"]["mean"] < 2


def test_edit_at_strength_zero_is_the_window_and_changes_with_strength(inria_root, tmp_path):
    sources = train_masks(inria_root)
    same = run(inria_root, tmp_path / "s0", method="edit", count=3, size=200, strength=0.0)
    changed = run(inria_root, tmp_path / "s1", method="edit", count=3, size=200, strength=1.0)
    for report, folder, identical in ((same, "s0", True), (changed, "s1", False)):
        differs = []
        for m in report["masks"]:
            top, left = m["window"]
            window = read_mask(sources[m["template"]])[top : top + 200, left : left + 200]
            mask = read_mask(masks_folder(tmp_path / folder) / f"{m['name']}.tif")
            differs.append((mask != window).mean())
            # the window's place on the map: the tie point moved to its corner
            tags = dict((c, v) for c, _, _, v in read_geotags(masks_folder(tmp_path / folder) / f"{m['name']}.tif"))
            source_tags = dict((c, v) for c, _, _, v in read_geotags(sources[m["template"]]))
            assert tags[TIEPOINT_TAG][3] == pytest.approx(source_tags[TIEPOINT_TAG][3] + left * 0.3)
        assert (max(differs) == 0) if identical else (min(differs) > 0.005)
    assert all(m["removed"] + m["moved"] + m["duplicated"] + m["blocks_changed"] > 0 for m in changed["masks"])


def test_window_geotags_move_the_tie_point_and_the_transformation():
    tags = [(33550, 12, 3, (0.5, 0.25, 0.0)), (33922, 12, 6, (0.0, 0.0, 0.0, 100.0, 200.0, 0.0))]
    moved = dict((c, v) for c, _, _, v in window_geotags(tags, top=8, left=4))
    assert moved[33922][3:5] == (102.0, 198.0) and moved[33550] == (0.5, 0.25, 0.0)
    matrix = [(34264, 12, 16, (0.5, 0, 0, 10.0, 0, -0.5, 0, 20.0, 0, 0, 0, 0, 0, 0, 0, 1))]
    m = window_geotags(matrix, top=2, left=6)[0][3]
    assert (m[3], m[7]) == (13.0, 19.0)
    assert window_geotags([], 5, 5) == []


def test_footprints_turn_and_place_without_touching():
    block = np.zeros((20, 40), bool)
    block[5:15, 5:35] = True  # 10 x 30, long axis horizontal
    [(fp, cut)] = footprints(block)
    assert not cut
    assert fp.shape == (10, 30) and abs(principal_angle(fp)) < 1
    upright = turned(fp, 90)
    assert upright.shape == (30, 10) and upright.sum() == fp.sum()
    canvas = Canvas(50, 50, gap=2)
    assert canvas.place(fp, 0, 0)
    assert not canvas.place(fp, 11, 0), "a footprint 1 pixel below the first is within the gap"
    assert canvas.place(fp, 13, 0)
    assert mask_summary(canvas.mask)["count"] == 2
    border = np.zeros((10, 10), bool)
    border[0:3, 2:5] = True  # cut by the border: not a whole building
    [(_, cut)] = footprints(border)
    assert cut, "cut by the border: not a whole building"


def test_overwrite_replaces_an_earlier_forge(tmp_path):
    run("austin", tmp_path / "o", count=3, size=100)
    with pytest.raises(SatganError, match="--overwrite"):
        run("austin", tmp_path / "o", count=2, size=100)
    assert len(list(masks_folder(tmp_path / "o").iterdir())) == 3
    run("austin", tmp_path / "o", count=2, size=100, overwrite=True)
    assert sorted(p.name for p in masks_folder(tmp_path / "o").iterdir()) == ["austin10001.tif", "austin10002.tif"]
    assert len(json.loads((tmp_path / "o" / FORGE_JSON).read_text())["masks"]) == 2
    assert [p.name for p in (tmp_path / "o").iterdir() if p.name.startswith(".")] == [PUBLISHED]  # no staging


@pytest.mark.parametrize("source, kw, words", [
    ("atlantis", {}, "atlantis"),
    ("{missing}", {"method": "rearrange"}, "no such folder"),
    ("{inria}", {"method": "edit", "size": 5000}, "--size 5000"),
    ("{inria}", {"method": "rearrange", "split": "test"}, "no split 'test'"),
])
def test_bad_inputs_are_named_and_nothing_is_written(inria_root, tmp_path, source, kw, words):
    source = source.format(missing=tmp_path / "missing", inria=inria_root)
    out = tmp_path / "out"
    with pytest.raises(SatganError, match=words):
        run(source, out, **{"count": 2, "size": 100, **kw})
    assert not out.exists() or not any(out.rglob("*"))


def test_cli_forge_and_its_error_line(tmp_path, capsys):
    assert main(["forge", "kitsap", str(tmp_path / "o"), "--count", "2", "--size", "128"]) == 0
    assert "forged 2 masks (procedural)" in capsys.readouterr().out
    assert main(["forge", str(tmp_path / "nowhere"), str(tmp_path / "o2"), "--method", "edit"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("satgan: error:") and "nowhere" in err[0]


def test_rearrange_and_edit_same_seed_same_bytes(inria_root, tmp_path):
    for method in ("rearrange", "edit"):
        run(inria_root, tmp_path / f"{method}-a", method=method, count=3, size=160, seed=5)
        run(inria_root, tmp_path / f"{method}-b", method=method, count=3, size=160, seed=5)
        assert files(tmp_path / f"{method}-a") == files(tmp_path / f"{method}-b")


def test_a_city_named_twice_is_forged_once_per_turn(tmp_path):
    report = run("austin,austin,vienna", tmp_path / "o", count=4, size=100)
    names = [m["name"] for m in report["masks"]]
    assert names == ["austin10001", "vienna10001", "austin10002", "vienna10002"]
    assert len(list(masks_folder(tmp_path / "o").iterdir())) == 4


def test_overwrite_never_deletes_masks_no_forge_made(inria_root, tmp_path):
    """A real dataset's gt/ (no forge.json) is refused even with --overwrite; a forge's
    folder with a stranger in it too; its own masks are replaced."""
    real = tmp_path / "real"
    gt = masks_folder(real)
    gt.mkdir(parents=True)
    (gt / "austin1.tif").write_bytes(b"a real mask")
    with pytest.raises(SatganError, match="no forge made"):
        run("austin", real, count=1, size=100, overwrite=True)
    assert (gt / "austin1.tif").read_bytes() == b"a real mask"
    run("austin", tmp_path / "f", count=2, size=100)
    (masks_folder(tmp_path / "f") / "mine.tif").write_bytes(b"a user's file")
    with pytest.raises(SatganError, match="did not make"):
        run("austin", tmp_path / "f", count=1, size=100, overwrite=True)
    assert (masks_folder(tmp_path / "f") / "mine.tif").exists()


def test_photos_given_as_masks_are_refused(shared_data, tmp_path):
    with pytest.raises(SatganError, match="not a single-band mask"):
        run(shared_data / "geocompass" / "train" / "images", tmp_path / "o", method="edit", count=1, size=256)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.tif"))


def test_a_bare_masks_folder_takes_its_parents_name(tmp_path):
    source = tmp_path / "São Paulo" / "masks"
    source.mkdir(parents=True)
    mask = np.zeros((120, 120), np.uint8)
    mask[20:50, 30:90] = 255
    tifffile.imwrite(source / "tile.tif", mask)
    report = run(source, tmp_path / "o", method="edit", count=1, size=100)
    assert report["masks"][0]["name"] == "sao-paulo10001"
