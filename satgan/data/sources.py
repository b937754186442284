"""Find image/mask pairs in a data folder: the Inria download or a user's paired folder.

Two layouts are recognised:

* **Inria** (``AerialImageDataset/`` or its parent): ``train/images/<city><n>.tif`` with
  ``train/gt/<city><n>.tif``, and ``test/images/`` without masks. Validation is the
  customary hold-out, images 1-5 of every city; the rest is ``train``.
* **Paired folders**: ``images/`` with ``masks/`` (or ``gt/``), files matched by stem,
  any format :mod:`satgan.data.readers` reads. Either the folder itself, or a folder of
  such folders, one per split (``train/``, ``val/``, ...). The city of a pair is the
  dataset folder's name.

Any layout's split can be replaced by a list of validation stems or glob patterns.
"""

from __future__ import annotations

import fnmatch
import os
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from satgan import SatganError, SatganWarning
from satgan.data.readers import IMAGE_SUFFIXES

INRIA_DIR = "AerialImageDataset"
INRIA_TEST_CITIES = ("bellingham", "bloomington", "innsbruck", "sfo", "tyrol-e")
INRIA_VAL_INDICES = range(1, 6)
MASK_DIR_NAMES = ("masks", "gt")
SPLIT_NAMES = ("train", "val", "validation", "valid", "test")
# <city><n>, and <city><n>-v<k> for the k-th synthesized variant of one mask
_INRIA_STEM = re.compile(r"^(?P<city>[a-z][a-z_-]*?)-?(?P<index>\d+)(?:-v\d+)?$")


def inria_city(stem: str) -> str | None:
    """The city of an Inria-style name (``austin12`` -> ``austin``), else ``None``."""
    m = _INRIA_STEM.match(stem)
    return m["city"] if m else None


@dataclass(frozen=True)
class Pair:
    """One image with its building mask."""

    image: Path
    mask: Path
    city: str
    split: str
    index: int | None = None  # the <n> of an Inria <city><n>, else None

    @property
    def stem(self) -> str:
        return self.image.stem


@dataclass
class Source:
    """All pairs found under ``root``, with their cities and splits."""

    root: Path
    kind: str  # "inria" | "paired"
    pairs: list[Pair]
    unpaired_images: list[Path] = field(default_factory=list)
    test_images: list[Path] = field(default_factory=list)

    @property
    def splits(self) -> dict[str, list[Pair]]:
        """Pairs by split name, ``train`` first, then ``val``, then the rest by name."""
        order = {"train": 0, "val": 1}
        out: dict[str, list[Pair]] = {}
        for name in sorted({p.split for p in self.pairs}, key=lambda s: (order.get(s, 2), s)):
            out[name] = [p for p in self.pairs if p.split == name]
        return out

    @property
    def cities(self) -> list[str]:
        return sorted({p.city for p in self.pairs})

    def counts(self) -> dict[str, dict[str, int]]:
        """Number of pairs per city and split: ``{city: {split: n}}``."""
        table: dict[str, dict[str, int]] = {}
        for (city, split), n in sorted(Counter((p.city, p.split) for p in self.pairs).items()):
            table.setdefault(city, {})[split] = n
        return table


