import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from satgan import SatganError
from satgan.atomic import write_json
from satgan.config import DataConfig
from satgan.data.dataset import PairDataset


@pytest.fixture()
def arrays(tmp_path):
    """Pretransformed-style arrays whose image red channel equals the mask, pixel for pixel,
    and whose green channel encodes position, so any crop or flip is visible."""
    n, s = 6, 40
    rng = np.random.default_rng(0)
    masks = (rng.random((n, s, s)) > 0.5).astype(np.uint8) * 255
    images = np.zeros((n, s, s, 3), np.uint8)
    images[..., 0] = masks
    images[..., 1] = (np.arange(s)[:, None] * s + np.arange(s)[None, :]) % 251
    images[..., 2] = np.arange(n)[:, None, None]
    (tmp_path / "train").mkdir()
    np.save(tmp_path / "train/images.npy", images)
    np.save(tmp_path / "train/masks.npy", masks)
    samples = [{"source": f"x{i}", "city": "c", "row": 0, "col": 0, "fraction": 0.5} for i in range(n)]
    write_json(tmp_path / "manifest.json", {"splits": {"train": {
        "count": n, "images": "train/images.npy", "masks": "train/masks.npy",
        "image_shape": [n, s, s, 3], "mask_shape": [n, s, s], "samples": samples}}})
    return tmp_path


def test_ranges_shapes_and_joint_augmentation(arrays):
    ds = PairDataset(arrays, config=DataConfig(crop=32, rot90=True))
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            mask, image = item["mask"], item["image"]
            assert mask.shape == (1, 32, 32) and image.shape == (3, 32, 32)
            assert mask.min() >= -1 and mask.max() <= 1 and image.dtype == torch.float32
            assert torch.equal(image[0], mask[0])  # same crop, flip and rotation for both
            assert torch.all(image[2] == image[2, 0, 0]) and round(float((image[2, 0, 0] + 1) * 127.5)) == i


def test_three_channel_mask_and_eval_centre_crop(arrays):
    ds = PairDataset(arrays, config=DataConfig(crop=32, mask_channels=3), augment=False)
    item = ds[1]
    assert item["mask"].shape == (3, 32, 32) and torch.equal(item["mask"][0], item["mask"][2])
    raw = np.load(arrays / "train/masks.npy")[1, 4:36, 4:36]
    assert torch.equal(item["mask"][0], torch.from_numpy(raw).float() / 127.5 - 1)


def test_reproducible_per_seed_and_epoch(arrays):
    def crops(seed, epoch):
        ds = PairDataset(arrays, config=DataConfig(crop=24, seed=seed))
        ds.set_epoch(epoch)
        return torch.stack([ds[i]["image"][1] for i in range(len(ds))])

    assert torch.equal(crops(0, 0), crops(0, 0))
    assert not torch.equal(crops(0, 0), crops(0, 1))
    assert not torch.equal(crops(0, 0), crops(1, 0))


def test_dataloader_workers_match_single_process_and_differ_from_each_other(arrays):
    ds = PairDataset(arrays, config=DataConfig(crop=24))
    ds.set_epoch(2)
    single = torch.cat([b["image"] for b in DataLoader(ds, batch_size=2, num_workers=0)])
    multi = torch.cat([b["image"] for b in DataLoader(ds, batch_size=2, num_workers=2)])
    assert torch.equal(single, multi)
    # position channel: each sample's crop offset/flip; not all the same across samples
    corners = {tuple(img[1, 0, :2].tolist()) for img in multi}
    assert len(corners) > 1


def test_errors(arrays, tmp_path_factory):
    with pytest.raises(SatganError, match="crop 64 does not fit the 40x40 tiles"):
        PairDataset(arrays, config=DataConfig(crop=64))
    with pytest.raises(SatganError, match="no split 'val'; it has train"):
        PairDataset(arrays, split="val", config=DataConfig(crop=32))
    empty = tmp_path_factory.mktemp("raw")
    with pytest.raises(SatganError, match="not a pretransformed folder.*satgan pretransform"):
        PairDataset(empty)
    with pytest.raises(IndexError):
        PairDataset(arrays, config=DataConfig(crop=32))[6]
