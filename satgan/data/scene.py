"""One synthetic scene being drawn: ground, water, roads and trees (the buildings from
:mod:`satgan.data.buildings`), as a whole image and mask or as the mask alone."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from satgan.data.buildings import Buildings
from satgan.data.city_styles import METRES_PER_PIXEL, CityStyle


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


class Scene(Buildings):
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