def _list_images(folder: Path) -> dict[str, Path]:
    """Files of supported formats in ``folder`` by stem; two files with one stem is an error."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
            if path.stem in found:
                raise SatganError(
                    f"{folder}: two files share the stem {path.stem!r} "
                    f"({found[path.stem].name}, {path.name}); keep one"
                )
            found[path.stem] = path
    return found


def mask_files(folder: str | os.PathLike) -> list[Path]:
    """The mask files of a folder of masks, sorted: the folder itself, or its ``gt/`` or
    ``masks/`` (a paired folder), or its Inria ``AerialImageDataset/train/gt`` (e.g. a
    forge); hidden files left out. A folder without any is an error naming it."""
    folder = Path(folder).expanduser()
    nested = (folder / INRIA_DIR / "train" / "gt", folder / "train" / "gt", *(folder / n for n in MASK_DIR_NAMES))
    for candidate in nested:
        if candidate.is_dir():
            folder = candidate
            break
    if not folder.is_dir():
        raise SatganError(f"{folder}: {'is a file, not' if folder.exists() else 'no such'} folder of masks")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise SatganError(f"{folder}: no mask files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def _mask_dir(folder: Path) -> Path | None:
    for name in MASK_DIR_NAMES:
        if (folder / name).is_dir():
            return folder / name
    return None


def _is_paired_folder(folder: Path) -> bool:
    return (folder / "images").is_dir() and _mask_dir(folder) is not None


def _match(image_dir: Path, mask_dir: Path, make_pair, unpaired: list[Path]) -> list[Pair]:
    images, masks = _list_images(image_dir), _list_images(mask_dir)
    unpaired.extend(images[s] for s in sorted(set(images) - set(masks)))
    orphans = sorted(set(masks) - set(images))
    if orphans:
        warnings.warn(
            f"{mask_dir}: {len(orphans)} mask(s) without an image ignored, e.g. {orphans[0]}",
            SatganWarning,
            stacklevel=3,
        )
    return [make_pair(images[s], masks[s]) for s in sorted(set(images) & set(masks))]


def _inria_pairs(root: Path, unpaired: list[Path]) -> list[Pair]:
    def make(image: Path, mask: Path) -> Pair:
        m = _INRIA_STEM.match(image.stem)
        city, index = (m["city"], int(m["index"])) if m else (image.stem, None)
        split = "val" if index in INRIA_VAL_INDICES else "train"
        return Pair(image, mask, city, split, index)

    pairs = _match(root / "train" / "images", root / "train" / "gt", make, unpaired)
    return sorted(pairs, key=lambda p: (p.city, p.index or 0, p.stem))


def _dataset_name(folder: Path) -> str:
    return folder.parent.name if folder.name.lower() in SPLIT_NAMES else folder.name


def _split_name(folder: Path) -> str:
    """The split a folder's name says: ``val`` for val/valid/validation, else the name."""
    name = folder.name.lower()
    return "val" if name in ("val", "valid", "validation") else name


def _find_inria_root(path: Path) -> Path | None:
    for candidate in (path, path / INRIA_DIR):
        if (candidate / "train" / "images").is_dir() and (candidate / "train" / "gt").is_dir():
            return candidate
    return None


