"""``satgan subset``: N train tiles of a pretransformed folder (segbench's draw), its other
splits whole, a manifest of its own; bad inputs fail with one message and leave nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from satgan import SatganError
from satgan.cli import main
from satgan.data.arrays import load_manifest, open_arrays
from satgan.data.subset import subset, subset_folder, subset_indices


def test_a_subset_holds_the_drawn_tiles_and_every_other_split(inria_arrays, tmp_path):
    source = load_manifest(inria_arrays)
    total = source["splits"]["train"]["count"]
    made = subset_folder(inria_arrays, tmp_path / "few", 3, seed=2)
    rows = subset_indices(total, 3, 2)
    assert sorted(rows.tolist()) == sorted(subset(total, 3, 2).tolist())  # segbench's tiles
    masks, images = open_arrays(tmp_path / "few", made["splits"]["train"])
    all_masks, all_images = open_arrays(inria_arrays, source["splits"]["train"])
    assert np.array_equal(images, all_images[rows]) and np.array_equal(masks, all_masks[rows])
    assert made["splits"]["train"]["samples"] == [source["splits"]["train"]["samples"][i] for i in rows]
    val_masks, _ = open_arrays(tmp_path / "few", made["splits"]["val"])
    assert np.array_equal(val_masks, open_arrays(inria_arrays, source["splits"]["val"])[0])
    assert made["content_hash"] != source["content_hash"]
    assert made["subset_of"]["content_hash"] == source["content_hash"] and made["subset_of"]["count"] == 3
    assert made["settings"]["subset_of"]["count"] == 3  # pretransform never takes it for its own output
    assert load_manifest(tmp_path / "few") == json.loads(json.dumps(made))
    again = subset_folder(inria_arrays, tmp_path / "again", 3, seed=2)
    assert again["content_hash"] == made["content_hash"]  # the same draw, the same bytes
    assert subset_folder(inria_arrays, tmp_path / "other", 3, seed=3)["content_hash"] != made["content_hash"]


@pytest.mark.parametrize("count, named", [(0, "give 1 to"), (10_000, "give 1 to")])
def test_a_count_the_split_cannot_give_is_refused(inria_arrays, tmp_path, count, named):
    with pytest.raises(SatganError, match=named):
        subset_folder(inria_arrays, tmp_path / "out", count)
    assert not (tmp_path / "out").exists()


def test_an_occupied_folder_is_kept_unless_overwrite(inria_arrays, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SatganError, match="not empty"):
        subset_folder(inria_arrays, out, 2)
    with pytest.raises(SatganError, match="only replaces one"):
        subset_folder(inria_arrays, out, 2, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    subset_folder(inria_arrays, tmp_path / "done", 2)
    subset_folder(inria_arrays, tmp_path / "done", 3, overwrite=True)
    assert load_manifest(tmp_path / "done")["splits"]["train"]["count"] == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left behind


def test_command_line(inria_arrays, tmp_path, capsys):
    assert main(["subset", str(inria_arrays), str(tmp_path / "few"), "--count", "2", "--seed", "1"]) == 0
    assert "train 2" in capsys.readouterr().out
    assert main(["subset", str(tmp_path / "nowhere"), str(tmp_path / "x"), "--count", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0] and not (tmp_path / "x").exists()
