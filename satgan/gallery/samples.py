"""A gallery's samples: which tiles and scenes it shows, and every model's images of them
(each city, for a city-conditioned model; several samples, for one with a style code or
noise), with their mask IoU."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from satgan import SatganError
from satgan.data.arrays import centre_crops, load_split, tile_names
from satgan.evaluation.scoring import eval_side
from satgan.generation.loading import Model, as_city, in_batches
from satgan.generation.modes import generate_seamless
from satgan.segmentation.segmenters import Segmenter
from satgan.segmentation.training import fidelity, pixel_counts


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


def choose_samples(manifest: dict, split: str, per_city: int, seed: int = 0) -> list[int]:
    """``per_city`` random samples of each city (fewer where a city has fewer), in split order."""
    by_city: dict[str, list[int]] = {}
    for i, s in enumerate(manifest["splits"][split]["samples"]):
        by_city.setdefault(s["city"], []).append(i)
    rng = random.Random(seed)
    return sorted(i for idx in by_city.values() for i in rng.sample(idx, min(per_city, len(idx))))


def chosen_samples(root: str | Path, split: str = "val", indices: list[int] | None = None, per_city: int = 2,
                   seed: int = 0) -> list[int]:
    """The indices of the samples a gallery shows: ``indices`` checked against the split, else
    ``per_city`` random ones per city (cheap: a gallery calls it before any slow work)."""
    manifest, info = load_split(Path(root).expanduser(), split)
    n = info["count"]
    indices = list(indices) if indices is not None else choose_samples(manifest, split, per_city, seed)
    if not indices:
        raise SatganError("no samples chosen: give indices or a per_city of 1 or more")
    bad = [i for i in indices if not 0 <= i < n]
    if bad:
        raise SatganError(f"sample indices {bad} out of range: split {split!r} has {n} samples (0-{n - 1})")
    return indices


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
    indices = chosen_samples(root, split, indices, per_city, seed)
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


def row_panels(mask: np.ndarray, generated: dict[str, np.ndarray], real: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """One row of a gallery, titled: mask | each model's image | real."""
    return [("mask", mask)] + list(generated.items()) + [("real", real)]


def iou_label(gallery: Gallery, panel: str, i: int) -> str:
    """Sample ``i``'s mask IoU in ``panel`` (a model, or real), where the gallery has it."""
    return f"IoU {gallery.ious[panel][i]:.2f}" if panel in gallery.ious else ""
