"""Style labels: each sample's city (or a user's own label), as positions in a label list."""

from __future__ import annotations

from collections.abc import Sequence

from satgan.errors import SatganError


def label_indices(names: Sequence[str], labels: Sequence[str], where: str = "") -> list[int]:
    """Each name's position in ``labels``; an unknown name is one clear error listing the known ones."""
    lookup = {label: i for i, label in enumerate(labels)}
    unknown = sorted({n for n in names if n not in lookup})
    if unknown:
        raise SatganError(f"{where}unknown {'label' if len(unknown) == 1 else 'labels'} "
                          f"{', '.join(map(repr, unknown))}; this model knows: {', '.join(labels)}")
    return [lookup[n] for n in names]
