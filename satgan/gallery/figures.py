"""A gallery drawn: matplotlib figures of its samples, scenes, cities and style samples,
and an ipywidgets viewer with a swipe between generated and real."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from satgan import SatganError
from satgan.atomic import atomic_path
from satgan.gallery.samples import Gallery, iou_label, row_panels


def side_by_side(gallery: Gallery, city: str | None = None, max_rows: int = 8) -> Figure:
    """Rows of samples (of ``city``, or all), columns mask | each model | real."""
    rows = [i for i, c in enumerate(gallery.cities) if city in (None, c)][:max_rows]
    if not rows:
        raise SatganError(f"no gallery samples of city {city!r}; it has {', '.join(sorted(set(gallery.cities)))}")
    ncols = len(gallery.models) + 2
    fig, axes = plt.subplots(len(rows), ncols, figsize=(2.3 * ncols, 2.3 * len(rows) + 0.3), squeeze=False,
                             layout="constrained")
    for r, i in enumerate(rows):
        panels = row_panels(gallery.masks[i], {m: g[i] for m, g in gallery.generated.items()}, gallery.reals[i])
        for ax, (title, image) in zip(axes[r], panels):
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=10)
            ax.set_xlabel(iou_label(gallery, title, i), fontsize=8, labelpad=2)
        axes[r][0].set_ylabel(gallery.names[i], fontsize=9)
    return fig


def scene_figure(scene: dict) -> Figure:
    """One whole scene, its grid tiles (each generated on its own) reassembled: mask | each model | real."""
    panels = row_panels(scene["mask"], scene["generated"], scene["real"])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.7), squeeze=False, layout="constrained")
    for ax, (title, image) in zip(axes[0], panels):
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{scene['name']} ({scene['rows']}x{scene['cols']} tiles reassembled)", fontsize=11)
    return fig


def _row_figure(panels: list[tuple[str, np.ndarray]], title: str) -> Figure:
    fig, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels), 2.8), squeeze=False, layout="constrained")
    for ax, (name, image) in zip(axes[0], panels):
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(name, fontsize=10)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=11)
    return fig


def style_figure(entry: dict) -> Figure:
    """One mask, every city: mask | the model's drawing as each city | real."""
    panels = [("mask", entry["mask"]), *entry["cities"].items(), ("real", entry["real"])]
    return _row_figure(panels, f"{entry['name']}: one mask drawn as every city ({entry['model']})")


def variations_figure(entry: dict) -> Figure:
    """One mask, several samples (style code and noise from seeds 0, 1, ...): mask | each sample | real."""
    panels = [("mask", entry["mask"])] + [(f"seed {k}", im) for k, im in enumerate(entry["samples"])]
    city = f" as {entry['city']}" if entry["city"] else ""
    return _row_figure(panels + [("real", entry["real"])], f"{entry['name']}{city}: {len(entry['samples'])} "
                                                           f"samples ({entry['model']})")


def save_figure(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def swipe(generated: np.ndarray, real: np.ndarray, at: float) -> np.ndarray:
    """Generated left of ``at`` (0-1 of the width), real right of it, with a white line."""
    out = real.copy()
    x = int(round(at * real.shape[1]))
    out[:, :x] = generated[:, :x]
    out[:, max(0, x - 1) : x + 1] = 255
    return out


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def viewer(gallery: Gallery):
    """An ipywidgets viewer: sample slider, model dropdown, and a swipe from generated to real.

    The pictures are ``Image`` widgets whose bytes the controls replace, never an ``Output``
    widget capturing plots: a headless runner (nbclient, under papermill) answers an Output
    widget's captured display with a message to the kernel on the shell channel while it
    waits there for the cell's reply, and can lose that reply and hang (jupyter/nbclient#312,
    with ipykernel 6 and 7 alike; benchmarks/stress_notebooks.py reproduces it)."""
    try:
        import ipywidgets as widgets
    except ImportError as exc:  # optional (the notebooks extra): say which extra
        raise SatganError(f"the gallery viewer needs ipywidgets: pip install 'satgan[notebooks]' ({exc})") from exc

    sample = widgets.IntSlider(min=0, max=len(gallery.names) - 1, description="sample")
    model = widgets.Dropdown(options=gallery.models, description="model")
    at = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.01, description="swipe")
    mask_view, pair_view = widgets.Image(format="png", width=320), widgets.Image(format="png", width=320)
    caption = widgets.Label()

    def show(_change=None) -> None:
        i = sample.value
        mask_view.value = _png(gallery.masks[i])
        pair_view.value = _png(swipe(gallery.generated[model.value][i], gallery.reals[i], at.value))
        caption.value = f"{gallery.names[i]}: mask | {model.value} left of the line, real right of it"

    for control in (sample, model, at):
        control.observe(show, names="value")
    show()
    return widgets.VBox([widgets.HBox([sample, model, at]), widgets.HBox([mask_view, pair_view]), caption])
