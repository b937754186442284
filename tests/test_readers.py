import warnings

import numpy as np
import pytest
import tifffile
from PIL import Image

from satgan import SatganError, SatganWarning
from satgan.data.readers import image_size, read_geotags, read_image, read_mask


def _save(path, arr, **kw):
    Image.fromarray(arr).save(path, **kw)
    return path


@pytest.mark.parametrize("high", [255, 1])
def test_two_level_masks(tmp_path, high):
    arr = np.zeros((8, 10), np.uint8)
    arr[2:5, 3:7] = high
    mask = read_mask(_save(tmp_path / "m.png", arr))
    assert mask.dtype == bool and mask.shape == (8, 10)
    assert mask.sum() == 12 and mask[2:5, 3:7].all()


def test_palette_mask_uses_index(tmp_path):
    img = Image.new("P", (6, 4))
    img.putpalette([0, 0, 0, 0, 0, 0, 200, 30, 30] + [0] * 759)  # index 1 is black, like index 0
    px = np.zeros((4, 6), np.uint8)
    px[0, :3] = 1
    px[3, 5] = 2
    img.putdata(px.ravel().tolist())
    img.save(tmp_path / "p.png")
    mask = read_mask(tmp_path / "p.png")
    assert mask.sum() == 4 and mask[0, :3].all() and mask[3, 5]


def test_rgb_mask(tmp_path):
    arr = np.zeros((5, 5, 3), np.uint8)
    arr[1, 1] = (255, 255, 255)
    arr[2, 2] = (255, 0, 0)
    assert read_mask(_save(tmp_path / "rgb.png", arr)).sum() == 2


def test_jpeg_noisy_mask_is_thresholded_with_warning(tmp_path):
    arr = np.zeros((64, 64), np.uint8)
    arr[13:45, 11:43] = 255  # not aligned with JPEG's 8x8 blocks: edges ring
    path = _save(tmp_path / "m.jpg", arr, quality=60)
    with pytest.warns(SatganWarning, match="m.jpg.*grey levels"):
        mask = read_mask(path)
    assert abs(int(mask.sum()) - 32 * 32) < 40


def test_rgba_and_16bit_images_are_converted_with_warnings(tmp_path):
    rgba = np.full((4, 4, 4), 100, np.uint8)
    with pytest.warns(SatganWarning, match="alpha"):
        assert read_image(_save(tmp_path / "a.png", rgba)).shape == (4, 4, 3)
    deep = np.full((4, 4, 3), 2047, np.uint16)
    deep[0, 0] = 0
    tifffile.imwrite(tmp_path / "d.tif", deep, photometric="rgb")
    with pytest.warns(SatganWarning, match="11-bit"):
        img = read_image(tmp_path / "d.tif")
    assert img.dtype == np.uint8 and img[1, 1, 0] == 255 and img[0, 0, 0] == 0


def test_grey_image_becomes_rgb(tmp_path):
    img = read_image(_save(tmp_path / "g.png", np.full((3, 4), 7, np.uint8)))
    assert img.shape == (3, 4, 3) and (img == 7).all()


def test_lzw_tiff_mask_and_geotags(tmp_path):
    arr = (np.arange(50 * 60).reshape(50, 60) % 7 == 0).astype(np.uint8) * 255
    tags = [(33550, 12, 3, (0.3, 0.3, 0.0))]
    tifffile.imwrite(tmp_path / "m.tif", arr, compression="lzw", predictor=True, extratags=tags)
    assert (read_mask(tmp_path / "m.tif") == (arr > 0)).all()
    assert image_size(tmp_path / "m.tif") == (50, 60)
    assert read_geotags(tmp_path / "m.tif")[0][3] == (0.3, 0.3, 0.0)


def test_truncated_tiff_names_the_file(tmp_path):
    arr = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "t.tif", arr, compression="lzw")
    data = (tmp_path / "t.tif").read_bytes()
    (tmp_path / "t.tif").write_bytes(data[: len(data) // 3])
    with pytest.raises(SatganError, match=r"t\.tif: cannot be read"):
        read_image(tmp_path / "t.tif")


def test_not_an_image_and_missing_file(tmp_path):
    (tmp_path / "x.png").write_text("hello")
    with pytest.raises(SatganError, match=r"x\.png: cannot be read"):
        read_mask(tmp_path / "x.png")
    with pytest.raises(SatganError, match="no such file"):
        read_image(tmp_path / "missing.png")


def test_real_geocompass_and_spacenet_files(shared_data):
    image = read_image(next((shared_data / "geocompass/train/images").glob("*.webp")))
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8 and image.std() > 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # palette PNG and LZW TIFF masks are clean: no warning
        mask = read_mask(next((shared_data / "geocompass/train/masks").glob("*.png")))
        rio = read_mask(shared_data / "spacenet-rio/masks/013022223130_Public_img50.tif")
    assert mask.shape == (256, 256) and 0 < mask.mean() < 1
    assert rio.shape == (406, 438) and 0 < rio.mean() < 0.5
