"""Whole-scene measurements: edge sharpness (a frame at window borders) and shift
consistency (a lattice of per-window decisions). Each must fail on a deliberately
latticed or framed output and pass on a smooth one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from satgan import SatganError
from satgan.config import Config
from satgan.generation.consistency import shift_consistency, shifted_scenes
from satgan.generation.loading import Generator
from satgan.generation.modes import sample_windows, seamless_window
from satgan.metrics import edge_sharpness, shifted_psnr
from satgan.models.shared_norm import SharedStatistics


def smooth_scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.random((h // 16 + 2, w // 16 + 2, 3))
    ys, xs = np.linspace(0, coarse.shape[0] - 1.001, h), np.linspace(0, coarse.shape[1] - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    c = coarse
    img = (c[y0][:, x0] * (1 - fy) * (1 - fx) + c[y0 + 1][:, x0] * fy * (1 - fx)
           + c[y0][:, x0 + 1] * (1 - fy) * fx + c[y0 + 1][:, x0 + 1] * fy * fx)
    return (img * 255).astype(np.uint8)


def scattered_buildings(side: int, count: int, top: int, sides: tuple[int, int], seed: int) -> np.ndarray:
    """A ``side`` x ``side`` mask of ``count`` random rectangles (corners below ``top``, sides in ``sides``)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((side, side), bool)
    for _ in range(count):
        y, x = rng.integers(0, top, 2)
        mask[y : y + rng.integers(*sides), x : x + rng.integers(*sides)] = True
    return mask


def test_edge_sharpness_sees_a_frame():
    scene = smooth_scene(128, 160)
    assert edge_sharpness(scene) < 1.5
    framed = scene.copy()
    framed[1, :] = framed[-2, :] = framed[:, 1] = framed[:, -2] = 0  # a dark line just inside the border
    assert edge_sharpness(framed) > 3


def test_shifted_psnr_separates_a_lattice_from_a_smooth_scene():
    scene = smooth_scene(200, 200)
    assert shifted_psnr(scene[:180, :180], scene[10:190, 10:190], 10, 10) == float("inf")

    def latticed(offset: int) -> np.ndarray:  # each 40 px tile tinted on its own, tiles aligned to `offset`
        out = scene[offset:].astype(np.int16).copy()
        rng = np.random.default_rng(offset)
        for y in range(0, out.shape[0], 40):
            for x in range(0, out.shape[1], 40):
                out[y : y + 40, x : x + 40] += rng.integers(-40, 40)
        return np.clip(out, 0, 255).astype(np.uint8)

    assert shifted_psnr(latticed(0), latticed(20), 20, 0) < 25
    with pytest.raises(Exception, match="no common area"):
        shifted_psnr(scene[:20, :20], scene[:20, :20], 15, 15, margin=5)


class PerPixel(nn.Module):
    """Output depends on each pixel alone: windows cannot show."""

    def forward(self, x):
        return torch.tanh(x).expand(-1, 3, -1, -1)


class PerWindow(nn.Module):
    """Output depends on the window's mean: every window decides on its own."""

    def forward(self, x):
        decision = torch.tanh(10 * (x.mean(dim=(2, 3), keepdim=True) + 0.8))  # forest or grass, per window
        return (0.1 * x + decision).expand(-1, 3, -1, -1).clamp(-1, 1)


class WindowMean(nn.Module):
    """Output shifted by the window's mean, as a normalization over the window does."""

    def forward(self, x):
        return (0.5 * x - 0.5 * x.mean(dim=(2, 3), keepdim=True)).expand(-1, 3, -1, -1)


def generator(net: nn.Module) -> Generator:
    return Generator(net, Config(), torch.device("cpu"), window=32, multiple=1, pixel_scale=None)


def test_shift_consistency_fails_per_window_decisions_and_passes_local_ones():
    mask = scattered_buildings(200, 40, top=190, sides=(4, 14), seed=0)
    assert shift_consistency(generator(PerPixel()), mask, window=32) > 50
    assert shift_consistency(generator(PerWindow()), mask, window=32) < 30


def test_shift_is_half_a_stride_at_any_scale():
    """At a scale that is not a whole number the windows still move by half a stride and
    both scenes see the same input pixels (a per-pixel generator agrees exactly)."""
    mask = scattered_buildings(350, 70, top=330, sides=(6, 24), seed=1)
    first, second, shift, window = shifted_scenes(generator(PerPixel()), mask, scale=1.7483, window=32)
    assert window == 32
    assert shift == 12  # 32-pixel windows, 25 % overlap: a stride of 24
    assert first.shape == (200, 200, 3) and second.shape == (188, 188, 3)
    assert np.array_equal(first[shift:, shift:], second)
    assert shift_consistency(generator(PerWindow()), mask, scale=1.7483, window=32) < 30


