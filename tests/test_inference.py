"""Generation: resize, grid and seamless modes, geo tags, memory, and bad input."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from satgan import SatganError
from satgan.checkpoint import load_checkpoint
from satgan.cli import main
from satgan.config import GenerateConfig
from satgan.data.readers import GEO_TAG_CODES
from satgan.data.writers import PIXEL_SCALE_TAG
from satgan.generation.generate import generate
from satgan.generation.loading import load_generator
from satgan.generation.modes import generate_grid, generate_resize, generate_seamless, hann_weights, window_starts


@pytest.fixture(scope="module")
def gen(tiny_checkpoint):
    return load_generator(tiny_checkpoint, device="cpu")


def structured_mask(h: int = 300, w: int = 420) -> np.ndarray:
    """Rows of rectangular buildings along streets: edges everywhere, in both directions."""
    mask = np.zeros((h, w), bool)
    for y in range(6, h - 20, 29):
        for x in range(4 + (y % 3) * 5, w - 18, 23):
            mask[y : y + 14 + (x % 5), x : x + 11 + (y % 7)] = True
    return mask


def border_gradient_ratio(image: np.ndarray, borders: list[int]) -> float:
    """Mean horizontal gradient magnitude across the given column borders, over the mean
    across every other column boundary."""
    grad = np.abs(np.diff(image.astype(np.float64), axis=1)).mean(axis=(0, 2))  # grad[x]: between x and x+1
    at = np.array(sorted({b - 1 for b in borders if 0 < b < image.shape[1]}))
    inside = np.setdiff1d(np.arange(len(grad)), at)
    return grad[at].mean() / grad[inside].mean()


def raw_geotags(path: Path) -> dict[int, tuple[int, int, bytes]]:
    """Each geo tag's type, count and value bytes as stored in the file."""
    with tifffile.TiffFile(path) as tif, open(path, "rb") as fh:
        out = {}
        for code in GEO_TAG_CODES:
            tag = tif.pages[0].tags.get(code)
            if tag is not None:
                fh.seek(tag.valueoffset)
                out[code] = (tag.dtype, tag.count, fh.read(tag.valuebytecount))
        return out


def test_window_starts_cover_with_at_least_the_overlap():
    starts = window_starts(1000, 256, 0.25)
    assert starts[0] == 0 and starts[-1] == 1000 - 256
    assert all(256 - (b - a) >= 0.25 * 256 - 1 for a, b in zip(starts, starts[1:]))
    assert window_starts(256, 256, 0.25) == [0]
    w = hann_weights(8)
    assert w.min() > 0 and w[3:5, 3:5].min() == w.max() and np.allclose(w, w.T)


def test_resize_and_grid_modes(gen):
    mask = structured_mask()
    assert gen.window == 64 and gen.multiple == 64
    image = generate_resize(gen, mask)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    tiles, assembled = generate_grid(gen, mask, 2)
    # 2 across the shorter side, 3 along the longer one (300 x 420)
    assert [(r, c) for r, c, _ in tiles] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert assembled.shape == (128, 192, 3)
    assert np.array_equal(assembled[64:128, 128:192], tiles[5][2])


def test_generation_is_deterministic_and_dropout_is_optional_noise(tiny_checkpoint):
    mask = structured_mask()[:64, :64]
    quiet = load_generator(tiny_checkpoint, device="cpu")
    assert np.array_equal(generate_resize(quiet, mask), generate_resize(quiet, mask))
    noisy = load_generator(tiny_checkpoint, device="cpu", dropout=True)
    assert any(m.training for m in noisy.net.modules() if isinstance(m, torch.nn.Dropout))
    torch.manual_seed(0)
    a = generate_resize(noisy, mask)
    torch.manual_seed(1)
    assert not np.array_equal(a, generate_resize(noisy, mask))


def test_seamless_output_has_no_seams(gen):
    mask = structured_mask(320, 448)  # 5 x 7 windows of 64 exactly when they do not overlap
    image = generate_seamless(gen, mask, scale=1, overlap=0.25, window=64)
    assert image.shape == (320, 448, 3)
    tiled = generate_seamless(gen, mask, scale=1, overlap=0.0, window=64)  # plain tiling: windows side by side
    assert window_starts(448, 64, 0.0) == list(range(0, 448, 64))
    for axis, length in ((1, 448), (0, 320)):  # across columns, then across rows (the streamed bands)
        view, plain_view = (image, tiled) if axis == 1 else (image.transpose(1, 0, 2), tiled.transpose(1, 0, 2))
        xs = window_starts(length, 64, 0.25)
        borders = xs[1:] + [x + 64 for x in xs[:-1]]  # where windows begin and end
        seamless = border_gradient_ratio(view, borders)
        assert seamless <= 1.10, f"gradient across window borders {seamless:.3f}x that inside (axis {axis})"
        # the measure sees seams where there are some
        plain = border_gradient_ratio(plain_view, list(range(64, length, 64)))
        assert plain > 1.10 and plain > seamless, (axis, plain, seamless)


