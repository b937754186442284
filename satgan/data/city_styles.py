"""How each city of the built-in synthetic data looks, and where it lies on the map."""

from __future__ import annotations

from dataclasses import dataclass

METRES_PER_PIXEL = 0.3  # Inria's ground sampling distance


@dataclass(frozen=True)
class CityStyle:
    """How one city looks; lengths in metres, colours RGB uint8."""

    ground: tuple[int, int, int]
    ground_alt: tuple[int, int, int]  # patches mixed into the ground (soil, dry grass)
    forest_cover: float  # fraction of the area under closed forest
    road_layout: str  # "grid" | "curvy"
    road_spacing: float  # grid spacing, or mean distance between curvy roads
    road_width: float
    frontage: tuple[float, float]  # building side along the road
    depth: tuple[float, float]  # building side away from the road
    gap: tuple[float, float]  # between neighbours along the road
    setback: float  # from the road edge
    rows: int  # rows of buildings behind each other
    build_prob: float
    roofs: tuple[tuple[int, int, int], ...]
    roof_kinds: tuple[float, float, float]  # weights of gable, hip, flat
    height: tuple[float, float]  # for shadow length
    trees_per_ha: float
    water: float  # fraction of the area under water
    villages: int  # 0: build everywhere; else density falls off around this many centres


CITY_STYLES: dict[str, CityStyle] = {
    "austin": CityStyle(
        ground=(148, 146, 108), ground_alt=(112, 124, 78), forest_cover=0.05,
        road_layout="grid", road_spacing=120, road_width=9,
        frontage=(13, 20), depth=(12, 17), gap=(7, 14), setback=8, rows=1, build_prob=0.85,
        roofs=((120, 118, 115), (96, 84, 74), (70, 70, 72), (150, 140, 128), (112, 100, 88)),
        roof_kinds=(0.35, 0.55, 0.10), height=(4, 7), trees_per_ha=30, water=0.0, villages=0,
    ),
    "chicago": CityStyle(
        ground=(116, 118, 104), ground_alt=(96, 110, 80), forest_cover=0.0,
        road_layout="grid", road_spacing=100, road_width=11,
        frontage=(7, 10), depth=(16, 24), gap=(1, 2.5), setback=3, rows=2, build_prob=0.95,
        roofs=((72, 72, 74), (104, 102, 100), (140, 138, 134), (88, 76, 68), (58, 58, 60)),
        roof_kinds=(0.30, 0.05, 0.65), height=(8, 14), trees_per_ha=12, water=0.0, villages=0,
    ),
    "kitsap": CityStyle(
        ground=(92, 108, 64), ground_alt=(120, 124, 84), forest_cover=0.5,
        road_layout="curvy", road_spacing=250, road_width=7,
        frontage=(12, 18), depth=(10, 15), gap=(12, 40), setback=12, rows=2, build_prob=0.75,
        roofs=((84, 84, 86), (110, 96, 80), (60, 62, 66), (128, 124, 118)),
        roof_kinds=(0.55, 0.35, 0.10), height=(4, 7), trees_per_ha=45, water=0.18, villages=0,
    ),
    "tyrol-w": CityStyle(
        ground=(104, 134, 70), ground_alt=(138, 150, 88), forest_cover=0.3,
        road_layout="curvy", road_spacing=250, road_width=7,
        frontage=(14, 24), depth=(12, 18), gap=(4, 14), setback=6, rows=3, build_prob=0.9,
        roofs=((104, 76, 60), (76, 70, 68), (138, 82, 64), (92, 92, 96)),
        roof_kinds=(0.85, 0.10, 0.05), height=(6, 10), trees_per_ha=15, water=0.0, villages=4,
    ),
    "vienna": CityStyle(
        ground=(124, 120, 108), ground_alt=(98, 116, 76), forest_cover=0.0,
        road_layout="grid", road_spacing=95, road_width=14,
        frontage=(16, 34), depth=(12, 16), gap=(0, 0.5), setback=0.5, rows=1, build_prob=0.97,
        roofs=((168, 92, 72), (150, 104, 84), (136, 132, 128), (110, 106, 104), (182, 110, 86)),
        roof_kinds=(0.55, 0.10, 0.35), height=(15, 22), trees_per_ha=10, water=0.0, villages=0,
    ),
}
# Inria's test cities get the look of the nearest training city.
TEST_CITY_STYLES = {
    "bellingham": "kitsap", "bloomington": "austin", "innsbruck": "tyrol-w",
    "sfo": "chicago", "tyrol-e": "tyrol-w",
}

# (EPSG code, citation, easting, northing of the first tile's upper-left corner)
_CITY_CRS = {
    "austin": (26914, "NAD83 / UTM zone 14N", 616000.0, 3353000.0),
    "chicago": (26916, "NAD83 / UTM zone 16N", 439000.0, 4637000.0),
    "kitsap": (26910, "NAD83 / UTM zone 10N", 524000.0, 5290000.0),
    "tyrol-w": (31254, "MGI / Austria GK West", 17000.0, 239000.0),
    "vienna": (31256, "MGI / Austria GK East", 2000.0, 346000.0),
    "bellingham": (26910, "NAD83 / UTM zone 10N", 536000.0, 5400000.0),
    "bloomington": (26916, "NAD83 / UTM zone 16N", 537000.0, 4335000.0),
    "innsbruck": (31254, "MGI / Austria GK West", 78000.0, 237000.0),
    "sfo": (26910, "NAD83 / UTM zone 10N", 548000.0, 4180000.0),
    "tyrol-e": (31255, "MGI / Austria GK Central", -110000.0, 250000.0),
}


def geotags(city: str, index: int, size: int) -> list[tuple[int, int, int, object]]:
    """GeoTIFF tags (tifffile ``extratags``) placing image ``index`` of ``city`` on a row of tiles."""
    epsg, citation, east, north = _CITY_CRS[city]
    span = size * METRES_PER_PIXEL
    x0, y0 = east + ((index - 1) % 6) * span, north - ((index - 1) // 6) * span
    keys = [
        1, 1, 0, 4,  # version 1.1.0, four keys
        1024, 0, 1, 1,  # GTModelType: projected
        1025, 0, 1, 1,  # GTRasterType: pixel is area
        3072, 0, 1, epsg,  # ProjectedCSType
        3076, 0, 1, 9001,  # ProjLinearUnits: metre
    ]
    return [
        (33550, 12, 3, (METRES_PER_PIXEL, METRES_PER_PIXEL, 0.0)),
        (33922, 12, 6, (0.0, 0.0, 0.0, x0, y0, 0.0)),
        (34735, 3, len(keys), tuple(keys)),
        (34737, 2, 0, citation + "|"),
    ]
