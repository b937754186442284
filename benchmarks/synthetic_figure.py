"""Synthetic pairs beside real ones: the first row real tiles, the second their masks, then
synthetic tiles and their masks (random tiles of each folder's train split, one seed).

    python benchmarks/synthetic_figure.py REAL SYNTHETIC --out docs/images/synthetic_vs_real.jpg [--tiles 6]
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from satgan.segmentation.training import load_tiles  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("real")
    ap.add_argument("synthetic")
    ap.add_argument("--out", required=True)
    ap.add_argument("--tiles", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = []
    for name, root in (("real", args.real), ("synthetic", args.synthetic)):
        tiles = load_tiles(root, "train", name, 1)
        pick = np.random.default_rng(args.seed).choice(len(tiles), args.tiles, replace=False)
        rows += [(f"{name} image", [tiles.images[i] for i in pick]), (f"{name} mask", [tiles.masks[i] for i in pick])]
    fig = Figure(figsize=(1.6 * args.tiles, 1.7 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), args.tiles)
    for r, (label, images) in enumerate(rows):
        for c, image in enumerate(images):
            ax = axes[r, c]
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
    fig.savefig(args.out, dpi=80, pil_kwargs={"quality": 85})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
