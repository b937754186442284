"""Figures for the data notebooks: pairs whole and tiled, fraction histograms, array
samples, training curves, reports, forged masks and synthesized pairs.

Every function returns a matplotlib ``Figure`` (shown by the notebook, saved by papermill);
:func:`pair_browser` wraps :func:`plot_pair` in ipywidgets for interactive use.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from satgan import SatganError
from satgan.data.arrays import load_manifest
from satgan.data.readers import read_image, read_mask
from satgan.data.sources import Pair, Source
from satgan.data.subset import spread
from satgan.data.tiling import grid_shape, tile_bounds
from satgan.models.objective import HEALTH_TERMS, LOSS_TERMS

DISPLAY_SIDE = 1000  # pixels; big scenes are subsampled for display


def _subsample(arr: np.ndarray) -> np.ndarray:
    step = max(1, max(arr.shape[:2]) // DISPLAY_SIDE)
    return arr[::step, ::step]


def overlay(image: np.ndarray, mask: np.ndarray, colour=(255, 40, 40), alpha: float = 0.45) -> np.ndarray:
    """The image with building pixels tinted (``mask`` bool or 0-255 coverage)."""
    weight = (mask.astype(np.float32) / (255.0 if mask.dtype == np.uint8 else 1.0))[..., None] * alpha
    return (image * (1 - weight) + np.array(colour, np.float32) * weight).astype(np.uint8)


def plot_pair(pair: Pair, grid: int = 1) -> Figure:
    """One pair: image with the NxN tile grid, mask, and the tiles with their building fractions."""
    image, mask = read_image(pair.image), read_mask(pair.mask)
    h, w = mask.shape
    fig = plt.figure(figsize=(15, 5.4), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[2, 1])
    axes = left.subplots(1, 2)
    axes[0].imshow(_subsample(image), extent=(0, w, h, 0))
    axes[1].imshow(_subsample(overlay(image, mask)), extent=(0, w, h, 0))
    for ax, title in zip(axes, ("image", "mask over image")):
        ax.set_title(f"{pair.stem} {title} ({h}x{w})", fontsize=9)
        ax.set_axis_off()
        for _r, _c, y0, y1, x0, x1 in tile_bounds(h, w, grid):
            ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="yellow", lw=0.8))
    tiles = right.subplots(*grid_shape(h, w, grid), squeeze=False)
    for r, c, y0, y1, x0, x1 in tile_bounds(h, w, grid):
        ax = tiles[r][c]
        ax.imshow(_subsample(overlay(image[y0:y1, x0:x1], mask[y0:y1, x0:x1])))
        ax.set_title(f"{mask[y0:y1, x0:x1].mean():.2f}", fontsize=7, pad=1)
        ax.set_axis_off()
    right.suptitle(f"grid {grid}: tiles and their building fraction", fontsize=9)
    return fig


def pair_browser(source: Source, grids: Sequence[int] = (1, 2, 5)):
    """An ipywidgets browser: city, image and grid; redraws :func:`plot_pair`."""
    try:
        import ipywidgets as widgets
    except ImportError as exc:  # optional (the notebooks extra): say which extra
        raise SatganError(f"the pair browser needs ipywidgets: pip install 'satgan[notebooks]' ({exc})") from exc

    by_city = {city: [p for p in source.pairs if p.city == city] for city in source.cities}
    city = widgets.Dropdown(options=list(by_city), description="city")
    index = widgets.IntSlider(min=0, max=len(by_city[city.value]) - 1, description="image")
    grid = widgets.Dropdown(options=list(grids), description="grid")

    def on_city(change):
        index.max = len(by_city[change["new"]]) - 1
        index.value = 0

    city.observe(on_city, names="value")

    def show(city: str, index: int, grid: int) -> None:
        plot_pair(by_city[city][min(index, len(by_city[city]) - 1)], grid)
        plt.show()

    return widgets.interactive(show, city=city, index=index, grid=grid)


def plot_fraction_histograms(fractions: dict[str, dict[int, np.ndarray]]) -> Figure:
    """Building-fraction histograms: one panel per grid level, one line per city."""
    grids = sorted({g for by_grid in fractions.values() for g in by_grid})
    fig, axes = plt.subplots(1, len(grids), figsize=(5 * len(grids), 3.6), squeeze=False, layout="constrained")
    bins = np.linspace(0, 1, 26)
    for ax, grid in zip(axes[0], grids):
        for city, by_grid in sorted(fractions.items()):
            if grid in by_grid:
                ax.hist(by_grid[grid], bins=bins, histtype="step", lw=1.6, density=True,
                        label=f"{city} ({len(by_grid[grid])})")
        ax.set_title(f"grid {grid}x{grid}")
        ax.set_xlabel("building fraction of a tile")
    axes[0][0].set_ylabel("density")
    axes[0][-1].legend(fontsize=8)
    return fig


def plot_filter_histogram(manifest: dict) -> Figure:
    """Per split: building fraction of all tiles, and of the tiles kept by the density filter."""
    splits = manifest["splits"]
    fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 3.4), squeeze=False, layout="constrained")
    bins = np.linspace(0, 1, 26)
    threshold = manifest["settings"]["min_density"]
    for ax, (name, info) in zip(axes[0], splits.items()):
        ax.hist(info["fractions_before_filter"], bins=bins, color="0.75",
                label=f"all tiles ({info['tiles_before_filter']})")
        ax.hist([s["fraction"] for s in info["samples"]], bins=bins, color="C0", alpha=0.8,
                label=f"kept ({info['count']})")
        ax.axvline(threshold, color="C3", ls="--", label=f"min_density {threshold}")
        ax.set_title(f"{name}")
        ax.set_xlabel("building fraction")
        ax.legend(fontsize=8)
    return fig


def plot_array_samples(root: str | os.PathLike, split: str = "train", n: int = 8, seed: int = 0) -> Figure:
    """``n`` random tiles from the pretransformed arrays: mask above, image below."""
    manifest = load_manifest(root)
    info = manifest["splits"][split]
    images = np.load(Path(root) / info["images"], mmap_mode="r")
    masks = np.load(Path(root) / info["masks"], mmap_mode="r")
    picks = np.sort(np.random.default_rng(seed).choice(len(images), size=min(n, len(images)), replace=False))
    fig, axes = plt.subplots(2, len(picks), figsize=(2.1 * len(picks), 4.6), squeeze=False, layout="constrained")
    for col, i in enumerate(picks):
        sample = info["samples"][i]
        axes[0][col].imshow(masks[i], cmap="gray", vmin=0, vmax=255)
        axes[0][col].set_title(f"{Path(sample['source']).stem} r{sample['row']}c{sample['col']}", fontsize=7)
        axes[1][col].imshow(images[i])
        axes[1][col].set_title(f"fraction {sample['fraction']:.2f}", fontsize=7)
        for ax in (axes[0][col], axes[1][col]):
            ax.set_axis_off()
    fig.suptitle(f"{split}: {len(images)} tiles of {images.shape[1]}x{images.shape[2]}", fontsize=9)
    return fig


def plot_training(history: list[dict]) -> Figure:
    """Per-epoch mean losses, the discriminator's accuracy on real and generated pairs
    (where there is one: its health), validation PSNR/SSIM and, where measured,
    validation KID (realism, lower is better) from a run's history."""
    val = [h for h in history if "psnr" in h]
    with_kid = [h for h in val if "kid" in h]
    with_health = any("D_acc_real" in h for h in history)
    panels = 2 + bool(with_kid) + with_health
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels + 3.6, 3.6), layout="constrained")
    left, right = axes[0], axes[1 + with_health]
    epochs = [h["epoch"] for h in history]
    extra = sorted({k for h in history for k in h if k[:2] in ("D_", "G_")} - set(LOSS_TERMS) - set(HEALTH_TERMS))
    for name in [*LOSS_TERMS, *extra]:  # a discriminator kind's own terms (oasis: D_labelmix) after the common ones
        if any(name in h for h in history):
            left.plot(epochs, [h.get(name, np.nan) for h in history], label=name)
    left.set_xlabel("epoch")
    left.set_title("training losses (epoch means)")
    left.legend(fontsize=8)
    if with_health:
        health = axes[1]
        for name, text in HEALTH_TERMS.items():
            health.plot(epochs, [h.get(name, np.nan) for h in history], "o-", label=text)
        health.axhline(0.5, color="grey", lw=0.8, ls=":")
        health.set_ylim(0, 1)
        health.set_xlabel("epoch")
        health.set_title("discriminator accuracy (0.5: at chance)")
        health.legend(fontsize=8)
    if val:
        right.plot([h["epoch"] for h in val], [h["psnr"] for h in val], "o-", color="C0", label="PSNR (dB)")
        right.set_ylabel("PSNR (dB) on [0, 1] images")
        twin = right.twinx()
        twin.plot([h["epoch"] for h in val], [h["ssim"] for h in val], "s--", color="C1", label="SSIM")
        twin.set_ylabel("SSIM")
    right.set_xlabel("epoch")
    right.set_title("validation")
    if with_kid:
        axes[-1].plot([h["epoch"] for h in with_kid], [h["kid"] for h in with_kid], "o-", color="C3")
        axes[-1].set_xlabel("epoch")
        axes[-1].set_title("validation KID (lower is more realistic)")
    return fig


