"""Galleries: mask | generated (one column per model) | real, for chosen or random samples.

:func:`build_gallery` generates the samples once; from its :class:`Gallery` come the
figures (per city, and whole scenes reassembled from their grid tiles), the files under
the old project's names (``MaskResized-austin1-2.jpeg``, ``Generated-...``,
``OriginalResized-...``) so old and new results sit side by side, a self-contained HTML
page, and an ipywidgets viewer with a swipe between generated and real.
"""

from __future__ import annotations

import base64
import html
import io
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

import satgan
from satgan.atomic import atomic_path, check_output_folder, staged_folder
from satgan.config import GalleryConfig
from satgan.data.arrays import centre_crops, load_split, tile_names
from satgan.data.writers import write_image
from satgan.errors import SatganError
from satgan.evaluation import Model, eval_side, load_generators
from satgan.inference import as_city, generate_seamless, in_batches
from satgan.reference_segmenter import Segmenter, segmenter_from_spec
from satgan.segmenter import fidelity, pixel_counts


@dataclass
class Gallery:
    """Samples of one split with every model's output: arrays ``(N, S, S[, 3]) uint8``."""

    names: list[str]
    cities: list[str]
    masks: np.ndarray
    reals: np.ndarray
    generated: dict[str, np.ndarray]
    scenes: list[dict] = field(default_factory=list)  # name, city, rows, cols, mask, real, generated
    styles: list[dict] = field(default_factory=list)  # name, model, mask, real, cities: {city: image}
    variations: list[dict] = field(default_factory=list)  # name, model, city, mask, real, samples: [image]
    ious: dict[str, np.ndarray] = field(default_factory=dict)  # each model's (and "real") mask IoU per sample

    @property
    def models(self) -> list[str]:
        return list(self.generated)


# -- choosing and generating -----------------------------------------------------------------
def choose_samples(manifest: dict, split: str, per_city: int, seed: int = 0) -> list[int]:
    """``per_city`` random samples of each city (fewer where a city has fewer), in split order."""
    by_city: dict[str, list[int]] = {}
    for i, s in enumerate(manifest["splits"][split]["samples"]):
        by_city.setdefault(s["city"], []).append(i)
    rng = random.Random(seed)
    return sorted(i for idx in by_city.values() for i in rng.sample(idx, min(per_city, len(idx))))


def build_gallery(models: dict[str, Model], root: str | Path, split: str = "val", indices: list[int] | None = None,
                  per_city: int = 2, scenes: int = 1, seed: int = 0, batch_size: int = 16, style_masks: int = 2,
                  variations: int = 4) -> Gallery:
    """Generate the chosen samples (``indices``, else ``per_city`` random ones) and up to
    ``scenes`` whole scenes per city (every kept tile of one source image, in place).
    City-conditioned models also draw ``style_masks`` of the samples as every city; models
    with a style code or noise draw them ``variations`` times, codes and noise from seeds
    0, 1, ..."""
    if not models:
        raise SatganError("a gallery needs at least one model (checkpoint)")
    root = Path(root).expanduser()
    manifest, info = load_split(root, split)
    n = info["count"]
    indices = list(indices) if indices is not None else choose_samples(manifest, split, per_city, seed)
    if not indices:
        raise SatganError("no samples chosen: give indices or a per_city of 1 or more")
    bad = [i for i in indices if not 0 <= i < n]
    if bad:
        raise SatganError(f"sample indices {bad} out of range: split {split!r} has {n} samples (0-{n - 1})")
    side = eval_side(models, info["image_shape"][1])
    names, samples = tile_names(manifest, split), info["samples"]
    masks, reals = centre_crops(root, info, indices, side)
    gallery = Gallery([names[i] for i in indices], [samples[i]["city"] for i in indices], masks, reals,
                      {name: in_batches(m, masks, batch_size, [samples[i]["city"] for i in indices])
                       for name, m in models.items()})
    if scenes and manifest["settings"].get("grid", 1) > 1:
        gallery.scenes = _scenes(models, root, info, scenes, batch_size)
    shown = _one_per_city(gallery.cities)[:style_masks]
    for name, model in models.items():
        for i in shown:
            common = {"name": gallery.names[i], "model": name, "mask": masks[i], "real": reals[i]}
            if getattr(model, "labels", ()):
                field = model.noise_field(*masks[i].shape) if model.noise else None  # one noise for every city
                drawn = in_batches(model, [masks[i]] * len(model.labels), batch_size, list(model.labels),
                                   [field] * len(model.labels) if field is not None else None)
                gallery.styles.append({**common, "cities": dict(zip(model.labels, drawn))})
            if (getattr(model, "latent", 0) or getattr(model, "noise", 0)) and variations:
                city = gallery.cities[i] if model.labels else None
                samples = [model.styled(city, k)(masks[i][None])[0] for k in range(variations)]
                gallery.variations.append({**common, "city": city, "samples": samples})
    return gallery


