import hashlib

import numpy as np
import pytest
import tifffile

from satgan import SatganError
from satgan.config import SynthConfig
from satgan.data.readers import read_geotags
from satgan.data.synthetic import render_scene, synthesize_inria


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.tif")):
        h.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def test_inria_layout_and_file_kinds(inria_root):
    assert inria_root.name == "AerialImageDataset"
    images = sorted((inria_root / "train" / "images").glob("*.tif"))
    assert len(images) == 30 and (inria_root / "train" / "gt" / "tyrol-w3.tif").exists()
    with tifffile.TiffFile(inria_root / "train" / "images" / "austin1.tif") as tif:
        page = tif.pages[0]
        assert page.shape == (320, 320, 3) and page.dtype == np.uint8
        assert page.compression == tifffile.COMPRESSION.NONE
    with tifffile.TiffFile(inria_root / "train" / "gt" / "austin1.tif") as tif:
        page = tif.pages[0]
        assert page.shape == (320, 320) and page.compression == tifffile.COMPRESSION.LZW
        assert page.predictor == tifffile.PREDICTOR.HORIZONTAL
        assert set(np.unique(page.asarray())) <= {0, 255}
    tags = dict((code, value) for code, _, _, value in read_geotags(inria_root / "train" / "gt" / "vienna2.tif"))
    assert tags[33550][:2] == (0.3, 0.3)
    assert 31256 in tags[34735]  # MGI / Austria GK East
    assert sorted(p.name for p in (inria_root / "test" / "images").glob("*.tif")) == [
        "bellingham1.tif", "bloomington1.tif", "innsbruck1.tif", "sfo1.tif", "tyrol-e1.tif"]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    def make(name, seed):
        return synthesize_inria(SynthConfig(out=str(tmp_path / name), cities=["kitsap"], per_city=1,
                                            size=200, seed=seed, test_per_city=0))
    assert _digest(make("a", 3)) == _digest(make("b", 3))
    assert _digest(make("a", 3)) != _digest(make("c", 4))


def test_cities_differ_in_building_density():
    density = {city: (render_scene(city, 2000, seed=1)[1] > 0).mean()
               for city in ("austin", "chicago", "kitsap", "tyrol-w", "vienna")}
    assert min(density["chicago"], density["vienna"]) > density["austin"] > max(density["kitsap"], density["tyrol-w"])
    assert density["kitsap"] > 0


def test_mask_follows_roof_edges():
    """The image changes sharply exactly on the mask's outline: the mask is where roofs are."""
    image, mask = render_scene("austin", 800, seed=2)
    grey = image.astype(np.float32).mean(axis=2)
    grad = np.abs(np.diff(grey, axis=1))
    edge = mask[:, 1:] != mask[:, :-1]
    shifted = np.zeros_like(edge)
    shifted[:, 3:] = edge[:, :-3]  # the same outline, moved 3 pixels off the roof edges
    assert grad[edge].mean() > 2.5 * grad[shifted & ~edge].mean()


def test_bad_settings():
    with pytest.raises(SatganError, match="unknown cities"):
        synthesize_inria(SynthConfig(out="/tmp/never", cities=["paris"]))
    with pytest.raises(SatganError, match="size=10: must be at least 64"):
        synthesize_inria(SynthConfig(out="/tmp/never", size=10))
