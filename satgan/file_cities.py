"""Which city a mask file is drawn as, by a generator conditioned on cities: the one its
Inria-style name says (``austin12``), unless the generator was given one."""

from __future__ import annotations

import os
from pathlib import Path

from satgan.data.sources import inria_city
from satgan.errors import SatganError
from satgan.loading import Generator, as_city


def named_city(gen: Generator, path: Path) -> str | None:
    """The city an Inria-style mask name says (``austin12``), if this generator knows it."""
    city = inria_city(path.stem)
    return city if city in gen.labels else None


def file_style(gen: Generator, path: str | os.PathLike) -> Generator:
    """``gen`` drawing the mask file ``path`` as the city its Inria-style name says
    (``austin12``), where it is conditioned and was given no city."""
    path = Path(path)
    if not gen.labels or gen.city is not None:
        return gen
    city = named_city(gen, path)
    if city is None:
        raise SatganError(f"{path}: which city to draw? The name says none this model knows; "
                          f"give --city one of {', '.join(gen.labels)}, or --city all")
    return as_city(gen, city)