def add_mask_iou(gallery: Gallery, segmenter: Segmenter) -> Gallery:
    """Each sample's own mask fidelity: the IoU between its mask and the buildings ``segmenter``
    finds in each model's image and in the real one (the ceiling), into ``gallery.ious``."""
    images = {**gallery.generated, "real": gallery.reals}
    for name, drawn in images.items():
        counts = pixel_counts(segmenter(drawn), gallery.masks)
        gallery.ious[name] = np.array([fidelity(c)["iou"] for c in counts])
    return gallery


def _iou_label(gallery: Gallery, panel: str, i: int) -> str:
    return f"IoU {gallery.ious[panel][i]:.2f}" if panel in gallery.ious else ""


def _one_per_city(cities: list[str]) -> list[int]:
    """Sample positions taking each city in turn (the first of each, then the second...)."""
    by_city: dict[str, list[int]] = {}
    for i, c in enumerate(cities):
        by_city.setdefault(c, []).append(i)
    rounds = max(map(len, by_city.values()), default=0)
    return [idx[r] for r in range(rounds) for idx in by_city.values() if r < len(idx)]


def _whole_tiles(model: Model, masks: np.ndarray, batch_size: int, city: str) -> np.ndarray:
    """Whole tiles generated one by one, as grid mode does: a generator slides its
    training-size window over each tile (Hann-blended; a conditioned one draws ``city``),
    a baseline paints it."""
    model = as_city(model, city)
    if hasattr(model, "window"):
        return np.stack([generate_seamless(model, m, 1.0, batch_size=batch_size) for m in masks])
    return model(masks)


def _scenes(models: dict[str, Model], root: Path, info: dict, per_city: int, batch_size: int) -> list[dict]:
    """Whole source images: each kept tile generated on its own, put back in place."""
    by_source: dict[str, list[int]] = {}
    for i, s in enumerate(info["samples"]):
        by_source.setdefault(s["source"], []).append(i)
    chosen: dict[str, list[str]] = {}
    for source, idx in by_source.items():
        city = info["samples"][idx[0]]["city"]
        if len(chosen.setdefault(city, [])) < per_city:
            chosen[city].append(source)
    size = info["image_shape"][1]
    out = []
    for city, sources in chosen.items():
        for source in sources:
            idx = by_source[source]
            masks, reals = centre_crops(root, info, idx, size)
            rows = max(info["samples"][i]["row"] for i in idx) + 1
            cols = max(info["samples"][i]["col"] for i in idx) + 1

            def place(tiles, channels, idx=idx, rows=rows, cols=cols):
                # tiles dropped by the density filter stay mid-grey
                canvas = np.full((rows * size, cols * size) + channels, 128, np.uint8)
                for i, tile in zip(idx, tiles):
                    r, c = info["samples"][i]["row"], info["samples"][i]["col"]
                    canvas[r * size : (r + 1) * size, c * size : (c + 1) * size] = tile
                return canvas

            out.append({"name": Path(source).stem, "city": city, "rows": rows, "cols": cols,
                        "mask": place(masks, ()), "real": place(reals, (3,)),
                        "generated": {n: place(_whole_tiles(m, masks, batch_size, city), (3,))
                                      for n, m in models.items()}})
    return out


# -- figures ----------------------------------------------------------------------------------
def _panels(mask: np.ndarray, generated: dict[str, np.ndarray], real: np.ndarray) -> list[tuple[str, np.ndarray]]:
    return [("mask", mask)] + list(generated.items()) + [("real", real)]


def side_by_side(gallery: Gallery, city: str | None = None, max_rows: int = 8) -> Figure:
    """Rows of samples (of ``city``, or all), columns mask | each model | real."""
    rows = [i for i, c in enumerate(gallery.cities) if city in (None, c)][:max_rows]
    if not rows:
        raise SatganError(f"no gallery samples of city {city!r}; it has {', '.join(sorted(set(gallery.cities)))}")
    ncols = len(gallery.models) + 2
    fig, axes = plt.subplots(len(rows), ncols, figsize=(2.3 * ncols, 2.3 * len(rows) + 0.3), squeeze=False,
                             layout="constrained")
    for r, i in enumerate(rows):
        panels = _panels(gallery.masks[i], {m: g[i] for m, g in gallery.generated.items()}, gallery.reals[i])
        for ax, (title, image) in zip(axes[r], panels):
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=10)
            ax.set_xlabel(_iou_label(gallery, title, i), fontsize=8, labelpad=2)
        axes[r][0].set_ylabel(gallery.names[i], fontsize=9)
    return fig