def test_seamless_window_takes_more_context_where_the_scene_allows():
    gen = Generator(PerPixel(), Config(), torch.device("cpu"), window=128, multiple=128, pixel_scale=None)
    assert seamless_window(gen, 3000, 2000) == 768
    assert seamless_window(gen, 3000, 700) == 640  # the largest multiple of 128 that fits
    assert seamless_window(gen, 200, 200) == 128  # never below the training crop
    assert seamless_window(gen, 3000, 3000, window=256) == 256
    with pytest.raises(SatganError, match="multiple of 128"):
        seamless_window(gen, 3000, 3000, window=200)
    with pytest.raises(SatganError, match="smaller than the 128-pixel window"):
        seamless_window(gen, 100, 300)


def test_larger_windows_remove_a_lattice_that_training_crop_windows_leave():
    """A generator whose output depends on the window's mean (as instance norm makes it)
    agrees with itself across window offsets once the windows are large: the default."""
    mask = scattered_buildings(1600, 2000, top=1590, sides=(4, 14), seed=2)
    gen = Generator(WindowMean(), Config(), torch.device("cpu"), window=32, multiple=32, pixel_scale=None)
    small_windows = shift_consistency(gen, mask, window=32)
    default = shift_consistency(gen, mask)
    assert default > small_windows + 6


class NormalisedPerPixel(nn.Module):
    """Instance norm, then a per-pixel function: with each window's own statistics the
    output depends on the window's content; with shared statistics it cannot."""

    def __init__(self):
        super().__init__()
        self.norm = nn.InstanceNorm2d(1)

    def forward(self, x):
        return torch.tanh(0.5 * self.norm(x)).expand(-1, 3, -1, -1)


def test_shared_statistics_remove_the_lattice_instance_norm_draws():
    mask = scattered_buildings(600, 300, top=590, sides=(4, 20), seed=3)
    gen = generator(NormalisedPerPixel())
    # at a fractional scale the output has many grey levels, so statistics sampled from other
    # windows in the shifted scene show as a (small) difference: 31.4 -> 37.5 dB
    per_window = shift_consistency(gen, mask, scale=1.5, window=32, shared_norm=False)
    shared = shift_consistency(gen, mask, scale=1.5, window=32)
    assert per_window < 34 and shared > per_window + 4
    assert type(gen.net.norm).forward is gen.net.norm.forward.__func__  # the layer is itself again afterwards


def test_shared_statistics_of_one_window_are_its_own():
    """Recorded over one window and applied to it, shared statistics give instance norm's
    own result; recorded over several, the pooled moments of all of them."""
    norm = nn.InstanceNorm2d(4)
    a, b = torch.randn(1, 4, 16, 16) * 3 + 1, torch.randn(2, 4, 16, 16)
    stats = SharedStatistics(norm)
    with stats.recording():
        norm(a)
    with stats.applied():
        assert torch.allclose(norm(a), nn.functional.instance_norm(a), atol=1e-4)
    with stats.recording():
        norm(b)
    mean, var = stats.statistics(0)
    pooled = torch.cat([a, b])
    assert torch.allclose(mean.flatten(), pooled.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(var.flatten(), pooled.var((0, 2, 3), unbiased=False), atol=1e-4)
    assert SharedStatistics(nn.BatchNorm2d(4)).layers == []  # batch norm in eval mode is shared already
    other = SharedStatistics(norm)
    with other.recording():
        norm(b)
    with stats.applied():
        with other.applied():
            b_mean, b_var = b.mean((0, 2, 3), keepdim=True), b.var((0, 2, 3), unbiased=False, keepdim=True)
            assert torch.allclose(norm(b), (b - b_mean) / (b_var + norm.eps).sqrt(), atol=1e-4)
        assert torch.allclose(norm(a), (a - mean) / (var + norm.eps).sqrt(), atol=1e-4)  # nested: restored
    assert "forward" not in norm.__dict__


def test_layers_of_a_few_positions_keep_their_own_statistics():
    """A 2x2 feature map (the deep end of a small window) has no usable pooled variance:
    recorded over one window it would be 0 and blow up every other window. Such layers
    normalise each window by itself; a 4x4 one is shared."""
    norm = nn.InstanceNorm2d(3)
    small, other = torch.randn(1, 3, 2, 2), torch.randn(1, 3, 2, 2) * 5 + 2
    stats = SharedStatistics(norm)
    with stats.recording():
        norm(small)
    assert not stats.recorded
    with stats.applied():
        assert torch.allclose(norm(other), nn.functional.instance_norm(other), atol=1e-5)
        assert norm(other).abs().max() < 10
    with stats.recording():
        norm(torch.randn(1, 3, 4, 4))
    assert stats.recorded


def test_sample_windows_spreads_over_the_scene():
    ys, xs = [0, 10, 20, 30, 40], [0, 10, 20, 30, 40]
    picked = sample_windows(ys, xs, 7)
    assert len(set(picked)) == 7 and picked[0] == (0, 0) and picked[-1] == (40, 40)
    assert sample_windows([0], [0, 5], 8) == [(0, 0), (0, 5)]
    assert sample_windows(ys, xs, 1) == [(20, 20)]
