"""Write files so that a reader never sees half of one: temporary name, then rename."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from satgan import SatganError


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


def _publish_conflicts(out: Path, relative: list[Path]) -> list[str]:
    """Where moving the staged files to ``out`` would fail: a file where a folder must go,
    or a folder where a file must go."""
    problems = set()
    for rel in relative:
        for parent in list(reversed(rel.parents))[1:]:  # the folders between out and the file
            where = out / parent
            if where.exists() and not where.is_dir():
                problems.add(f"{where} is a file where a folder is needed")
        if (out / rel).is_dir():
            problems.add(f"{out / rel} is a folder where a file is needed")
    return sorted(problems)


def _publish(stage: Path, out: Path, relative: list[Path]) -> None:
    """Move every staged file into ``out``, all or nothing: files it replaces are kept
    aside until the last one is in place, and put back if any move fails."""
    backup = stage.with_name(stage.name + "-replaced")
    done: list[tuple[Path, Path | None]] = []  # (target, its earlier file kept aside)
    try:
        for rel in relative:
            target = out / rel
            kept = None
            if target.exists():
                kept = backup / rel
                kept.parent.mkdir(parents=True, exist_ok=True)
                os.replace(target, kept)
            done.append((target, kept))
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, target)
    except BaseException:
        try:
            for target, kept in reversed(done):
                target.unlink(missing_ok=True)
                if kept is not None:
                    os.replace(kept, target)
        except BaseException as failed:  # the earlier files stay in the backup folder, named
            raise SatganError(f"publishing into {out} failed and so did putting the earlier files back "
                              f"({failed}); they are in {backup}") from failed
        raise


@contextmanager
def staged_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a staging folder inside ``out``; when the block succeeds, move every file
    written there into ``out`` at the same relative path (replacing older ones). All or
    nothing: every conflict (a file where a folder must go) is found before anything moves,
    and a move that fails puts the earlier files back. When the block fails, the staging
    folder goes and ``out`` keeps its earlier contents untouched."""
    import shutil

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stage = out / f".staging-{os.getpid()}"
    backup = stage.with_name(stage.name + "-replaced")
    for leftover in (stage, backup):
        shutil.rmtree(leftover, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
        relative = sorted(p.relative_to(stage) for p in stage.rglob("*") if p.is_file())
        problems = _publish_conflicts(out, relative)
        if problems:
            raise SatganError(f"cannot write into {out}: {'; '.join(problems[:3])}"
                              f"{f' (and {len(problems) - 3} more)' if len(problems) > 3 else ''}; "
                              "move it away or choose another --out (nothing was changed)")
        _publish(stage, out, relative)
        shutil.rmtree(backup, ignore_errors=True)
    except SatganError as exc:
        if str(backup) not in str(exc):
            shutil.rmtree(backup, ignore_errors=True)
        raise
    except BaseException:
        shutil.rmtree(backup, ignore_errors=True)  # rolled back: the earlier files are in place
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
