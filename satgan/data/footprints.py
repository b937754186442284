"""Buildings as the connected components of a mask: finding them, describing a mask by
them, turning them and placing them on a new mask without overlaps.

Used by :mod:`satgan.data.forge` to rearrange and edit real masks; a footprint is a
``bool`` array cropped tight around one building.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from satgan import SatganError

try:  # scipy is optional (the synthetic extra): a missing one should name the extra
    from scipy import ndimage
except ImportError as exc:
    raise SatganError(f"forging masks needs scipy: pip install 'satgan[synthetic]' ({exc})") from exc

EIGHT = np.ones((3, 3), bool)  # diagonal neighbours belong to the same building


def buildings(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label image (0 background, 1..n buildings, 8-connected) and the count n."""
    labels, count = ndimage.label(mask, structure=EIGHT)
    return labels, int(count)


def footprints(mask: np.ndarray, min_area: int = 4) -> list[tuple[np.ndarray, bool]]:
    """The buildings of ``mask`` as tight ``bool`` crops, each with whether the mask's
    border cuts it (then only part of the building is known); specks under ``min_area``
    pixels left out."""
    labels, _ = buildings(mask)
    h, w = mask.shape
    out = []
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        fp = labels[box] == k
        if fp.sum() >= min_area:
            ys, xs = box
            out.append((fp, ys.start == 0 or xs.start == 0 or ys.stop == h or xs.stop == w))
    return out


def mask_summary(mask: np.ndarray) -> dict:
    """One mask described by its buildings: ``count``, ``areas`` (pixels each) and the
    building ``fraction`` of its pixels."""
    labels, count = buildings(mask)
    areas = np.bincount(labels.ravel())[1:] if count else np.zeros(0, np.int64)
    return {"count": count, "areas": [int(a) for a in areas], "fraction": float(np.count_nonzero(mask) / mask.size)}


def distribution(summaries: list[dict]) -> dict:
    """Quartiles of building count and building fraction per mask, and of building area,
    over many :func:`mask_summary` results (how a source and a forge are compared)."""
    def quartiles(values) -> dict:
        v = np.asarray(values, np.float64)
        if not len(v):
            return {"n": 0}
        q = np.percentile(v, [25, 50, 75])
        return {"n": len(v), "mean": round(float(v.mean()), 4), "q1": round(float(q[0]), 4),
                "median": round(float(q[1]), 4), "q3": round(float(q[2]), 4)}

    return {"masks": len(summaries),
            "count": quartiles([s["count"] for s in summaries]),
            "fraction": quartiles([s["fraction"] for s in summaries]),
            "area": quartiles([a for s in summaries for a in s["areas"]])}


def principal_angle(footprint: np.ndarray) -> float:
    """Direction of a footprint's long axis in degrees (from the second moments)."""
    ys, xs = np.nonzero(footprint)
    if len(xs) < 2:
        return 0.0
    x, y = xs - xs.mean(), ys - ys.mean()
    return math.degrees(0.5 * math.atan2(2 * float((x * y).mean()), float((x * x).mean() - (y * y).mean())))


def turned(footprint: np.ndarray, degrees: float) -> np.ndarray:
    """The footprint turned by ``degrees`` (nearest neighbour: stays binary), cropped tight."""
    if degrees % 360 == 0:
        return footprint
    img = Image.fromarray(footprint.astype(np.uint8) * 255).rotate(degrees, Image.NEAREST, expand=True)
    out = np.asarray(img) > 127
    rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
    if not len(rows):
        return footprint
    return out[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


class Canvas:
    """A new mask being filled with footprints that neither overlap nor touch.

    ``gap`` pixels of ground are kept around every building, so buildings stay separate
    components (as the source's were). A footprint may hang over the border: the part
    inside is drawn, as a tile cuts a real building.
    """

    def __init__(self, height: int, width: int, gap: int = 2):
        self.mask = np.zeros((height, width), bool)
        self.taken = np.zeros((height, width), bool)  # buildings grown by the gap
        self.gap = gap

    def _window(self, fp: np.ndarray, top: int, left: int):
        h, w = self.mask.shape
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + fp.shape[0], h), min(left + fp.shape[1], w)
        if y0 >= y1 or x0 >= x1:
            return None
        return (slice(y0, y1), slice(x0, x1)), fp[y0 - top : y1 - top, x0 - left : x1 - left]

    def fits(self, fp: np.ndarray, top: int, left: int) -> bool:
        """Whether ``fp`` with its upper-left corner at (``top``, ``left``) lands on free
        ground and at least partly inside."""
        at = self._window(fp, top, left)
        return at is not None and at[1].any() and not (self.taken[at[0]] & at[1]).any()

    def place(self, fp: np.ndarray, top: int, left: int) -> bool:
        """Draw ``fp`` at (``top``, ``left``) if it fits; whether it did."""
        if not self.fits(fp, top, left):
            return False
        box, part = self._window(fp, top, left)
        self.mask[box] |= part
        g = self.gap
        grown = ndimage.binary_dilation(np.pad(fp, g), EIGHT, iterations=g) if g else fp
        at = self._window(grown, top - g, left - g)
        if at is not None:
            self.taken[at[0]] |= at[1]
        return True

    def place_near(self, fp: np.ndarray, top: int, left: int, rng: np.random.Generator,
                   spread: float, tries: int = 20) -> bool:
        """Place ``fp`` at (``top``, ``left``) or, failing that, at up to ``tries`` spots
        drawn around it (normal, ``spread`` pixels); whether it found one."""
        for k in range(tries + 1):
            dy, dx = (0, 0) if k == 0 else rng.normal(0, spread, 2)
            if self.place(fp, int(top + dy), int(left + dx)):
                return True
        return False
