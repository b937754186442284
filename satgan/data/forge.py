"""Forging building masks: new layouts for synthetic training sets.

``forge(cfg)`` writes ``cfg.count`` masks of ``cfg.size`` pixels as an Inria-layout mask
folder, ``OUT/AerialImageDataset/train/gt/<city><n>.tif`` (0/255, LZW, georeferenced when
the source was), and ``OUT/forge.json``: the method, its settings and seed, the source
files' SHA-256, each mask's building fraction and count, and the distributions of building
count, area and fraction per mask in the source and in the forge. Three methods:

- ``procedural``: street layouts of the built-in synthetic cities (``SOURCE`` names the
  cities), masks only (nothing of the image is drawn), so a 5000-pixel mask takes well
  under a second.
- ``rearrange``: buildings cut from real masks (connected components) placed into new
  layouts: each mask takes a random window of the source and replaces each of its
  buildings by a footprint of about the same area from the source's pool (so count, size
  and density per mask follow the source's), turned to one street direction with a little
  jitter, placed without overlaps.
- ``edit``: a window of a real mask, changed at ``cfg.strength``: buildings removed,
  duplicated and moved, the whole dilated or eroded, blocks turned by quarter turns or flipped.

Names are ``<city><n>``, n from 10001, so a forged mask never takes a real Inria tile's
name, never lands in Inria's validation split (images 1-5), and a city-conditioned
generator still reads its city from the name. The same seed gives the same bytes; the
files appear only when the whole forge has succeeded.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict
from pathlib import Path

import numpy as np

from satgan import SatganError
from satgan.atomic import check_output_folder, staged_folder, write_json
from satgan.config import INRIA_CITIES, ForgeConfig
from satgan.data.city_styles import CITY_STYLES, geotags
from satgan.data.footprints import (
    EIGHT,
    Canvas,
    distribution,
    footprints,
    mask_summary,
    principal_angle,
    turned,
)
from satgan.data.readers import file_sha256, read_geotags, read_mask
from satgan.data.sources import INRIA_DIR, MASK_DIR_NAMES, inria_city, mask_files, open_source
from satgan.data.subset import spread
from satgan.data.synthetic import layout_mask
from satgan.data.writers import window_geotags, write_mask_tiff
from satgan.progress import progress_bar

try:  # scipy is optional (the synthetic extra): a missing one should name the extra
    from scipy import ndimage
except ImportError as exc:
    raise SatganError(f"forging masks needs scipy: pip install 'satgan[synthetic]' ({exc})") from exc

FORGE_JSON = "forge.json"
FIRST_INDEX = 10001
POOL_MASKS = 400  # source masks whose buildings form the pool (evenly spread over the source)
SAMPLE_WINDOWS = 200  # source windows the source's distribution is measured on
KEEP, REMOVE, MOVE, DUPLICATE = range(4)  # what edit does to each building


def masks_folder(out: str | Path) -> Path:
    """Where a forge in ``out`` writes its masks (the Inria layout's ``train/gt``)."""
    return Path(out).expanduser() / INRIA_DIR / "train" / "gt"


def _city_name(text: str) -> str:
    """A source's city as a name prefix the Inria pattern reads back (lower-case letters,
    - and _; accents dropped: São Paulo -> sao-paulo)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    name = re.sub(r"[^a-z_-]", "", re.sub(r"\s+", "-", ascii_text)).strip("-_")
    return name or "forged"


# -- sources ----------------------------------------------------------------------------------
def source_masks(source: str | Path, split: str) -> list[tuple[Path, str]]:
    """``(mask file, city)`` of every source mask: a dataset's ``split`` (Inria layout or
    paired folders), or a bare folder of masks (or its ``gt/``, e.g. an earlier forge)."""
    path = Path(source).expanduser()
    if not path.exists():
        raise SatganError(f"{path}: no such folder")
    try:
        found = open_source(path, skip_unpaired=True)
    except SatganError:
        try:
            files = mask_files(path)
        except SatganError:
            raise SatganError(f"{path}: neither a dataset (the Inria layout, or images/ with masks/) nor a folder "
                              "of mask files") from None
        if split != "train":  # a bare folder of masks (an earlier forge's gt/ included) has no splits
            raise SatganError(f"{path}: a folder of masks without images, so it has no splits; --split {split} "
                              "cannot be honoured: leave --split out") from None
        # a folder's city is its name, or its parent's for a masks/ or gt/ folder
        folder = files[0].parent
        named = folder.parent if folder.name.lower() in MASK_DIR_NAMES else folder
        return [(f, inria_city(f.stem) or named.name) for f in files]
    splits = found.splits
    if split not in splits:
        raise SatganError(f"{path}: no split {split!r}; it has {', '.join(splits)} (choose with --split)")
    return [(p.mask, p.city) for p in splits[split]]


class _Windows:
    """Source masks read once each, and ``size``-pixel windows cut from them at random."""

    def __init__(self, files: list[tuple[Path, str]], size: int):
        self.files, self.size, self._cache = files, size, {}
        shapes = {path.name: self.read(path).shape for path, _ in spread(files, 16)}  # a look first: errors early
        if all(min(shape) < size for shape in shapes.values()):
            name, (h, w) = next(iter(shapes.items()))
            raise SatganError(f"--size {size} is larger than the source masks (e.g. {name}, {h}x{w}): "
                              f"give --size at most their shorter side")

    def read(self, path: Path) -> np.ndarray:
        if path not in self._cache:
            if len(self._cache) > 64:  # masks of 5000 pixels: keep memory bounded
                self._cache.clear()
            self._cache[path] = read_mask(path, strict=True)  # a photo given as masks is refused, not thresholded
        return self._cache[path]

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, Path, str, int, int]:
        """A random window: ``(mask, file, city, top, left)``."""
        for _ in range(len(self.files)):
            path, city = self.files[rng.integers(len(self.files))]
            mask = self.read(path)
            h, w = mask.shape
            if h >= self.size and w >= self.size:
                top, left = int(rng.integers(h - self.size + 1)), int(rng.integers(w - self.size + 1))
                return mask[top : top + self.size, left : left + self.size], path, city, top, left
        raise SatganError(f"no source mask drawn is {self.size} pixels on both sides; give a smaller --size")


# -- methods ----------------------------------------------------------------------------------
def forge_procedural(city: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One ``size``-pixel layout of the synthetic ``city``, as a 0/255 ``uint8`` mask
    (written as it is: no conversion of 25 million pixels)."""
    mask, placed = layout_mask(city, size, rng)
    return mask, {"placed": placed}


