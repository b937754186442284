"""Weights files (checkpoints, segmenters, the feature networks' ImageNet weights): read
safely, and every way a file can fail to be one said in one line naming it.

:func:`read_torch_file` loads with ``torch.load(weights_only=True)`` (a file can never run
code) and turns whatever torch raises for a file it cannot read (missing, a folder,
unreadable, empty, cut short, damaged inside, a zip torch did not write, a raw pickle,
text, random bytes) into one :class:`SatganError` that says which of these the file is.
:func:`state_dict_of` checks that what loaded is a state dict (names to tensors) and
:func:`check_finite` that no tensor holds NaN or infinite values.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from satgan import SatganError

ZIP_MAGIC = b"PK\x03\x04"  # torch.save's files are zip archives
PICKLE_PROTO = b"\x80"  # a pickle's first opcode (protocol 2 and later)


def _what_the_bytes_are(path: Path) -> tuple[str, bool]:
    """What ``path`` holds, judged by its bytes, for a file torch could not load; and
    whether it is damaged (True) rather than another kind of file (False)."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(ZIP_MAGIC):
        if not zipfile.is_zipfile(path):
            return "a zip archive cut short", True
        with zipfile.ZipFile(path) as archive:
            if any(name.endswith("/data.pkl") for name in archive.namelist()):
                return "a file torch.save wrote, damaged inside", True
        return "a zip archive that torch.save did not write", False
    if head.startswith(PICKLE_PROTO):
        return "a raw pickle, not a file torch.save wrote", False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
        return "a text file, not a file torch.save wrote", False
    return "bytes that are not a file torch.save wrote", True


def read_torch_file(path: str | os.PathLike, noun: str = "weights file", title: str | None = None,
                    map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``, or one :class:`SatganError` naming ``path``.
    ``noun`` (``checkpoint``, ``segmenter``) and ``title`` (``a satgan checkpoint``) word the
    messages: ``PATH: not a readable checkpoint (a zip archive cut short); ...``, ``PATH: not a
    satgan checkpoint (a text file, ...)``."""
    path = Path(path).expanduser()
    title = title or f"a {noun}"
    if path.is_dir():
        raise SatganError(f"{path}: is a folder, not a {noun} file")
    if not path.is_file():
        raise SatganError(f"{path}: no such {noun} file")
    try:
        if path.stat().st_size == 0:
            raise SatganError(f"{path}: not a readable {noun} (an empty file, 0 bytes: a save or a copy cut short)")
        with warnings.catch_warnings():  # torch's advice on pickle protocols; satgan says it once, below
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except SatganError:
        raise
    except OSError as exc:
        raise SatganError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    except Exception as exc:  # noqa: BLE001 - whatever torch raises for a file it cannot read is one message
        text = str(exc)
        if "Unsupported global" in text or "GLOBAL" in text:
            raise SatganError(f"{path}: not {title}: it holds objects a {noun} never holds; "
                              "do not load it by other means (it could run code)") from None
        try:
            what, damaged = _what_the_bytes_are(path)
        except OSError as read_error:
            raise SatganError(f"{path}: cannot be read ({read_error.strerror})") from None
        if damaged:
            raise SatganError(f"{path}: not a readable {noun} ({what}); the file is truncated or corrupt") from None
        raise SatganError(f"{path}: not {title} ({what})") from None


def _described(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, Mapping):
        return f"a dict of {len(value)} entries"
    return f"a {type(value).__name__}"


def state_dict_of(obj: Any, path: str | os.PathLike, title: str, like: str) -> dict[str, torch.Tensor]:
    """``obj`` (a loaded file, or part of one) as a state dict of names to tensors, or one
    :class:`SatganError`: ``PATH: not TITLE: expected a state dict of tensors with keys like
    LIKE, got ...``."""
    expected = f"{path}: not {title}: expected a state dict of tensors with keys like {like}"
    if not isinstance(obj, Mapping) or not obj:
        raise SatganError(f"{expected}, got {_described(obj) if obj is not None else 'nothing'}")
    for key, value in obj.items():
        if not isinstance(key, str):
            raise SatganError(f"{expected}, got a dict with the key {key!r}")
        if not isinstance(value, torch.Tensor):
            raise SatganError(f"{expected}, got a dict whose {key!r} is {_described(value)}")
    return dict(obj)


def nonfinite(obj: Any, prefix: str = "") -> str | None:
    """The name of the first floating-point tensor in ``obj`` (tensors, or dicts and lists
    of them, nested) holding NaN or an infinity, else None."""
    if isinstance(obj, torch.Tensor):
        if (obj.is_floating_point() or obj.is_complex()) and not bool(torch.isfinite(obj).all()):
            return prefix or "the tensor"
        return None
    if isinstance(obj, Mapping):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return None
    for key, value in items:
        found = nonfinite(value, f"{prefix}.{key}" if prefix else str(key))
        if found:
            return found
    return None


def check_finite(obj: Any, path: str | os.PathLike, what: str, advice: str = "the file is damaged") -> None:
    """One :class:`SatganError` naming ``path`` and the tensor, where a tensor of ``obj``
    holds NaN or an infinity: weights that would only turn every loss into NaN."""
    name = nonfinite(obj)
    if name is not None:
        raise SatganError(f"{path}: {what} {name!r} holds NaN or infinite values; {advice}")
