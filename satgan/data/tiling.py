"""Cutting masks and images into grid tiles and resizing them: shared by pretransform,
generation and the notebooks' views."""

from __future__ import annotations

import numpy as np
from PIL import Image

from satgan import SatganError


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Resize ``(H, W, 3) uint8`` to ``(size, size, 3)``, antialiased bicubic.

    Pillow, so that pretransform runs without torch. A reducing gap of 2 first shrinks by
    a whole factor with a box filter, then resamples bicubically the last 2x or more: about
    3x faster than plain bicubic on Inria-sized tiles, within a grey level of it on average.
    """
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC, reducing_gap=2.0))


def mask_coverage(mask: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize a mask (``bool``, or uint8 0/255) to ``size`` (a side, or (height, width)) as
    uint8 area coverage 0-255.

    A box filter: each output pixel is the building fraction of the input area it covers.
    """
    if mask.dtype == bool:
        mask = mask.view(np.uint8) * np.uint8(255)
    h, w = (size, size) if isinstance(size, int) else size
    return np.asarray(Image.fromarray(mask).resize((w, h), Image.BOX))


def grid_shape(height: int, width: int, grid: int) -> tuple[int, int]:
    """Rows and columns of tiles: ``grid`` across the shorter side, as many of the same
    size as fit along the longer one (NxN for square images such as Inria's)."""
    if height <= width:
        return grid, max(grid, round(grid * width / height))
    return max(grid, round(grid * height / width)), grid


def tile_bounds(height: int, width: int, grid: int) -> list[tuple[int, int, int, int, int, int]]:
    """``(row, col, y0, y1, x0, x1)`` of each tile; leftover edge pixels are dropped."""
    rows, cols = grid_shape(height, width, grid)
    th, tw = height // rows, width // cols
    return [(r, c, r * th, (r + 1) * th, c * tw, (c + 1) * tw) for r in range(rows) for c in range(cols)]


def tile_fractions(mask: np.ndarray, grid: int) -> np.ndarray:
    """Building fraction (0-1) of each tile, as a ``(rows, cols)`` array (see :func:`grid_shape`)."""
    out = np.zeros(grid_shape(*mask.shape, grid))
    for r, c, y0, y1, x0, x1 in tile_bounds(*mask.shape, grid):
        out[r, c] = np.count_nonzero(mask[y0:y1, x0:x1]) / ((y1 - y0) * (x1 - x0))
    return out


def mosaic(tiles: list[np.ndarray], size: int) -> np.ndarray:
    """A ``size`` x ``size`` scene of equal-sized 2-D ``tiles`` laid side by side in row
    order and cropped to ``size``: a whole-scene stand-in built from small real masks
    (geocompass's 256 px tiles make a 5000 px mask from 400 of them)."""
    th, tw = tiles[0].shape
    rows, cols = -(-size // th), -(-size // tw)
    if len(tiles) < rows * cols:
        raise SatganError(f"a {size}x{size} mosaic of {th}x{tw} tiles needs {rows * cols}, got {len(tiles)}")
    out = np.empty((rows * th, cols * tw), tiles[0].dtype)
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        out[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = tiles[i]
    return out[:size, :size]
