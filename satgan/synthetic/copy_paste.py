"""The copy-paste baseline (Ghiasi et al., CVPR 2021, "Simple Copy-Paste"): new training
pairs made from real ones alone, without a generator. Each new tile is a real tile with
the buildings of another real tile (their pixels and their mask) pasted onto it, each at a
random place, quarter turn and flip. Pasted pixels cover what was there, in the image and
in the mask.

It uses only the real tiles it is given, so in segbench a copy-paste arm sees exactly the
real tiles its fraction's real-only arm sees: synthetic pairs are worth a generator only
where they beat it (the literature's simple baseline, e.g. 37.9 -> 44.1 mIoU on
DynamicEarthNet).
"""

from __future__ import annotations

import numpy as np

from satgan.data.footprints import buildings, ndimage
from satgan.segmentation.training import Tiles

COPY_PASTE_STREAM = 4  # its random stream per seed, apart from segbench's other streams
MIN_AREA = 4  # specks of fewer pixels are not buildings


def _turned(a: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    return np.rot90(a[:, ::-1] if flip else a, turns)


def paste_buildings(image: np.ndarray, mask: np.ndarray, source_image: np.ndarray, source_mask: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """``image`` (H, W, 3) and ``mask`` (H, W) uint8 with every building of the source pair
    (a building where ``source_mask`` >= 128) pasted at a random place, quarter turn and
    flip; a building larger than the tile is left out. Returns new arrays and the count pasted."""
    image, mask = image.copy(), mask.copy()
    h, w = mask.shape
    labels, _ = buildings(np.asarray(source_mask) >= 128)
    pasted = 0
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        footprint = labels[box] == k
        if footprint.sum() < MIN_AREA:
            continue
        turns, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
        footprint, pixels = _turned(footprint, turns, flip), _turned(np.asarray(source_image[box]), turns, flip)
        fh, fw = footprint.shape
        if fh > h or fw > w:
            continue
        y, x = int(rng.integers(0, h - fh + 1)), int(rng.integers(0, w - fw + 1))
        image[y:y + fh, x:x + fw][footprint] = pixels[footprint]
        mask[y:y + fh, x:x + fw][footprint] = 255
        pasted += 1
    return image, mask, pasted


def copy_paste_tiles(real: Tiles, indices: np.ndarray, count: int, seed: int) -> Tiles:
    """``count`` copy-paste tiles from the real tiles at ``indices`` only: each a random one
    of them with the buildings of another random one pasted on (:func:`paste_buildings`).
    The same tiles, indices and seed give the same tiles."""
    indices = np.asarray(indices)
    rng = np.random.default_rng([seed, COPY_PASTE_STREAM])
    side = real.masks.shape[1:3]
    images, masks = np.empty((count, *side, 3), np.uint8), np.empty((count, *side), np.uint8)
    for i in range(count):
        target, source = rng.choice(indices, 2, replace=len(indices) < 2)
        images[i], masks[i], _ = paste_buildings(real.images[target], real.masks[target], real.images[source],
                                                 real.masks[source], rng)
    return Tiles(real.root, "copy-paste", images, masks)