def test_seamless_streams_by_rows_of_windows(gen):
    mask = structured_mask(1024, 1024)
    tracemalloc.start()
    generate_seamless(gen, mask, scale=1, overlap=0.25, batch_size=4, window=64)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    pixels, band = 1024 * 1024, 64 * 1024  # a band: one window's height of rows
    # the uint8 output is 3 bytes a pixel and the masks 2; a band's float32 sums, weights and
    # temporaries are a few times 16 bytes a pixel. Whole-image float sums and weights
    # would add 16 bytes for every pixel.
    assert peak < 6 * pixels + 40 * band, f"peak {peak / pixels:.1f} bytes per pixel"


def test_seamless_geotiff_keeps_the_geo_tags(inria_root, tiny_checkpoint, tmp_path):
    src = inria_root / "train" / "gt" / "austin1.tif"
    cfg = GenerateConfig(checkpoint=str(tiny_checkpoint), input=str(src), out=str(tmp_path / "out"), scale=1.0)
    result = generate(cfg)
    tif, preview = tmp_path / "out" / "austin1.tif", tmp_path / "out" / "austin1.preview.jpg"
    assert sorted(result["written"]) == sorted([str(tif), str(preview)])
    geo = raw_geotags(src)
    assert PIXEL_SCALE_TAG in geo and 34735 in geo and raw_geotags(tif) == geo  # byte for byte
    assert tifffile.imread(tif).shape == (320, 320, 3)
    assert Image.open(preview).size == (320, 320)
    # at the training scale (the checkpoint's: 160 px tiles resized to 72) the pixels are coarser
    result = generate(GenerateConfig(checkpoint=str(tiny_checkpoint), input=str(src), out=str(tmp_path / "coarse")))
    assert result["scale"] == pytest.approx(160 / 72)
    with tifffile.TiffFile(tmp_path / "coarse" / "austin1.tif") as b, tifffile.TiffFile(src) as a:
        assert b.pages[0].shape == (144, 144, 3)
        sx = a.pages[0].tags[PIXEL_SCALE_TAG].value[0]
        assert b.pages[0].tags[PIXEL_SCALE_TAG].value[0] == pytest.approx(sx * 160 / 72)


def test_cli_generates_a_folder_and_reports_unreadable_files(inria_root, tiny_checkpoint, tmp_path, capsys):
    folder = tmp_path / "masks"
    folder.mkdir()
    for name in ("austin1", "chicago1"):
        (folder / f"{name}.tif").write_bytes((inria_root / "train" / "gt" / f"{name}.tif").read_bytes())
    (folder / "broken.tif").write_bytes(b"II*\x00garbage")
    code = main(["generate", str(tiny_checkpoint), str(folder), "--out", str(tmp_path / "out"),
                 "--mode", "grid", "--grid", "2"])
    err = capsys.readouterr().err
    assert code == 1 and "broken.tif" in err and "1 input file(s) failed" in err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted([f"{c}-{k}.png" for c in ("austin1", "chicago1") for k in (1, 2, 3, 4)]
                           + ["austin1-grid.png", "chicago1-grid.png"])


