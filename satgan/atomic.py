"""Write files so that a reader never sees half of one: temporary name, then rename."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from satgan.errors import SatganError


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was.
    The temporary name keeps the suffix, so writers that pick a format by suffix work.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON, atomically (same data, same bytes)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")



def _nearest_existing(path: Path) -> Path:
    for candidate in [path, *path.parents]:
        if candidate.exists():
            return candidate
    return Path("/")


def check_output_folder(path: str | os.PathLike, what: str = "--out") -> Path:
    """``path`` as a folder outputs can be written into, checked before any work: not a
    file, no file on the way to it, and writable. One :class:`SatganError` naming it."""
    path = Path(path).expanduser()
    found = _nearest_existing(path)
    if not found.is_dir():
        where = "is a file" if found == path else f"cannot be made: {found} is a file"
        raise SatganError(f"{what} {path}: {where}; give a folder")
    if not os.access(found, os.W_OK | os.X_OK):
        raise SatganError(f"{what} {path}: {found} is not writable (read-only?)")
    return path


def check_output_file(path: str | os.PathLike, what: str = "--out") -> Path:
    """``path`` as a file to be written: not an existing folder, in a folder that can be made."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise SatganError(f"{what} {path}: is a folder; give a file name, e.g. {path / 'report.json'}")
    check_output_folder(path.parent, what)
    return path


@contextmanager
def staged_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a staging folder inside ``out``; when the block succeeds, move every file
    written there into ``out`` at the same relative path (replacing older ones). When it
    fails, the staging folder goes and ``out`` keeps its earlier contents untouched."""
    import shutil

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stage = out / f".staging-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
        for file in sorted(p for p in stage.rglob("*") if p.is_file()):
            target = out / file.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
