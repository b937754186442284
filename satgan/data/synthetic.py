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

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageDraw

from satgan.atomic import atomic_path, check_output_folder
from satgan.config import INRIA_CITIES, SynthConfig
from satgan.data.city_styles import CITY_STYLES, METRES_PER_PIXEL, TEST_CITY_STYLES, CityStyle, geotags
from satgan.data.sources import INRIA_DIR, INRIA_TEST_CITIES
from satgan.errors import SatganError
from satgan.parallel import process_pool
from satgan.progress import progress_bar

MIN_SIZE = 64
_CLAIM_GRID = np.linspace(-0.9, 0.9, 7)  # where a footprint is sampled to see whether it is free
_CLAIM_A, _CLAIM_B = _CLAIM_GRID[:, None, None], _CLAIM_GRID[None, :, None]


def _smooth_noise(rng: np.random.Generator, size: int, cell_px: float) -> np.ndarray:
    """Smooth random field in [0, 1] with features about ``cell_px`` pixels across."""
    n = max(2, int(size / cell_px) + 2)
    coarse = rng.random((n, n), dtype=np.float32)
    field = Image.fromarray(coarse, mode="F").resize((size, size), Image.BICUBIC)
    out = np.asarray(field)
    lo, hi = out.min(), out.max()
    return (out - lo) / max(hi - lo, 1e-6)


