"""``satgan gallery``: mask | generated (one column per model) | real, for chosen or random
samples, written as figures, files under the old project's names and an HTML page.

The samples come from :mod:`satgan.gallery_samples`, the figures and the notebook viewer
from :mod:`satgan.gallery_figures`, the files and the page from :mod:`satgan.gallery_files`.
"""

from __future__ import annotations

from dataclasses import replace

from satgan.atomic import check_output_folder, staged_folder
from satgan.config import GalleryConfig
from satgan.errors import SatganError
from satgan.gallery_figures import save_figure, scene_figure, side_by_side, style_figure, variations_figure
from satgan.gallery_files import export_old_names, write_html
from satgan.gallery_samples import add_mask_iou, build_gallery
from satgan.loading import load_generators
from satgan.reference_segmenter import segmenter_from_spec


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
