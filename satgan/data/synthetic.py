"""Built-in synthetic data in the exact layout and file kinds of the Inria download.

``synthesize_inria(out)`` writes ``out/AerialImageDataset/train/images/<city><n>.tif``
(RGB uint8 GeoTIFF, uncompressed), ``train/gt/<city><n>.tif`` (single band 0/255, LZW
with a horizontal predictor) and ``test/images/<city><n>.tif``, georeferenced at
0.3 m/pixel in each city's real projection. Every notebook and test runs on it with no
download.

Each city has a look of its own, drawn at the real pixel scale: suburban austin, a dense
chicago grid, forested kitsap by the water, alpine tyrol-w villages, dense vienna
perimeter blocks. Buildings are rotated rectangles placed along roads, with gable, hip
or flat roofs, sunlit and shaded roof faces and cast shadows; the ground has grass,
soil, forest, trees, roads and water. The mask is exactly the set of roof pixels.
The same seed gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from satgan import SatganError
from satgan.atomic import atomic_path, check_output_folder
from satgan.config import INRIA_CITIES, SynthConfig
from satgan.data.city_styles import CITY_STYLES, TEST_CITY_STYLES, geotags
from satgan.data.scene import Scene
from satgan.data.sources import INRIA_DIR, INRIA_TEST_CITIES
from satgan.data.writers import SOFTWARE, refuse_foreign
from satgan.progress import process_pool, progress_bar

MIN_SIZE = 64


def render_scene(city: str, size: int, seed: int = 0, index: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Draw one ``size`` x ``size`` scene of ``city``: ``(H, W, 3) uint8`` image, ``(H, W)`` 0/255 mask."""
    style_name = TEST_CITY_STYLES.get(city, city)
    if style_name not in CITY_STYLES:
        raise SatganError(f"unknown city {city!r}; choose from {', '.join(INRIA_CITIES + INRIA_TEST_CITIES)}")
    if size < MIN_SIZE:
        raise SatganError(f"size {size} is too small; use at least {MIN_SIZE} pixels")
    city_id = (INRIA_CITIES + INRIA_TEST_CITIES).index(city)
    rng = np.random.default_rng([seed, city_id, index])
    return Scene(CITY_STYLES[style_name], size, rng).render()


def layout_mask(city: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A ``size``-pixel street layout of the synthetic ``city`` without its image: the
    0/255 ``uint8`` mask and the number of buildings placed (``satgan forge --method procedural``)."""
    if city not in CITY_STYLES:
        raise SatganError(f"unknown city {city!r}; choose from {', '.join(INRIA_CITIES)}")
    scene = Scene(CITY_STYLES[city], size, rng)
    return scene.layout(), scene.placed


def _write_pair(job: tuple[str, int, int, int, Path, Path | None]) -> None:
    city, index, size, seed, image_path, mask_path = job
    image, mask = render_scene(city, size, seed, index)
    tags = geotags(city, index, size)
    with atomic_path(image_path) as tmp:
        tifffile.imwrite(tmp, image, photometric="rgb", extratags=tags, metadata=None, software=SOFTWARE)
    if mask_path is not None:
        with atomic_path(mask_path) as tmp:
            tifffile.imwrite(tmp, mask, photometric="minisblack", compression="lzw", software=SOFTWARE,
                             predictor=True, extratags=tags, metadata=None)


def synthesize_inria(cfg: SynthConfig) -> Path:
    """Write a synthetic Inria dataset under ``cfg.out/AerialImageDataset``; return that folder.

    ``cfg.per_city`` training pairs per city (images 1-5 of each city form the customary
    validation split) and ``cfg.test_per_city`` mask-less test images for each of Inria's
    test cities whose look is among ``cfg.cities``, all ``cfg.size`` pixels square at
    0.3 m/pixel. Files of the same names that an earlier ``satgan synth`` wrote are replaced
    (same seed, same bytes); anything else there (real Inria images) is refused unless
    ``cfg.overwrite``.
    """
    check_output_folder(cfg.out)
    cities = [c.strip() for c in cfg.cities if c.strip()]
    unknown = [c for c in cities if c not in INRIA_CITIES]
    if unknown or not cities:
        raise SatganError(f"unknown cities {unknown or cities}; choose from {', '.join(INRIA_CITIES)}")
    if cfg.per_city < 1 or cfg.test_per_city < 0:
        raise SatganError(
            f"per_city must be >= 1 and test_per_city >= 0 (got {cfg.per_city}, {cfg.test_per_city})"
        )
    if cfg.size < MIN_SIZE:
        raise SatganError(f"size {cfg.size} is too small; use at least {MIN_SIZE} pixels")
    root = Path(cfg.out).expanduser() / INRIA_DIR
    dirs = [root / "train" / "images", root / "train" / "gt", root / "test" / "images"]
    size, seed = cfg.size, cfg.seed
    jobs = [(c, i, size, seed, dirs[0] / f"{c}{i}.tif", dirs[1] / f"{c}{i}.tif")
            for c in cities for i in range(1, cfg.per_city + 1)]
    test_cities = [test for test, style in TEST_CITY_STYLES.items() if style in cities]
    jobs += [(c, i, size, seed, dirs[2] / f"{c}{i}.tif", None)
             for c in test_cities for i in range(1, cfg.test_per_city + 1)]
    refuse_foreign([p for job in jobs for p in job[4:] if p is not None], "synth", cfg.overwrite)
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    with progress_bar(total=len(jobs), desc="synth", unit="image") as bar:
        if cfg.workers > 1:
            with process_pool(cfg.workers) as pool:
                for _ in pool.imap_unordered(_write_pair, jobs):
                    bar.update()
        else:
            for job in jobs:
                _write_pair(job)
                bar.update()
    return root
