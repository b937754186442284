"""Galleries: samples per city, several models, scenes reassembled, old names, HTML, viewer."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from satgan import SatganError
from satgan.cli import main
from satgan.evaluation.baselines import FlatFill
from satgan.gallery.figures import side_by_side, swipe, viewer
from satgan.gallery.files import export_old_names, write_html
from satgan.gallery.samples import build_gallery, choose_samples
from satgan.generation.loading import load_generator


@pytest.fixture(scope="module")
def two_models(inria_arrays, tiny_checkpoint):
    return {"tiny": load_generator(tiny_checkpoint, "cpu"), "flat": FlatFill.from_split(inria_arrays, "val")}


def test_samples_per_city_and_models_side_by_side(inria_arrays, two_models):
    g = build_gallery(two_models, inria_arrays, per_city=2, scenes=1)
    assert sorted(set(g.cities)) == ["austin", "chicago", "kitsap", "tyrol-w", "vienna"]
    assert all(g.cities.count(c) == 2 for c in set(g.cities))
    assert g.models == ["tiny", "flat"] and g.generated["tiny"].shape == (10, 64, 64, 3)
    assert g.masks.shape == (10, 64, 64) and g.reals.shape == (10, 64, 64, 3)
    fig = side_by_side(g, "vienna")
    assert len(fig.axes) == 2 * 4  # two samples x (mask, tiny, flat, real)
    with pytest.raises(SatganError, match="no gallery samples of city 'paris'"):
        side_by_side(g, "paris")
    with pytest.raises(SatganError, match="no samples chosen"):
        build_gallery(two_models, inria_arrays, indices=[])
    manifest = json.loads((inria_arrays / "manifest.json").read_text())
    assert choose_samples(manifest, "val", 2, seed=0) == choose_samples(manifest, "val", 2, seed=0)


def test_scenes_put_tiles_back_in_place(inria_arrays, two_models):
    g = build_gallery(two_models, inria_arrays, indices=[0], scenes=1)
    scene = g.scenes[0]
    assert (scene["name"], scene["rows"], scene["cols"]) == ("austin1", 2, 2)
    assert scene["mask"].shape == (144, 144) and scene["generated"]["tiny"].shape == (144, 144, 3)
    # whole 72 px tiles in place: the top-right one is sample 1 (austin1, row 0, col 1)
    tiles = np.load(inria_arrays / "val" / "images.npy")
    assert np.array_equal(scene["real"][0:72, 72:144], tiles[1])
    assert np.array_equal(scene["generated"]["flat"][72:144, 0:72], two_models["flat"](
        np.load(inria_arrays / "val" / "masks.npy")[2:3])[0])


def test_old_names_html_and_viewer(inria_arrays, two_models, tmp_path):
    g = build_gallery(two_models, inria_arrays, indices=[0, 5], scenes=1)
    files = export_old_names(g, tmp_path / "files")
    names = sorted(p.relative_to(tmp_path / "files").as_posix() for p in files)
    assert names == ["MaskResized-austin1-1.jpeg", "MaskResized-austin2-2.jpeg", "OriginalResized-austin1-1.jpeg",
                     "OriginalResized-austin2-2.jpeg", "flat/Generated-austin1-1.jpeg",
                     "flat/Generated-austin2-2.jpeg", "tiny/Generated-austin1-1.jpeg", "tiny/Generated-austin2-2.jpeg"]
    page = write_html(g, tmp_path / "gallery.html").read_text()
    # self-contained: 2 samples x 4 panels + 5 scenes (one per city) x 4 panels, all inline
    assert len(re.findall(r"src='data:image/jpeg;base64,", page)) == 28
    assert "http" not in page.replace("http-equiv", "")
    assert swipe(np.zeros((4, 10, 3), np.uint8), np.full((4, 10, 3), 9, np.uint8), 0.5)[0, :, 0].tolist() == \
        [0, 0, 0, 0, 255, 255, 9, 9, 9, 9]
    widget = viewer(g)
    controls, (_, pair_view), caption = widget.children[0].children, widget.children[1].children, \
        widget.children[2]
    assert [c.description for c in controls] == ["sample", "model", "swipe"]
    first = pair_view.value
    controls[0].value = 1  # the next sample: both pictures and the caption follow
    assert pair_view.value != first and "austin2-2" in caption.value
    controls[2].value = 0.0  # the swipe at the left edge: all real
    shown = np.asarray(Image.open(io.BytesIO(pair_view.value)))
    assert np.array_equal(shown[:, 1:], g.reals[1][:, 1:])


def _widget_tree(widget) -> list:
    return [widget] + [w for child in getattr(widget, "children", ()) for w in _widget_tree(child)]


def test_the_viewer_captures_no_output(inria_arrays, two_models):
    """No Output widget: a headless runner answers captured output with a message on the
    shell channel while it waits there for the cell's reply, and can hang (nbclient#312)."""
    import ipywidgets as widgets

    g = build_gallery(two_models, inria_arrays, indices=[0], scenes=0)
    assert not [w for w in _widget_tree(viewer(g)) if isinstance(w, widgets.Output)]


def test_cli_gallery_writes_everything(inria_arrays, tiny_checkpoint, tiny_segmenter, tmp_path, capsys):
    code = main(["gallery", f"a={tiny_checkpoint}", f"b={tiny_checkpoint}", str(inria_arrays),
                 "--out", str(tmp_path / "g"), "--per-city", "1", "--scenes", "0", "--segmenter", str(tiny_segmenter)])
    assert code == 0 and "5 samples" in capsys.readouterr().out
    assert (tmp_path / "g" / "gallery.html").read_text().count("IoU ") == 5 * 3  # a, b and real for each tile
    assert len(list((tmp_path / "g" / "figures").glob("*.jpg"))) == 5
    assert len(list((tmp_path / "g" / "files" / "b").glob("Generated-*.jpeg"))) == 5
    assert main(["gallery", str(inria_arrays), "--out", str(tmp_path / "x")]) == 2
    assert main(["gallery", str(tiny_checkpoint), str(inria_arrays), "--out", str(tmp_path / "y"),
                 "--indices", "999"]) == 2
    assert "out of range" in capsys.readouterr().err