class LiveTrainingPlot:
    """An epoch-end callback for ``train``: redraws :func:`plot_training` in place in a
    notebook (one figure that updates), and leaves the last one in saved notebooks."""

    def __init__(self):
        try:
            from IPython.display import display
        except ImportError as exc:  # optional (the notebooks extra): say which extra
            raise SatganError(f"the live training plot needs IPython: pip install 'satgan[notebooks]' ({exc})") from exc

        self.handle = display(None, display_id=True)

    def __call__(self, trainer) -> None:
        fig = plot_training(trainer.history)
        self.handle.update(fig)
        plt.close(fig)


def plot_report(report: dict, metrics: Sequence[str] = ("psnr", "ssim", "fid", "kid", "mask_iou")) -> Figure:
    """Bar charts of an evaluation report: one panel per metric, cities along x, one bar per
    model (the ``real`` row, the real images' own mask fidelity, in the mask IoU panel only)."""
    models = list(report["models"])
    cities = ["overall"] + sorted({c for m in report["models"].values() for c in m["cities"]})
    shown = [k for k in metrics if any(k in m["overall"] for m in report["models"].values())]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.4), squeeze=False, layout="constrained")
    width = 0.8 / len(models)
    better = {"psnr": "higher is better", "ssim": "higher is better", "fid": "lower is better",
              "kid": "lower is better", "mask_iou": "higher is better; real: the ceiling"}
    for ax, key in zip(axes[0], shown):
        for k, model in enumerate(models):
            entry = report["models"][model]
            values = [(entry["overall"] if c == "overall" else entry["cities"].get(c, {})).get(key, np.nan)
                      for c in cities]
            ax.bar(np.arange(len(cities)) + (k - (len(models) - 1) / 2) * width, values, width, label=model)
        ax.set_xticks(np.arange(len(cities)), cities, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{key.upper().replace('_', ' ')} ({better.get(key, '')})", fontsize=10)
    axes[0][0].legend(fontsize=8)
    return fig


def plot_lattice(gen, mask: np.ndarray, scale: float, overlap: float, side: int | None = None,
                 window: int | None = None, shared_norm: bool = True) -> Figure:
    """The same area of a seamless scene generated with the windows at two offsets (half a
    stride apart), and their difference: a generator that decides per window shows the
    window lattice in the difference; a seamless one shows noise at most."""
    from satgan.generation.consistency import shifted_scenes
    from satgan.metrics import shifted_psnr

    first, second, shift, win = shifted_scenes(gen, mask, scale, overlap, window=window, shared_norm=shared_norm)
    side = side or min(3 * gen.window, second.shape[0], second.shape[1])
    y0 = max(0, (second.shape[0] - side) // 2)
    x0 = max(0, (second.shape[1] - side) // 2)
    a = first[y0 + shift : y0 + shift + side, x0 + shift : x0 + shift + side]
    b = second[y0 : y0 + side, x0 : x0 + side]
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(axis=2)
    psnr = shifted_psnr(first, second, shift, shift, margin=win // 2)
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2), layout="constrained")
    for ax, image, title in ((axes[0], a, "windows at offset 0"), (axes[1], b, f"windows moved by {shift} px"),
                             (axes[2], diff, f"difference (shift consistency {psnr:.1f} dB over the scene)")):
        ax.imshow(image, cmap="magma" if image.ndim == 2 else None, vmin=0, vmax=64 if image.ndim == 2 else 255)
        ax.set_title(title)
        ax.set_axis_off()
    return fig


def _template_path(report: dict, name: str) -> Path | None:
    """The source file a forged mask's template window came from (rearrange, edit)."""
    return next((Path(p) for p in report["source"].get("sha256", {}) if Path(p).name == name), None)


def plot_forge(report: dict, n: int = 6) -> Figure:
    """The first ``n`` forged masks of a ``forge.json`` report (under the source windows
    they were made from, for rearrange and edit), and histograms of building count and
    building fraction per mask in the source (sampled windows) and in the forge."""
    masks = report["masks"][:n]
    paired = report["method"] != "procedural"
    fig = plt.figure(figsize=(2.2 * max(len(masks), 4), 2.3 * (2 if paired else 1) + 2.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[2.3 * (2 if paired else 1), 2.6])
    axes = np.atleast_2d(top.subplots(2 if paired else 1, len(masks), squeeze=False))
    folder = Path(report["folder"])
    for col, m in enumerate(masks):
        forged = read_mask(folder / f"{m['name']}.tif")
        ax = axes[-1, col]
        ax.imshow(_subsample(forged), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{m['name']}\n{m['fraction']:.0%} built", fontsize=8)
        if paired:
            path, (y, x) = _template_path(report, m["template"]), m["window"]
            side = forged.shape[0]
            if path is not None:
                window = read_mask(path)[y : y + side, x : x + side]
                axes[0, col].imshow(_subsample(window), cmap="gray", vmin=0, vmax=1)
            axes[0, col].set_title(f"source {m['template']}", fontsize=8)
    for ax in axes.ravel():
        ax.set_axis_off()
    top.suptitle(f"forge: {report['method']}" + (" (top: source windows, bottom: forged)" if paired else ""))
    hist = bottom.subplots(1, 2)
    source = report["source"].get("windows", [])
    for ax, key, label in ((hist[0], "buildings", "buildings per mask"), (hist[1], "fraction", "building fraction")):
        forged_values = [m[key] for m in report["masks"] if m.get(key) is not None]
        values = [v for v in (forged_values, [w[key] for w in source]) if v]
        bins = np.linspace(0, max(max(v) for v in values) or 1, 21)
        if source:
            ax.hist([w[key] for w in source], bins=bins, alpha=0.5, density=True, label="source")
        ax.hist(forged_values, bins=bins, alpha=0.5, density=True, label="forged")
        ax.set_xlabel(label)
        ax.legend()
    return fig


def plot_synthesized(root: str | os.PathLike, layout: str = "inria", n: int = 6) -> Figure:
    """``n`` pairs of a synthesized dataset spread over its names (so over its cities):
    each generated image above its mask."""
    from satgan.synthetic.synthesize import dataset_folders

    images_dir, masks_dir = dataset_folders(root, layout)
    names = spread(sorted(p.name for p in images_dir.iterdir() if p.suffix == ".tif"), n)
    fig, axes = plt.subplots(2, max(len(names), 1), figsize=(2.4 * max(len(names), 1), 5), squeeze=False,
                             layout="constrained")
    for col, name in enumerate(names):
        image, mask = read_image(images_dir / name), read_mask(masks_dir / name)
        axes[0, col].imshow(_subsample(image))
        axes[0, col].set_title(Path(name).stem, fontsize=8)
        axes[1, col].imshow(_subsample(mask), cmap="gray", vmin=0, vmax=1)
    for ax in axes.ravel():
        ax.set_axis_off()
    return fig