def open_source(
    path: str | os.PathLike,
    *,
    val: Sequence[str] | str | None = None,
    skip_unpaired: bool = False,
    labels: str | None = None,
) -> Source:
    """Discover the pairs under ``path`` (Inria layout or paired folders).

    ``val``: stems or glob patterns (a list, or one comma-separated string) whose
    pairs form the ``val`` split, all others ``train``; ``None`` keeps the layout's
    own split. Images without a mask are an error naming them, unless
    ``skip_unpaired`` (then they are counted in ``Source.unpaired_images``).
    ``labels`` replaces each pair's city (its style label): see :func:`relabel`.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "no such folder"
        raise SatganError(f"{path}: {what} (expected an Inria AerialImageDataset or a paired folder)")
    unpaired: list[Path] = []
    test_images: list[Path] = []
    inria = _find_inria_root(path)
    if inria is not None:
        root, kind = inria, "inria"
        pairs = _inria_pairs(root, unpaired)
        if (root / "test" / "images").is_dir():
            test_images = sorted(_list_images(root / "test" / "images").values())
    elif _is_paired_folder(path):
        root, kind = path, "paired"
        name = _dataset_name(path)
        split = _split_name(path) if path.name.lower() in SPLIT_NAMES else "train"
        pairs = _match(path / "images", _mask_dir(path), lambda i, m: Pair(i, m, name, split), unpaired)
    else:
        subfolders = [p for p in sorted(path.iterdir()) if p.is_dir() and _is_paired_folder(p)]
        if not subfolders:
            raise SatganError(
                f"{path}: no image/mask pairs found; expected an Inria AerialImageDataset "
                "(train/images + train/gt), or images/ with masks/ (or gt/), "
                "or one such folder per split"
            )
        root, kind, pairs = path, "paired", []
        for sub in subfolders:
            def make(i: Path, m: Path, split: str = _split_name(sub)) -> Pair:
                return Pair(i, m, path.name, split)

            pairs += _match(sub / "images", _mask_dir(sub), make, unpaired)
    if unpaired:
        names = ", ".join(str(p) for p in unpaired[:5]) + (" ..." if len(unpaired) > 5 else "")
        if not skip_unpaired:
            raise SatganError(
                f"{len(unpaired)} image(s) have no mask with the same stem: {names}; "
                "add the masks, or pass --skip-unpaired to leave them out"
            )
        warnings.warn(f"{len(unpaired)} image(s) without a mask skipped: {names}", SatganWarning, stacklevel=2)
    if not pairs:
        raise SatganError(f"{path}: found image and mask folders but no pair with matching file stems")
    if val is not None:
        pairs = assign_val(pairs, val)
    if labels:
        pairs = relabel(pairs, labels)
    return Source(root, kind, pairs, unpaired, test_images)


_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def _check_label(label: str, where: object) -> str:
    """A label names output folders (``--city all``): one plain path component."""
    if not _LABEL.fullmatch(label):
        raise SatganError(f"{where}: label {label!r} is not a plain name (letters, digits and _.+- only)")
    return label


def relabel(pairs: Sequence[Pair], spec: str) -> list[Pair]:
    """Each pair's city (style label) from ``spec``: a CSV file of ``stem,label`` rows, or a
    regular expression searched in the image's stem whose group ``label`` (else its first
    group, else the whole match) is the label, e.g. ``^([a-z]+)_`` for ``vienna_0012``.
    A pair the CSV lacks or the pattern does not match is an error naming it."""
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".csv":
        if not path.is_file():
            raise SatganError(f"{path}: no such label file (a CSV of stem,label rows)")
        import csv

        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: spreadsheets write a byte-order mark
            rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
        bad = [r for r in rows if len(r) < 2 or not r[1].strip()]
        if bad:
            raise SatganError(f"{path}: row {bad[0]!r} is not stem,label")
        table = {r[0].strip(): r[1].strip() for r in rows}
        table.pop("stem", None)  # a header row
        missing = [p.stem for p in pairs if p.stem not in table]
        if missing:
            raise SatganError(f"{path}: no label for {len(missing)} pair(s), e.g. {missing[0]!r}")
        return [replace(p, city=_check_label(table[p.stem], path)) for p in pairs]
    try:
        pattern = re.compile(spec)
    except re.error as exc:
        raise SatganError(f"label pattern {spec!r} is not a regular expression ({exc})") from None
    out = []
    for p in pairs:
        m = pattern.search(p.stem)
        if m is None:
            raise SatganError(f"label pattern {spec!r} does not match {p.stem!r} ({p.image})")
        label = m["label"] if "label" in pattern.groupindex else m.group(1) if pattern.groups else m.group(0)
        out.append(replace(p, city=_check_label(label, f"label pattern {spec!r} on {p.stem!r}")))
    return out


def assign_val(pairs: Sequence[Pair], val: Sequence[str] | str) -> list[Pair]:
    """Put the pairs whose stem matches one of ``val`` (stems or globs) in ``val``, the rest in ``train``."""
    patterns = [v.strip() for v in (val.split(",") if isinstance(val, str) else val) if v.strip()]
    unmatched = [pat for pat in patterns if not any(fnmatch.fnmatchcase(p.stem, pat) for p in pairs)]
    if unmatched:
        raise SatganError(f"validation pattern(s) {unmatched} match no pair (stems look like {pairs[0].stem!r})")
    out = []
    for p in pairs:
        is_val = any(fnmatch.fnmatchcase(p.stem, pat) for pat in patterns)
        out.append(Pair(p.image, p.mask, p.city, "val" if is_val else "train", p.index))
    return out
