"""A gallery as files: JPEGs named as the project satgan continues named its results
(``MaskResized-austin1-2.jpeg``, ``Generated-...``, ``OriginalResized-...``), so those results
and satgan's sit side by side, and one self-contained HTML page."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

import satgan
from satgan import SatganError
from satgan.atomic import atomic_path, check_output_folder, staged_folder
from satgan.config import GalleryConfig, model_spec
from satgan.data.writers import write_image
from satgan.gallery.figures import save_figure, scene_figure, side_by_side, style_figure, variations_figure
from satgan.gallery.samples import Gallery, add_mask_iou, build_gallery, chosen_samples, iou_label, row_panels
from satgan.generation.loading import load_generators
from satgan.segmentation.segmenters import check_independent, segmenter_from_spec


def export_old_names(gallery: Gallery, out: str | Path) -> list[Path]:
    """JPEGs named as the project satgan continues named its results: ``MaskResized-<name>.jpeg`` and
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
            cells = row_panels(gallery.masks[i], {m: g[i] for m, g in gallery.generated.items()}, gallery.reals[i])
            imgs = "".join(f"<td><img src='{_data_uri(c)}'>{html.escape(iou_label(gallery, t, i))}</td>"
                           for t, c in cells)
            parts.append(f"<tr><td>{html.escape(gallery.names[i])}</td>{imgs}</tr>")
        parts.append("</table>")
    if gallery.scenes:
        parts.append("<h2>Whole scenes, grid tiles reassembled</h2>")
        for scene in gallery.scenes:
            cells = row_panels(scene["mask"], scene["generated"], scene["real"])
            row = "".join(f"<td><img src='{_data_uri(img, 600)}'>{html.escape(t)}</td>" for t, img in cells)
            parts.append(f"<h3>{html.escape(scene['name'])}</h3><table class='scene'><tr>{row}</tr></table>")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


def gallery(cfg: GalleryConfig) -> dict:
    """``satgan gallery``: generate, then write figures/, files/ (:func:`export_old_names`) and gallery.html.
    Everything is written to a staging folder first and moved into ``cfg.out`` at the end,
    so a gallery that fails leaves an earlier one there whole. ``cfg.out`` is never an input,
    inside the data folder nor holding it."""
    checkpoints = [("the checkpoint", model_spec(spec)[1]) for spec in cfg.checkpoints]
    inputs = [("the data folder", cfg.data), ("the segmenter", cfg.segmenter), *checkpoints]
    out = check_output_folder(cfg.out, inputs=inputs)
    models = load_generators(cfg.checkpoints, cfg.device)
    if cfg.truncation != 1 and not any(m.latent for m in models.values()):
        raise SatganError(f"--truncation {cfg.truncation}: none of the models has a style code to scale "
                          "(trained without model.latent)")
    # a gallery may compare models with and without a code: those without are drawn as they are
    models = {name: replace(m, truncation=cfg.truncation) if m.latent else m for name, m in models.items()}
    chosen_samples(cfg.data, cfg.split, cfg.indices, cfg.per_city, cfg.seed)  # before a segmenter is trained
    segmenter = None
    if cfg.mask_iou:  # before generating: a wrong --segmenter fails at once
        if "real" in models:
            raise SatganError("a model is named 'real', the column of the real images' mask IoU: rename it")
        segmenter = segmenter_from_spec(cfg.segmenter, cfg.data, cfg.device)
        check_independent("the gallery's mask IoU", segmenter, models)
    g = build_gallery(models, cfg.data, cfg.split, cfg.indices, cfg.per_city, cfg.scenes, cfg.seed, cfg.batch_size,
                      cfg.style_masks, cfg.variations)
    if segmenter is not None:
        add_mask_iou(g, segmenter)
    with staged_folder(out, inputs) as stage:
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