def _blend(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    return a * (1 - w[..., None]) + b * w[..., None]


class _Scene:
    """One image being drawn: the RGB canvas, the mask, shadows and occupied ground."""

    def __init__(self, style: CityStyle, size: int, rng: np.random.Generator):
        self.style, self.size, self.rng = style, size, rng
        self.px = 1.0 / METRES_PER_PIXEL
        angle = rng.uniform(0, 2 * math.pi)  # the sun's azimuth, one per image
        self.shadow_dir = np.array([math.cos(angle), math.sin(angle)])
        self.occupied = np.zeros((size, size), np.uint8)  # where nothing new may be built
        self.shade = Image.new("L", (size, size), 0)
        self.mask = Image.new("L", (size, size), 0)
        self.roads: list[np.ndarray] = []
        self.placed = 0  # buildings placed by layout()

    # -- ground ------------------------------------------------------------------
    def ground(self) -> np.ndarray:
        s, rng, st = self.size, self.rng, self.style
        patches = _smooth_noise(rng, s, 60 * self.px)
        fine = _smooth_noise(rng, s, 4 * self.px)
        rgb = _blend(np.array(st.ground, np.float32), np.array(st.ground_alt, np.float32), patches**2)
        rgb *= (0.88 + 0.24 * fine)[..., None]
        if st.forest_cover > 0:
            cover = _smooth_noise(rng, s, 220 * self.px)
            forest = cover > np.quantile(cover[::8, ::8], 1 - st.forest_cover)
            crowns = _smooth_noise(rng, s, 2.2 * self.px)
            green = np.array((52, 74, 40), np.float32) * (0.5 + 0.8 * crowns)[..., None]
            rgb[forest] = green[forest]
            self.occupied[forest] = 1
        return rgb

    def water(self, rgb: np.ndarray) -> None:
        st = self.style
        if st.water <= 0:
            return
        field = _smooth_noise(self.rng, self.size, 500 * self.px)
        water = field > np.quantile(field[::8, ::8], 1 - st.water)
        ripple = _smooth_noise(self.rng, self.size, 3 * self.px)
        colour = np.array((38, 58, 66), np.float32) * (0.9 + 0.2 * ripple)[..., None]
        rgb[water] = colour[water]
        self.occupied[water] = 1

    # -- roads -------------------------------------------------------------------
    def road_lines(self) -> list[np.ndarray]:
        st, s, rng = self.style, self.size, self.rng
        spacing = st.road_spacing * self.px
        lines = []
        if st.road_layout == "grid":
            theta = rng.normal(0, 0.06) + rng.choice([0, math.pi / 2])
            u = np.array([math.cos(theta), math.sin(theta)])
            v = np.array([-u[1], u[0]])
            c, half = np.array([s / 2, s / 2]), s * 0.75
            for axis, other in ((u, v), (v, u)):
                step = spacing * (1.0 if axis is u else rng.uniform(1.3, 2.0))
                offset = rng.uniform(0, step)
                for k in np.arange(-half + offset, half, step):
                    lines.append(np.array([c + axis * k - other * half, c + axis * k + other * half]))
        else:
            count = max(1, round(s / spacing) + 1)
            for _ in range(count):
                # a wandering road entering from the left or top edge
                if rng.random() < 0.5:
                    p, heading = np.array([0.0, rng.uniform(0, s)]), rng.normal(0, 0.4)
                else:
                    p, heading = np.array([rng.uniform(0, s), 0.0]), math.pi / 2 + rng.normal(0, 0.4)
                points = [p.copy()]
                step = 15 * self.px
                while -step < p[0] < s + step and -step < p[1] < s + step and len(points) < 2000:
                    heading += rng.normal(0, 0.09)
                    p = p + step * np.array([math.cos(heading), math.sin(heading)])
                    points.append(p.copy())
                lines.append(np.array(points))
        return lines

    def draw_roads(self, draw: ImageDraw.ImageDraw) -> None:
        st = self.style
        width = max(2, round(st.road_width * self.px))
        occ = Image.new("L", (self.size, self.size), 0)
        occ_draw = ImageDraw.Draw(occ)
        for line in self.road_lines():
            pts = [tuple(p) for p in line]
            draw.line(pts, fill=(92, 92, 90), width=width, joint="curve")
            if st.road_width >= 9:  # a centre line on the wider roads
                draw.line(pts, fill=(150, 148, 140), width=max(1, round(0.2 * self.px)))
            occ_draw.line(pts, fill=1, width=width + 2, joint="curve")
            self.roads.append(line)
        np.maximum(self.occupied, np.asarray(occ), out=self.occupied)

    # -- trees -------------------------------------------------------------------
    def draw_trees(self, draw: ImageDraw.ImageDraw, shade_draw: ImageDraw.ImageDraw) -> None:
        s, rng = self.size, self.rng
        area_ha = (s * METRES_PER_PIXEL) ** 2 / 1e4
        n = rng.poisson(self.style.trees_per_ha * area_ha)
        xs, ys = rng.uniform(0, s, n), rng.uniform(0, s, n)
        radii = rng.uniform(2.0, 5.0, n) * self.px
        for x, y, r in zip(xs, ys, radii):
            if self.occupied[min(int(y), s - 1), min(int(x), s - 1)]:
                continue
            dx, dy = self.shadow_dir * r * 1.2
            shade_draw.ellipse((x - r + dx, y - r + dy, x + r + dx, y + r + dy), fill=150)
            g = rng.uniform(0.75, 1.2)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(int(58 * g), int(84 * g), int(44 * g)))
            rr = r * 0.55  # a sunlit crown top
            ox, oy = -self.shadow_dir * r * 0.25
            draw.ellipse((x - rr + ox, y - rr + oy, x + rr + ox, y + rr + oy),
                         fill=(int(74 * g), int(104 * g), int(54 * g)))

    # -- buildings ---------------------------------------------------------------
    def _village_weight(self, centres: np.ndarray, p: np.ndarray) -> float:
        if len(centres) == 0:
            return 1.0
        d = np.min(np.linalg.norm(centres - p, axis=1)) / (300 * self.px)
        return float(math.exp(-(d**2)))

    def place_buildings(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
        """Footprints (centre, along-road axis, depth axis, height) placed along the roads.
        (Plain floats and local names in the loop, numpy arrays only for a free spot: a
        5000-pixel chicago tries some 13,000 spots.)"""
        st, rng, px, s = self.style, self.rng, self.px, self.size
        centres = rng.uniform(0.15 * s, 0.85 * s, (st.villages, 2)) if st.villages else np.zeros((0, 2))
        occupied, villages, rows, build_prob = self.occupied, st.villages, range(st.rows), st.build_prob
        uniform, random, normal, claim = rng.uniform, rng.random, rng.normal, self._claim
        (f0, f1), (d0, d1), (g0, g1), (h0, h1) = st.frontage, st.depth, st.gap, st.height
        first_gap, kerb = g1 * px, (st.road_width / 2 + st.setback) * px
        placed = []
        for line in self.roads:
            for p0, p1 in zip(line[:-1].tolist(), line[1:].tolist()):
                sx, sy = p1[0] - p0[0], p1[1] - p0[1]
                length = math.sqrt(sx * sx + sy * sy)
                if length < 1:
                    continue
                ux, uy = sx / length, sy / length
                nx, ny = -uy, ux
                for side in (-1.0, 1.0):
                    t = uniform(0, first_gap)
                    while t < length:
                        a = uniform(f0, f1) * px / 2
                        offset = kerb
                        for _row in rows:
                            b = uniform(d0, d1) * px / 2
                            cx = p0[0] + ux * (t + a) + side * nx * (offset + b)
                            cy = p0[1] + uy * (t + a) + side * ny * (offset + b)
                            offset += 2 * b + uniform(2, 6) * px
                            if not (-a < cx < s + a and -a < cy < s + a):
                                continue
                            weight = self._village_weight(centres, np.array([cx, cy])) if villages else 1.0
                            if random() > build_prob * weight:
                                continue
                            jitter = normal(0, 0.03)
                            ix, iy = int(cx), int(cy)  # the centre taken: the spot is not free
                            if 0 <= ix < s and 0 <= iy < s and occupied[iy, ix]:
                                continue
                            cos, sin = math.cos(jitter), math.sin(jitter)
                            uux, uuy = ux * cos - uy * sin, ux * sin + uy * cos
                            hax, hay, hbx, hby = uux * a, uuy * a, -uuy * b, uux * b
                            if claim(cx, cy, hax, hay, hbx, hby):
                                placed.append((np.array([cx, cy]), np.array([hax, hay]), np.array([hbx, hby]),
                                               uniform(h0, h1)))
                        t += 2 * a + uniform(g0, g1) * px
        return placed

    def _claim(self, cx: float, cy: float, hax: float, hay: float, hbx: float, hby: float) -> bool:
        """Reserve the footprint (centre, half axes) if its core is free of roads, water,
        forest and buildings. (Floats: most calls end at the free-box test.)"""
        s = self.size
        ex, ey = abs(hax) + abs(hbx), abs(hay) + abs(hby)
        x0, y0 = min(max(int(cx - ex), 0), s), min(max(int(cy - ey), 0), s)
        x1, y1 = min(max(int(cx + ex) + 1, 0), s), min(max(int(cy + ey) + 1, 0), s)
        box = self.occupied[y0:y1, x0:x1]
        # a free box with the centre in the image: every sample below is free and one is inside
        if not (0 <= cx < s and 0 <= cy < s and not box.any()):
            c, ha, hb = np.array([cx, cy]), np.array([hax, hay]), np.array([hbx, hby])
            pts = c + _CLAIM_A * ha + _CLAIM_B * hb  # samples inside the footprint
            xs, ys = pts[..., 0].astype(int).ravel(), pts[..., 1].astype(int).ravel()
            inside = (xs >= 0) & (xs < s) & (ys >= 0) & (ys < s)
            if not inside.any() or self.occupied[ys[inside], xs[inside]].any():
                return False
        box[...] = 1
        return True

    def draw_shadows(self, shade_draw: ImageDraw.ImageDraw, buildings) -> None:
        for c, ha, hb, height in buildings:
            corners = [c - ha - hb, c + ha - hb, c + ha + hb, c - ha + hb]
            v = self.shadow_dir * height * self.px * 0.8
            shade_draw.polygon(_convex_hull(corners + [p + v for p in corners]), fill=255)

    def draw_roofs(self, draw: ImageDraw.ImageDraw, buildings) -> None:
        st, rng = self.style, self.rng
        mask_draw = ImageDraw.Draw(self.mask)
        kinds = np.array(st.roof_kinds) / sum(st.roof_kinds)
        sun = -self.shadow_dir
        for c, ha, hb, _height in buildings:
            base = np.array(st.roofs[rng.integers(len(st.roofs))], np.float32) * rng.uniform(0.9, 1.1)
            corners = [c - ha - hb, c + ha - hb, c + ha + hb, c - ha + hb]
            footprint = [tuple(p) for p in corners]
            mask_draw.polygon(footprint, fill=255)
            draw.polygon(footprint, fill=_rgb(base))
            kind = rng.choice(3, p=kinds)
            # long axis L (half vector hl), short axis hs
            hl, hs = (ha, hb) if np.linalg.norm(ha) >= np.linalg.norm(hb) else (hb, ha)
            if kind == 2:  # flat: a parapet and a few rooftop units
                inset = 0.08
                inner = [c + (1 - inset) * (p - c) for p in corners]
                draw.polygon([tuple(p) for p in inner], fill=_rgb(base * 0.92), outline=_rgb(base * 1.15))
                for _ in range(rng.integers(0, 3)):
                    q = c + rng.uniform(-0.5, 0.5) * hl + rng.uniform(-0.5, 0.5) * hs
                    r = rng.uniform(0.6, 1.4) * self.px
                    draw.rectangle((q[0] - r, q[1] - r, q[0] + r, q[1] + r), fill=_rgb(base * 1.3))
                continue
            ridge = hl * (1 - np.linalg.norm(hs) / np.linalg.norm(hl)) if kind == 1 else hl
            r0, r1 = c - ridge, c + ridge
            for sign in (-1.0, 1.0):  # the two long faces
                face = [c - hl + sign * hs, c + hl + sign * hs, r1, r0]
                lit = float(np.dot(sign * hs / np.linalg.norm(hs), sun))
                draw.polygon([tuple(p) for p in face], fill=_rgb(base * (1 + 0.22 * lit)))
            if kind == 1:  # hip ends
                for sign, r in ((-1.0, r0), (1.0, r1)):
                    face = [c + sign * hl - hs, c + sign * hl + hs, r]
                    lit = float(np.dot(sign * hl / np.linalg.norm(hl), sun))
                    draw.polygon([tuple(p) for p in face], fill=_rgb(base * (1 + 0.22 * lit)))

    def layout(self) -> np.ndarray:
        """The mask alone, fast: forest and water only as ground to keep free (found at an
        eighth of the resolution), roads only as occupancy, buildings placed as in
        :meth:`render`, no pixel of the image drawn."""
        st, s = self.style, self.size
        coarse = max(8, s // 8)
        for fraction, feature in ((st.forest_cover, 220), (st.water, 500)):
            if fraction > 0:
                field = _smooth_noise(self.rng, coarse, feature * self.px * coarse / s)
                keep = (field > np.quantile(field, 1 - fraction)).astype(np.uint8)
                big = Image.fromarray(keep).resize((s, s), Image.NEAREST)
                np.maximum(self.occupied, np.asarray(big), out=self.occupied)
        width = max(2, round(st.road_width * self.px))
        occ = Image.new("L", (s, s), 0)
        occ_draw = ImageDraw.Draw(occ)
        for line in self.road_lines():
            occ_draw.line([tuple(p) for p in line], fill=1, width=width + 2, joint="curve")
            self.roads.append(line)
        np.maximum(self.occupied, np.asarray(occ), out=self.occupied)
        mask_draw = ImageDraw.Draw(self.mask)
        placed = self.place_buildings()
        self.placed = len(placed)
        for c, ha, hb, _height in placed:
            mask_draw.polygon([tuple(p) for p in (c - ha - hb, c + ha - hb, c + ha + hb, c - ha + hb)], fill=255)
        return np.asarray(self.mask)

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        rgb = self.ground()
        self.water(rgb)
        canvas = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
        draw, shade_draw = ImageDraw.Draw(canvas), ImageDraw.Draw(self.shade)
        self.draw_roads(draw)
        buildings = self.place_buildings()
        self.draw_trees(draw, shade_draw)
        self.draw_shadows(shade_draw, buildings)
        # shadows darken whatever lies under them: ground, roads, trees, neighbours' walls
        img = np.asarray(canvas).astype(np.uint16)
        img = (img * (255 - np.asarray(self.shade, np.uint16) // 2)[..., None]) >> 8
        canvas = Image.fromarray(img.astype(np.uint8))
        self.draw_roofs(ImageDraw.Draw(canvas), buildings)
        out = np.asarray(canvas).astype(np.int16)
        out += self.rng.integers(-4, 5, out.shape, dtype=np.int16)  # sensor noise
        return np.clip(out, 0, 255).astype(np.uint8), np.asarray(self.mask)


def _rgb(colour: np.ndarray) -> tuple[int, int, int]:
    r, g, b = np.clip(colour, 0, 255).astype(int)
    return int(r), int(g), int(b)


def _convex_hull(points: Sequence[np.ndarray]) -> list[tuple[float, float]]:
    """Convex hull of a few points (Andrew's monotone chain), as polygon vertices."""
    pts = sorted({(float(p[0]), float(p[1])) for p in points})

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def render_scene(city: str, size: int, seed: int = 0, index: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Draw one ``size`` x ``size`` scene of ``city``: ``(H, W, 3) uint8`` image, ``(H, W)`` 0/255 mask."""
    style_name = TEST_CITY_STYLES.get(city, city)
    if style_name not in CITY_STYLES:
        raise SatganError(f"unknown city {city!r}; choose from {', '.join(INRIA_CITIES + INRIA_TEST_CITIES)}")
    if size < MIN_SIZE:
        raise SatganError(f"size {size} is too small; use at least {MIN_SIZE} pixels")
    city_id = (INRIA_CITIES + INRIA_TEST_CITIES).index(city)
    rng = np.random.default_rng([seed, city_id, index])
    return _Scene(CITY_STYLES[style_name], size, rng).render()


def layout_mask(city: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A ``size``-pixel street layout of the synthetic ``city`` without its image: the
    0/255 ``uint8`` mask and the number of buildings placed (``satgan forge --method procedural``)."""
    if city not in CITY_STYLES:
        raise SatganError(f"unknown city {city!r}; choose from {', '.join(INRIA_CITIES)}")
    scene = _Scene(CITY_STYLES[city], size, rng)
    return scene.layout(), scene.placed


def _write_pair(job: tuple[str, int, int, int, Path, Path | None]) -> None:
    city, index, size, seed, image_path, mask_path = job
    image, mask = render_scene(city, size, seed, index)
    tags = geotags(city, index, size)
    with atomic_path(image_path) as tmp:
        tifffile.imwrite(tmp, image, photometric="rgb", extratags=tags, metadata=None)
    if mask_path is not None:
        with atomic_path(mask_path) as tmp:
            tifffile.imwrite(tmp, mask, photometric="minisblack", compression="lzw",
                             predictor=True, extratags=tags, metadata=None)


def synthesize_inria(cfg: SynthConfig) -> Path:
    """Write a synthetic Inria dataset under ``cfg.out/AerialImageDataset``; return that folder.

    ``cfg.per_city`` training pairs per city (images 1-5 of each city form the customary
    validation split) and ``cfg.test_per_city`` mask-less test images for each of Inria's
    test cities whose look is among ``cfg.cities``, all ``cfg.size`` pixels square at
    0.3 m/pixel. Existing files of the same names are replaced (same seed, same bytes).
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
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    size, seed = cfg.size, cfg.seed
    jobs = [(c, i, size, seed, dirs[0] / f"{c}{i}.tif", dirs[1] / f"{c}{i}.tif")
            for c in cities for i in range(1, cfg.per_city + 1)]
    test_cities = [test for test, style in TEST_CITY_STYLES.items() if style in cities]
    jobs += [(c, i, size, seed, dirs[2] / f"{c}{i}.tif", None)
             for c in test_cities for i in range(1, cfg.test_per_city + 1)]
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
