"""A newcomer's path, from the README alone: the "Your own data" commands, run as written
on a small paired folder (only paths differ, and training and judging are cut short:
one epoch, no reference segmenter), give a trained model, a gallery, a report and a
seamless image."""

from __future__ import annotations

import json
import re
import shlex

import numpy as np
from PIL import Image

from satgan.cli import main
from tests.conftest import REPO


def readme_block(title: str) -> list[list[str]]:
    """The satgan commands of the first fenced block under the README section ``title``."""
    section = (REPO / "README.md").read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = [shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines()]
    return [words[1:] for words in lines if words and words[0] == "satgan"]


def test_your_own_data_as_the_readme_says(tmp_path, monkeypatch):
    pairs = tmp_path / "my_pairs"
    (pairs / "images").mkdir(parents=True)
    (pairs / "masks").mkdir()
    rng = np.random.default_rng(0)
    for stem in ("tile_001", "tile_002", *(f"tile_{i}" for i in range(10, 16))):  # tile_00* is the README's val
        mask = np.zeros((300, 300), np.uint8)
        for _ in range(6):
            y, x = rng.integers(0, 260, 2)
            mask[y:y + 30, x:x + 40] = 255
        image = np.where(mask[..., None] > 0, 200, 90).astype(np.uint8) + rng.integers(0, 30, (300, 300, 3),
                                                                                          dtype=np.uint8)
        Image.fromarray(mask).save(pairs / "masks" / f"{stem}.png")
        Image.fromarray(image).save(pairs / "images" / f"{stem}.png")
    Image.fromarray(np.kron(np.eye(2, dtype=np.uint8) * 255, np.ones((200, 200), np.uint8))).save(
        tmp_path / "big_mask.tif")
    monkeypatch.chdir(tmp_path)
    commands = readme_block("Your own data")
    assert [c[0] for c in commands] == ["pretransform", "train", "gallery", "evaluate", "generate"]
    # each shortened, and no segmenter trained (the alignment loss's and the judges' take minutes)
    shorter = {"train": ["--set", "train.epochs=1", "--set", "loss.seg_weight=0"], "gallery": ["--no-mask-iou"],
               "evaluate": ["--no-mask-iou"]}
    for argv in commands:
        assert main([*argv, *shorter.get(argv[0], [])]) == 0, argv
    assert (tmp_path / "runs/mine/checkpoints/last.pt").is_file()
    assert (tmp_path / "gallery/gallery.html").is_file()
    report = json.loads((tmp_path / "report.json").read_text())
    assert {"flat", "untrained"} <= set(report["models"]) and len(report["models"]) == 3
    assert (tmp_path / "generated/big_mask.tif").is_file()
