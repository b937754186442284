"""Numbers about a data source, for notebook 01: counts, sizes, building fractions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from satgan.data.readers import image_size, read_mask
from satgan.data.sources import Pair, Source
from satgan.data.tiling import tile_fractions
from satgan.progress import progress_bar


def count_table(source: Source) -> str:
    """Pairs per city and split as a plain-text table (with totals)."""
    counts = source.counts()
    splits = list(source.splits)
    rows = [[city] + [counts[city].get(s, 0) for s in splits] + [sum(counts[city].values())] for city in counts]
    rows.append(["total"] + [sum(r[i + 1] for r in rows) for i in range(len(splits) + 1)])
    return format_table(["city", *splits, "all"], rows)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A fixed-width text table, readable in logs and notebooks alike."""
    cells = [[str(h) for h in headers]] + [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def size_counts(source: Source) -> Counter:
    """How many images have each ``(height, width)``, from file headers."""
    return Counter(image_size(p.image) for p in source.pairs)


def building_fractions(
    pairs: Sequence[Pair], grids: Sequence[int] = (1, 2, 5)
) -> dict[str, dict[int, np.ndarray]]:
    """Building fraction (0-1) of every tile at each grid level, by city.

    Returns ``{city: {grid: fractions}}``; each mask is decoded once for all grids.
    """
    out: dict[str, dict[int, list[float]]] = {}
    for pair in progress_bar(pairs, desc="masks", unit="mask"):
        mask = read_mask(pair.mask)
        for grid in grids:
            if min(mask.shape) // grid >= 1:
                out.setdefault(pair.city, {}).setdefault(grid, []).extend(tile_fractions(mask, grid).ravel())
    return {city: {g: np.array(v) for g, v in by_grid.items()} for city, by_grid in out.items()}
