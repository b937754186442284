"""The buildings of a synthetic scene: footprints placed along its roads without
overlapping anything, their cast shadows, and gable, hip or flat roofs lit by the sun."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import ImageDraw

_CLAIM_GRID = np.linspace(-0.9, 0.9, 7)  # where a footprint is sampled to see whether it is free
_CLAIM_A, _CLAIM_B = _CLAIM_GRID[:, None, None], _CLAIM_GRID[None, :, None]


class Buildings:
    """The building methods of :class:`satgan.data.scene.Scene`, on its style, random
    generator, pixel scale, sun, roads, occupied ground and mask."""

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