def test_outputs_never_replace_inputs(tiny_checkpoint, tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    _save(folder / "a.png", np.zeros((80, 80), np.uint8))
    with pytest.raises(SatganError, match="inside the input folder"):
        generate(GenerateConfig(checkpoint=str(tiny_checkpoint), input=str(folder), out=str(folder), mode="resize"))
    _save(folder / "a.bmp", np.zeros((80, 80), np.uint8))
    with pytest.raises(SatganError, match=r"\['a'\] share a name"):
        generate(GenerateConfig(checkpoint=str(tiny_checkpoint), input=str(folder), out=str(tmp_path / "o")))
    assert sorted(p.name for p in folder.iterdir()) == ["a.bmp", "a.png"] and not (tmp_path / "o").exists()


def test_pretransformed_split_input(inria_arrays, tiny_checkpoint, tmp_path):
    result = generate(GenerateConfig(checkpoint=str(tiny_checkpoint), input=str(inria_arrays),
                                     out=str(tmp_path / "out"), mode="resize", limit=5))
    assert [Path(p).name for p in result["written"]] == ["austin1-1.png", "austin1-2.png", "austin1-3.png",
                                                         "austin1-4.png", "austin2-1.png"]
    assert Image.open(result["written"][0]).size == (64, 64)


def _save(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def test_bad_masks_get_one_clear_error(tiny_checkpoint, tmp_path):
    rng = np.random.default_rng(0)
    cases = {
        "rgb.png": ((rng.integers(0, 2, (80, 80, 3)) * 255).astype(np.uint8), "not a single-band mask"),
        "photo.png": (rng.integers(0, 256, (80, 80), dtype=np.uint8), "not a binary-like mask"),
        "levels.png": (rng.integers(1, 3, (80, 80), dtype=np.uint8), "mask levels 1 and 2, no 0 background"),
    }
    for name, (array, message) in cases.items():
        path = _save(tmp_path / name, array)
        with pytest.raises(SatganError, match=f"{name}: {message}"):
            generate(GenerateConfig(checkpoint=str(tiny_checkpoint), input=str(path), out=str(tmp_path / "o")))
    grid = _save(tmp_path / "thin.png", np.zeros((3, 90), np.uint8))
    with pytest.raises(SatganError, match="empty tiles"):
        generate(GenerateConfig(checkpoint=str(tiny_checkpoint), input=str(grid), out=str(tmp_path / "o"),
                                mode="grid", grid=4))
    small = _save(tmp_path / "small.png", np.zeros((40, 90), np.uint8))
    with pytest.raises(SatganError, match="smaller than the 64-pixel window"):
        generate(GenerateConfig(checkpoint=str(tiny_checkpoint), input=str(small), out=str(tmp_path / "o"), scale=1))
    assert not list((tmp_path / "o").glob("*")), "nothing written for bad input"


def test_foreign_checkpoints_are_refused(tiny_checkpoint, tmp_path):
    payload = torch.load(tiny_checkpoint, weights_only=True)
    payload["satgan_version"] = "9.1.0"  # another version of the same format still loads
    torch.save(payload, tmp_path / "other_version.pt")
    assert load_generator(tmp_path / "other_version.pt").window == 64
    payload["format"] = 99
    torch.save(payload, tmp_path / "newer.pt")
    with pytest.raises(SatganError, match="newer.pt: checkpoint format 99 is newer.*upgrade satgan"):
        load_generator(tmp_path / "newer.pt")
    payload["format"] = 2
    generator = payload["generator"]
    payload["generator"] = {k: v for k, v in generator.items() if not k.endswith("weight")}
    torch.save(payload, tmp_path / "missing.pt")
    with pytest.raises(SatganError, match="missing.pt: the generator weights do not fit.*missing"):
        load_generator(tmp_path / "missing.pt")
    del payload["generator"]
    torch.save(payload, tmp_path / "nogen.pt")
    with pytest.raises(SatganError, match="not a satgan checkpoint .*generator"):
        load_generator(tmp_path / "nogen.pt")


def test_format_1_checkpoints_are_migrated(tiny_checkpoint, tmp_path):
    """A checkpoint written before the schema had its own module: trainer state at the top
    level, history and partial sums as JSON strings, model.input_channels in the config."""
    new = torch.load(tiny_checkpoint, weights_only=True)
    old = {k: v for k, v in new.items() if k != "training"}
    old.update({k: v for k, v in new["training"].items() if k not in ("partial", "history")})
    old["format"], old["partial"], old["history"] = 1, json.dumps(new["training"]["partial"]), \
        json.dumps(new["training"]["history"])
    old["config"]["model"]["input_channels"] = old["config"]["data"]["mask_channels"]
    torch.save(old, tmp_path / "old.pt")
    migrated = load_checkpoint(tmp_path / "old.pt")
    assert migrated.training["history"] == new["training"]["history"]
    assert migrated.training["opt_G"]["param_groups"] == new["training"]["opt_G"]["param_groups"]
    assert all(torch.equal(migrated.generator[k], v) for k, v in new["generator"].items())
    old["config"]["model"]["input_channels"] = 3  # disagreeing with data.mask_channels = 1
    torch.save(old, tmp_path / "bad.pt")
    with pytest.raises(SatganError, match="bad.pt: model.input_channels=3 disagrees with data.mask_channels=1"):
        load_checkpoint(tmp_path / "bad.pt")


def test_real_masks_from_shared_data(shared_data, tiny_checkpoint, tmp_path):
    """SpaceNet Rio: an LZW GeoTIFF mask of 438x406 keeps its geo tags byte for byte;
    geocompass: palette PNG masks in a folder, generated in resize mode."""
    src = shared_data / "spacenet-rio" / "masks" / "013022223130_Public_img50.tif"
    result = generate(GenerateConfig(checkpoint=str(tiny_checkpoint), input=str(src), out=str(tmp_path / "rio"),
                                     scale=1.0))
    tif = Path(result["written"][0])
    assert raw_geotags(tif) == raw_geotags(src) and len(raw_geotags(src)) >= 5
    assert tifffile.imread(tif).shape == (406, 438, 3)
    masks = tmp_path / "geocompass"
    masks.mkdir()
    for path in sorted((shared_data / "geocompass" / "val" / "masks").iterdir())[:4]:
        (masks / path.name).write_bytes(path.read_bytes())
    result = generate(GenerateConfig(checkpoint=str(tiny_checkpoint), input=str(masks), out=str(tmp_path / "g"),
                                     mode="resize"))
    assert len(result["written"]) == 4 and not result["failed"]
    assert all(Image.open(p).size == (64, 64) for p in result["written"])