def scene_figure(scene: dict) -> Figure:
    """One whole scene, its grid tiles (each generated on its own) reassembled: mask | each model | real."""
    panels = _panels(scene["mask"], scene["generated"], scene["real"])
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
    waits there for the cell's reply, and can lose that reply and hang (jupyter/nbclient#312;
    measured here with ipykernel 6 and 7: benchmarks/stress_notebooks.py)."""
    import ipywidgets as widgets

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


# -- files --------------------------------------------------------------------------------------
def export_old_names(gallery: Gallery, out: str | Path) -> list[Path]:
    """JPEGs named as the old project named them: ``MaskResized-<name>.jpeg`` and
    ``OriginalResized-<name>.jpeg`` once, ``<model>/Generated-<name>.jpeg`` per model."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, name in enumerate(gallery.names):
        for prefix, image in (("MaskResized", gallery.masks[i]), ("OriginalResized", gallery.reals[i])):
            written.append(out / f"{prefix}-{name}.jpeg")
            write_image(written[-1], image)
        for model, images in gallery.generated.items():
            (out / model).mkdir(parents=True, exist_ok=True)
            written.append(out / model / f"Generated-{name}.jpeg")
            write_image(written[-1], images[i])
    return written


def _data_uri(image: np.ndarray, max_side: int | None = None) -> str:
    img = Image.fromarray(image)
    if max_side and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=88)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def write_html(gallery: Gallery, path: str | Path, title: str = "satgan gallery") -> Path:
    """One self-contained HTML file (images inline), a table per city and the scenes."""
    path = Path(path)
    heads = "".join(f"<th>{html.escape(h)}</th>" for h in ["sample", "mask", *gallery.models, "real"])
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:1.5em}img{width:200px;display:block}"
             "td,th{padding:3px;text-align:center;font-size:13px}.scene img{width:300px}</style>",
             f"<h1>{html.escape(title)}</h1><p>satgan {satgan.__version__}: mask | generated | real</p>"]
    for city in sorted(set(gallery.cities)):
        parts.append(f"<h2>{html.escape(city)}</h2><table><tr>{heads}</tr>")
        for i in (i for i, c in enumerate(gallery.cities) if c == city):
            cells = _panels(gallery.masks[i], {m: g[i] for m, g in gallery.generated.items()}, gallery.reals[i])
            imgs = "".join(f"<td><img src='{_data_uri(c)}'>{html.escape(_iou_label(gallery, t, i))}</td>"
                           for t, c in cells)
            parts.append(f"<tr><td>{html.escape(gallery.names[i])}</td>{imgs}</tr>")
        parts.append("</table>")
    if gallery.scenes:
        parts.append("<h2>Whole scenes, grid tiles reassembled</h2>")
        for scene in gallery.scenes:
            cells = _panels(scene["mask"], scene["generated"], scene["real"])
            row = "".join(f"<td><img src='{_data_uri(img, 600)}'>{html.escape(t)}</td>" for t, img in cells)
            parts.append(f"<h3>{html.escape(scene['name'])}</h3><table class='scene'><tr>{row}</tr></table>")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


def save_figure(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def gallery(cfg: GalleryConfig) -> dict:
    """``satgan gallery``: generate, then write figures/, files/ (old names) and gallery.html.
    Everything is written to a staging folder first and moved into ``cfg.out`` at the end,
    so a gallery that fails leaves an earlier one there whole."""
    out = check_output_folder(cfg.out)
    models = load_generators(cfg.checkpoints, cfg.device)
    if cfg.truncation != 1 and not any(m.latent for m in models.values()):
        raise SatganError(f"--truncation {cfg.truncation}: none of the models has a style code to scale "
                          "(trained without model.latent)")
    # a gallery may compare models with and without a code: those without are drawn as they are
    models = {name: replace(m, truncation=cfg.truncation) if m.latent else m for name, m in models.items()}
    segmenter = None
    if cfg.mask_iou:  # before generating: a wrong --segmenter fails at once
        if "real" in models:
            raise SatganError("a model is named 'real', the column of the real images' mask IoU: rename it")
        segmenter = segmenter_from_spec(cfg.segmenter, cfg.data, cfg.device)
    g = build_gallery(models, cfg.data, cfg.split, cfg.indices, cfg.per_city, cfg.scenes, cfg.seed, cfg.batch_size,
                      cfg.style_masks, cfg.variations)
    if segmenter is not None:
        add_mask_iou(g, segmenter)
    with staged_folder(out) as stage:
        figures = [save_figure(side_by_side(g, city), stage / "figures" / f"{city}.jpg")
                   for city in sorted(set(g.cities))]
        figures += [save_figure(scene_figure(s), stage / "figures" / f"scene-{s['name']}.jpg") for s in g.scenes]
        figures += [save_figure(style_figure(e), stage / "figures" / f"cities-{e['model']}-{e['name']}.jpg")
                    for e in g.styles]
        figures += [save_figure(variations_figure(e), stage / "figures" / f"codes-{e['model']}-{e['name']}.jpg")
                    for e in g.variations]
        files = export_old_names(g, stage / "files")
        page = write_html(g, stage / "gallery.html")
    moved = [out / p.relative_to(stage) for p in (*figures, *files, page)]
    return {"gallery": g, "html": moved[-1], "figures": moved[: len(figures)], "files": moved[len(figures) : -1]}
