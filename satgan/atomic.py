"""Write files so that a reader never sees half of one (temporary name, then rename); outputs
that never clobber inputs; staging folders named and marked as satgan's."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from satgan import SatganError, SatganWarning


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


# -- outputs that never clobber inputs ----------------------------------------------------------
Inputs = Iterable[Any]  # paths (str or PathLike, None skipped), or (label, path) pairs


def _labelled(inputs: Inputs) -> list[tuple[str, Path]]:
    """``inputs`` as (label, path): a bare path is labelled by what it is; missing ones are
    left out (the command names those itself)."""
    found = []
    for item in inputs:
        label, given = item if isinstance(item, tuple) else (None, item)
        if given is None or str(given) == "":
            continue
        path = Path(given).expanduser()
        if path.exists():
            found.append((label or ("the input folder" if path.is_dir() else "the input file"), path))
    return found


def _same(a: Path, b: Path) -> bool:
    """The same file or folder, through links (hard links included) or not."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_apart(path: str | os.PathLike, inputs: Inputs, what: str = "--out", folder: bool = True) -> None:
    """Refuse an output ``path`` that is one of ``inputs`` (after resolving links), lies
    inside an input folder or, for a ``folder`` output, holds one: writing, staging or
    replacing it could destroy that input. ``inputs``: paths, or (label, path) pairs where
    a label ("the masks folder") names the input better. A file output inside an input
    folder is :func:`check_output_file`'s to judge (a new file there destroys nothing)."""
    out = Path(path).expanduser()
    target = out.resolve()
    for label, given in _labelled(inputs):
        source = given.resolve()
        if (out.exists() and _same(out, given)) or target == source:
            where = f" (a link to {target})" if out.is_symlink() else ""
            if given.is_dir():
                raise SatganError(f"{what} {out} is {label} {given}{where}: outputs must not go inside {label}; "
                                  f"choose another {what}")
            raise SatganError(f"{what} {out} is {label} {given}{where}: writing it would destroy that input; "
                              f"choose another {what}")
        if folder and given.is_dir() and source in target.parents:
            raise SatganError(f"{what} {out} lies inside {label} {given}: outputs would mix with that input; "
                              "choose a folder outside it")
        if folder and given.is_dir() and target in source.parents:
            raise SatganError(f"{what} {out} holds {label} {given}: writing or replacing {what} could destroy "
                              "that input; choose a folder that does not contain it")


def check_output_folder(path: str | os.PathLike, what: str = "--out", inputs: Inputs = ()) -> Path:
    """``path`` as a folder outputs can be written into, checked before any work: none of
    ``inputs``, not inside an input folder nor holding one (:func:`check_apart`), not a
    file, no file on the way to it, and writable. One :class:`SatganError` naming it."""
    path = Path(path).expanduser()
    check_apart(path, inputs, what)
    found = _nearest_existing(path)
    if not found.is_dir():
        where = "is a file" if found == path else f"cannot be made: {found} is a file"
        raise SatganError(f"{what} {path}: {where}; give a folder")
    if not os.access(found, os.W_OK | os.X_OK):
        raise SatganError(f"{what} {path}: {found} is not writable (read-only?)")
    return path


def _recognised(recognise: Callable[[Path], bool], path: Path) -> bool:
    try:
        return bool(recognise(path))
    except Exception:  # noqa: BLE001 - a file a recogniser cannot read is not what the command writes
        return False