def forge_rearranged(windows: _Windows, pool: list[np.ndarray], areas: np.ndarray, rng: np.random.Generator,
                     jitter: float = 4.0, choices: int = 5) -> tuple[np.ndarray, dict, tuple[Path, str, int, int]]:
    """A new layout of a random source window's buildings: each of the window's buildings
    is replaced by one of the ``choices`` footprints of ``pool`` (sorted by ``areas``) nearest
    to it in area, so count, sizes and density follow the window's; all turned to one
    street direction (with ``jitter`` degrees), the largest placed first, without overlaps."""
    window, path, city, top, left = windows.draw(rng)
    wanted = np.sort(mask_summary(window)["areas"])[::-1]
    size = windows.size
    canvas = Canvas(size, size)
    street = rng.uniform(0, 180)  # one street direction per mask, as in a real block
    placed = 0
    for area in wanted:
        at = int(np.searchsorted(areas, area))
        lo = max(0, min(at - choices // 2, len(pool) - choices))
        fp = pool[lo + int(rng.integers(min(choices, len(pool))))]
        # PIL turns counter-clockwise on screen; angles from image rows and columns run clockwise
        angle = principal_angle(fp) - street + 180 * int(rng.integers(2)) + rng.normal(0, jitter)
        fp = turned(fp, angle)
        if max(fp.shape) > size:
            continue
        for _try in range(30):  # wholly inside: the window's areas already show what its border cut
            y, x = rng.integers(0, size - fp.shape[0] + 1), rng.integers(0, size - fp.shape[1] + 1)
            if canvas.place(fp, int(y), int(x)):
                placed += 1
                break
    info = {"template": path.name, "window": [top, left], "target_buildings": len(wanted), "placed": placed}
    return canvas.mask, info, (path, city, top, left)


def forge_edited(windows: _Windows, strength: float, rng: np.random.Generator
                 ) -> tuple[np.ndarray, dict, tuple[Path, str, int, int]]:
    """A random source window changed at ``strength`` (0: unchanged, 1: strongly)."""
    window, path, city, top, left = windows.draw(rng)
    size = windows.size
    labels, count = ndimage.label(window, structure=EIGHT)
    boxes = ndimage.find_objects(labels)
    ops = {"removed": 0, "moved": 0, "duplicated": 0, "morphology": "none", "blocks_changed": 0}
    # each building's fate: kept, removed, moved (drawn later near where it was), duplicated
    fate = rng.choice([KEEP, REMOVE, MOVE, DUPLICATE], size=count,
                      p=[1 - 0.65 * strength, 0.25 * strength, 0.25 * strength, 0.15 * strength])
    canvas = Canvas(size, size, gap=1)
    canvas.mask[:] = window
    later = []
    for k, (box, f) in enumerate(zip(boxes, fate), start=1):
        if f in (REMOVE, MOVE):
            canvas.mask[box][labels[box] == k] = False
            ops["removed" if f == REMOVE else "moved"] += 1
        if f in (MOVE, DUPLICATE):
            later.append((labels[box] == k, box[0].start, box[1].start, f))
    canvas.taken[:] = ndimage.binary_dilation(canvas.mask, EIGHT) if canvas.mask.any() else False
    for fp, y, x, f in later:
        if f == MOVE:  # moved: somewhere near its old place (drawn around a shifted spot)
            dy, dx = rng.normal(0, 0.1 * size, 2)
            if not canvas.place_near(fp, int(y + dy), int(x + dx), rng, spread=0.1 * size):
                ops["moved"] -= 1
        else:  # duplicated: a copy anywhere free
            y, x = rng.integers(0, size - 1, 2)
            if canvas.place_near(fp, int(y), int(x), rng, spread=0.25 * size):
                ops["duplicated"] += 1
    mask = canvas.mask
    steps = int(round(2 * strength * rng.random()))
    if steps:
        grow = bool(rng.integers(2))
        mask = (ndimage.binary_dilation if grow else ndimage.binary_erosion)(mask, EIGHT, iterations=steps)
        ops["morphology"] = f"{'dilate' if grow else 'erode'} {steps}"
    half = size // 2  # 2x2 blocks, each turned or flipped with probability strength/2
    for by in (0, half):
        for bx in (0, half):
            if rng.random() < 0.5 * strength:
                block = mask[by : by + half, bx : bx + half]
                turn = int(rng.integers(4))
                mask[by : by + half, bx : bx + half] = np.rot90(block, turn) if turn else block[:, ::-1]
                ops["blocks_changed"] += 1
    ops.update(template=path.name, window=[top, left])
    return mask, ops, (path, city, top, left)


# -- the command -------------------------------------------------------------------------------
def _cities(text: str) -> list[str]:
    names = list(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))  # each city once
    if names == ["all"]:
        return list(INRIA_CITIES)
    unknown = [c for c in names if c not in CITY_STYLES]
    if unknown or not names:
        raise SatganError(f"procedural SOURCE {text!r}: name cities of the built-in styles, comma-separated "
                          f"({', '.join(INRIA_CITIES)}) or 'all'")
    return names


def _earlier_forge(cfg: ForgeConfig, inputs: list) -> tuple[Path, list[Path]]:
    """``cfg.out`` and the masks of an earlier forge there (to replace with ``overwrite``).
    Masks no ``forge.json`` lists (a real dataset's) are never replaced: an error; nor is
    OUT one of the ``inputs`` folders, inside one or holding one."""
    out = check_output_folder(cfg.out, inputs=inputs)
    gt, record = masks_folder(out), out / FORGE_JSON
    present = sorted(p for p in gt.iterdir() if p.is_file()) if gt.is_dir() else []
    if not record.exists():
        if present:
            raise SatganError(f"{gt}: holds masks that no forge made ({present[0].name}, ...); "
                              "forge into another OUT")
        return out, []
    if not cfg.overwrite:
        raise SatganError(f"{out}: holds an earlier forge; pass --overwrite to replace it")
    try:
        listed = {f"{m['name']}.tif" for m in json.loads(record.read_text())["masks"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SatganError(f"{record}: damaged ({exc}); remove the earlier forge by hand") from None
    strangers = [p.name for p in present if p.name not in listed]
    if strangers:
        raise SatganError(f"{gt}: holds masks the earlier forge did not make ({strangers[0]}, ...); "
                          "forge into another OUT")
    return out, present


def forge(cfg: ForgeConfig, progress: bool = True) -> dict:
    """Forge ``cfg.count`` masks into ``cfg.out`` (see the module's docstring); returns the
    report that is also written as ``forge.json``."""
    check_output_folder(cfg.out)  # a plain mistake in OUT first, before the sources are read
    # the folders the source masks are read from: never OUT, inside it nor holding it
    sources = [] if cfg.method == "procedural" else sorted({path.parent for path, _ in
                                                            source_masks(cfg.source, cfg.split)})
    inputs = [("the source masks' folder", folder) for folder in sources]
    out, earlier = _earlier_forge(cfg, inputs)
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("out", "overwrite")}
    report: dict = {"method": cfg.method, "settings": settings, "seed": cfg.seed}
    windows = pool = areas = None
    if cfg.method == "procedural":
        cities = _cities(cfg.source)
        report["source"] = {"styles": cities}
    else:
        files = source_masks(cfg.source, cfg.split)
        windows = _Windows(files, cfg.size)
        report["source"] = {"path": str(Path(cfg.source).expanduser().resolve()), "split": cfg.split,
                            "masks": len(files)}
        if cfg.method == "rearrange":
            found = [f for path, _ in spread(files, POOL_MASKS) for f in footprints(windows.read(path))]
            # whole buildings; those the source's border cut only where no whole one is as large
            largest = max((int(fp.sum()) for fp, cut in found if not cut), default=0)
            pool = [fp for fp, cut in found if not cut or int(fp.sum()) > largest]
            pool = sorted((fp for fp in pool if max(fp.shape) <= cfg.size), key=lambda fp: int(fp.sum()))
            areas = np.array([int(fp.sum()) for fp in pool])  # once: every mask searches it
            if not pool:
                what = f"no building of at most {cfg.size} pixels" if found else "no building at all"
                raise SatganError(f"{cfg.source}: {what} in the source masks: nothing to rearrange")
        rng = np.random.default_rng([cfg.seed, 1])
        sampled = [mask_summary(windows.draw(rng)[0]) for _ in range(min(SAMPLE_WINDOWS, 4 * cfg.count))]
        report["source"]["distribution"] = distribution(sampled)
        report["source"]["windows"] = [{"buildings": s["count"], "fraction": round(s["fraction"], 6)}
                                       for s in sampled]
    made, used, counters = [], set(), {}
    with staged_folder(out, inputs) as stage:
        gt = masks_folder(stage)
        gt.mkdir(parents=True)
        for i in progress_bar(range(cfg.count), desc=f"forge {cfg.method}", unit="mask", disable=not progress):
            rng = np.random.default_rng([cfg.seed, 0, i])
            if cfg.method == "procedural":
                city = cities[i % len(cities)]
                mask, info = forge_procedural(city, cfg.size, rng)
                index = FIRST_INDEX + i // len(cities)
                tags = geotags(city, index, cfg.size)
                # the placed footprints, not components: a 5000-pixel mask is not labelled (speed)
                summary = {"count": info["placed"], "fraction": float(np.count_nonzero(mask) / mask.size)}
            else:
                if cfg.method == "rearrange":
                    mask, info, (path, city, top, left) = forge_rearranged(windows, pool, areas, rng)
                else:
                    mask, info, (path, city, top, left) = forge_edited(windows, cfg.strength, rng)
                used.add(path)
                city = _city_name(city)
                index = counters[city] = counters.get(city, FIRST_INDEX - 1) + 1
                tags = window_geotags(read_geotags(path), top, left)
                summary = mask_summary(mask)
            name = f"{city}{index}"
            write_mask_tiff(gt / f"{name}.tif", mask, tags)
            made.append({"name": name, "city": city, "fraction": round(summary["fraction"], 6),
                         "buildings": summary["count"], **info})
            if "areas" in summary:
                made[-1]["areas"] = summary["areas"]
        if cfg.method != "procedural":
            report["source"]["sha256"] = {str(p): file_sha256(p) for p in sorted(used)}
        report["distribution"] = distribution([{"count": m["buildings"], "fraction": m["fraction"],
                                                "areas": m.pop("areas", [])} for m in made])
        report["masks"] = made
        for path in earlier:  # the earlier forge's masks go; the new ones arrive when the stage is moved
            path.unlink(missing_ok=True)
        write_json(stage / FORGE_JSON, report)
    report["folder"] = str(masks_folder(out))
    return report
