import pytest

from satgan import SatganError
from satgan.data.sources import open_source
from tests.conftest import write_pair_folder


def test_inria_layout_from_root_or_parent(inria_root):
    for path in (inria_root, inria_root.parent):
        source = open_source(path)
        assert source.kind == "inria" and source.root == inria_root
    assert source.cities == ["austin", "chicago", "kitsap", "tyrol-w", "vienna"]
    assert {p.index for p in source.splits["val"]} == {1, 2, 3, 4, 5}
    assert {p.index for p in source.splits["train"]} == {6}
    assert source.counts()["chicago"] == {"train": 1, "val": 5}
    assert len(source.test_images) == 5  # one per Inria test city


def test_val_by_list_or_pattern(inria_root):
    source = open_source(inria_root, val="austin6, chicago*")
    expected = ["austin6"] + [f"chicago{i}" for i in range(1, 7)]
    assert sorted(p.stem for p in source.splits["val"]) == expected
    assert len(source.splits["train"]) == 30 - 7
    with pytest.raises(SatganError, match="match no pair"):
        open_source(inria_root, val=["nowhere*"])


def test_paired_folder_and_split_folders(tmp_path):
    write_pair_folder(tmp_path / "ds" / "train", [0.1, 0.2])
    write_pair_folder(tmp_path / "ds" / "validation", [0.3])
    source = open_source(tmp_path / "ds")
    assert source.counts() == {"ds": {"train": 2, "val": 1}}
    single = open_source(tmp_path / "ds" / "train")
    assert single.counts() == {"ds": {"train": 2}}


def test_images_without_masks(tmp_path):
    root = write_pair_folder(tmp_path / "ds", [0.1, 0.2, 0.3])
    (root / "masks" / "tile1.png").unlink()
    with pytest.raises(SatganError, match=r"1 image\(s\) have no mask.*tile1\.png.*--skip-unpaired"):
        open_source(root)
    with pytest.warns(UserWarning, match="without a mask skipped"):
        source = open_source(root, skip_unpaired=True)
    assert len(source.pairs) == 2 and [p.name for p in source.unpaired_images] == ["tile1.png"]


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(SatganError, match="no such folder"):
        open_source(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SatganError, match="no image/mask pairs found"):
        open_source(tmp_path / "empty")
    (tmp_path / "x" / "images").mkdir(parents=True)
    (tmp_path / "x" / "gt").mkdir()
    with pytest.raises(SatganError, match="no pair with matching file stems"):
        open_source(tmp_path / "x")


def test_real_folders(shared_data):
    geo = open_source(shared_data / "geocompass")
    assert geo.counts() == {"geocompass": {"train": 560, "val": 74}}
    assert geo.pairs[0].image.suffix == ".webp" and geo.pairs[0].mask.suffix == ".png"
    rio = open_source(shared_data / "spacenet-rio")
    assert rio.counts() == {"spacenet-rio": {"train": 15}}