def check_output_file(path: str | os.PathLike, what: str = "--out", inputs: Inputs = (),
                      kind: tuple[str, Callable[[Path], bool]] | None = None, overwrite: bool = False) -> Path:
    """``path`` as a file to be written, checked before any work: not an existing folder,
    in a folder that can be made; never one of ``inputs`` (through links too) nor an
    existing file inside an input folder that is not of ``kind``, even with ``overwrite``;
    and where it exists, of ``kind`` = (its name, a function recognising one by its
    content), unless ``overwrite``. One :class:`SatganError` naming it and what to do."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise SatganError(f"{what} {path}: is a folder; give a file name, e.g. {path / 'report.json'}")
    check_output_folder(path.parent, what)
    check_apart(path, inputs, what, folder=False)
    name, recognise = kind if kind is not None else ("", None)
    own = path.is_file() and recognise is not None and _recognised(recognise, path)
    if path.exists() and not own:
        target = path.resolve()
        for label, given in _labelled(inputs):
            if given.is_dir() and given.resolve() in target.parents:
                raise SatganError(f"{what} {path} is a file of {label} {given}: writing it would change that "
                                  f"input; choose a path outside {given}")
        if recognise is not None and not overwrite:
            raise SatganError(f"{what} {path}: exists and is not {name}; pass --overwrite to replace it, or "
                              f"choose another {what}")
    return path


# -- staging folders: named and marked as satgan's -----------------------------------------------
STAGING = "satgan-staging"  # in the name of every staging folder satgan makes
STAGING_MARK = ".satgan-staging.json"  # written by satgan into each, first: only such folders are ever deleted


def make_staging(parent: str | os.PathLike, name: str = "") -> Path:
    """A new, empty staging folder ``parent/.NAME satgan-staging-RANDOM`` (``name``: the
    output's name and a dot, for one made beside it), holding :data:`STAGING_MARK`: the
    process that made it, so that a later run knows it for satgan's own."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{name}{STAGING}-", dir=parent))
    write_json(stage / STAGING_MARK, {"made_by": "satgan", "pid": os.getpid(), "host": socket.gethostname()})
    return stage


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def sweep_staging(parent: str | os.PathLike, name: str = "", precious: tuple[str, ...] = ()) -> None:
    """Remove the staging folders (``.NAME satgan-staging-*`` in ``parent``) that satgan
    made in runs that died, on this machine: only those with satgan's mark, and none
    holding a ``precious`` entry (earlier outputs an interrupted run had moved aside):
    those, and folders named so without the mark, are left alone and named in a warning."""
    parent = Path(parent)
    prefix = f".{name}{STAGING}-"
    try:
        leftovers = sorted(p for p in parent.iterdir() if p.name.startswith(prefix))
    except OSError:
        return
    for folder in leftovers:
        try:
            mark = json.loads((folder / STAGING_MARK).read_text()) if folder.is_dir() else None
        except (OSError, ValueError):
            mark = None
        if not isinstance(mark, dict) or mark.get("made_by") != "satgan" or not isinstance(mark.get("pid"), int) \
                or mark["pid"] <= 0 or folder.is_symlink():
            warnings.warn(f"{folder}: named like satgan's staging but not made by satgan (no {STAGING_MARK}); "
                          "left alone", SatganWarning, stacklevel=3)
        elif mark.get("host") != socket.gethostname() or _alive(mark["pid"]):
            continue  # perhaps a satgan run at work there now
        elif any((folder / p).exists() for p in precious):
            warnings.warn(f"{folder}: an interrupted satgan run left the earlier files it was replacing there "
                          f"({', '.join(p for p in precious if (folder / p).exists())}); move them back or delete "
                          "the folder", SatganWarning, stacklevel=3)
        else:
            shutil.rmtree(folder, ignore_errors=True)


REPLACED = "files-replaced"  # inside a staging folder: the files a publish replaced, kept until it is done
PUBLISHED = ".satgan-published.json"  # in an output folder: every file staged_folder has put there


def _published(out: Path) -> set[str]:
    """The files earlier publishes put into ``out`` (relative paths), which a new one may replace."""
    try:
        listed = json.loads((out / PUBLISHED).read_text())
    except (OSError, ValueError):
        return set()
    return {str(p) for p in listed} if isinstance(listed, list) else set()


def _publish_conflicts(out: Path, relative: list[Path], inputs: Inputs = ()) -> list[str]:
    """Where moving the staged files to ``out`` would fail: a file where a folder must go,
    or a folder where a file must go; or would replace an input of the command, or a file
    that no earlier publish put there (a user's)."""
    problems = set()
    sources = _labelled(inputs)
    ours = _published(out)
    for rel in relative:
        for parent in list(reversed(rel.parents))[1:]:  # the folders between out and the file
            where = out / parent
            if where.exists() and not where.is_dir():
                problems.add(f"{where} is a file where a folder is needed")
        target = out / rel
        if target.is_dir():
            problems.add(f"{target} is a folder where a file is needed")
        elif target.exists():
            inputs_there = {f"{target} is {label} {given}" for label, given in sources if _same(target, given)}
            problems.update(inputs_there or ({f"{target} is there and satgan did not write it"}
                                             if str(rel) not in ours else set()))
    return sorted(problems)


def _publish(stage: Path, out: Path, relative: list[Path], backup: Path) -> None:
    """Move every staged file into ``out``, all or nothing: files it replaces are kept
    aside in ``backup`` until the last one is in place, and put back if any move fails."""
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
def staged_folder(out: str | os.PathLike, inputs: Inputs = ()) -> Iterator[Path]:
    """Yield a staging folder inside ``out``; when the block succeeds, move every file
    written there into ``out`` at the same relative path (replacing the ones an earlier
    publish put there, listed in :data:`PUBLISHED`). All or nothing: every conflict (a file
    where a folder must go, a file that is one of ``inputs``, a file of the same name that
    satgan did not put there) is found before anything moves, and a move that fails puts the earlier
    files back. When the block fails, the staging folder goes and ``out`` keeps its earlier
    contents untouched. The staging folder is :func:`make_staging`'s (named and marked as
    satgan's); those that died with their run are removed first (:func:`sweep_staging`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sweep_staging(out, precious=(REPLACED,))
    stage = make_staging(out)
    files, backup = stage / "files", stage / REPLACED
    files.mkdir()
    keep = False
    try:
        yield files
        relative = sorted(p.relative_to(files) for p in files.rglob("*") if p.is_file())
        problems = _publish_conflicts(out, relative, inputs)
        if problems:
            raise SatganError(f"cannot write into {out}: {'; '.join(problems[:3])}"
                              f"{f' (and {len(problems) - 3} more)' if len(problems) > 3 else ''}; "
                              "move it away or choose another --out (nothing was changed)")
        _publish(files, out, relative, backup)
        write_json(out / PUBLISHED, sorted(_published(out) | {str(p) for p in relative}))
    except SatganError as exc:
        keep = str(backup) in str(exc)  # the earlier files could not be put back: they are there
        raise
    finally:
        if not keep:
            shutil.rmtree(stage, ignore_errors=True)
