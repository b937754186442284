"""How a setting is declared, checked and parsed: the machinery under :mod:`satgan.config`.

A setting is a dataclass field made with :func:`setting`: its type annotation says what
values it takes (``int``, ``float``, ``bool``, ``str``, ``Literal[...]`` choices,
``list[str]``, ``X | None``), its metadata holds the help text and the allowed range.
Every config class derives from :class:`Settings`, which checks all fields when an
object is made, so a bad value from the command line, a ``--config`` file, ``--set``, a
checkpoint or a notebook parameter fails in one place with one message naming it.
The command line's options are generated from the same fields (:func:`add_options`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import types
import typing
from dataclasses import MISSING, field
from typing import Any, ClassVar, Literal, TypeVar

from satgan import SatganError

T = TypeVar("T")
_NONE = type(None)
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def setting(default: Any = MISSING, *, help: str, factory: Any = None, ge: float | None = None,
            gt: float | None = None, le: float | None = None, lt: float | None = None, arch: bool = False,
            positional: bool = False, cli: bool = True, pattern: str | None = None, repeat: bool = False) -> Any:
    """A config field. ``help`` is the one description (docs, ``--help``); ``ge``/``gt``/
    ``le``/``lt`` bound numbers; ``arch`` marks settings that change a network's shape
    (checkpoints compare them on resume); ``positional``/``cli``/``repeat`` shape the command
    line (``repeat``: a list given one option at a time, ``--set a=1 --set b=2``)."""
    meta = {"help": help, "ge": ge, "gt": gt, "le": le, "lt": lt, "arch": arch, "positional": positional,
            "cli": cli, "pattern": pattern, "repeat": repeat}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _options(hint: Any) -> tuple[Any, bool]:
    """The type without ``| None``, and whether None is allowed."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and _NONE in args:
        rest = [a for a in args if a is not _NONE]
        if len(rest) != 1:
            raise TypeError(f"a setting takes one type or None, not {hint}")
        return rest[0], True
    return hint, False


def describe(hint: Any) -> str:
    """A type in words, for messages."""
    hint, optional = _options(hint)
    if typing.get_origin(hint) is Literal:
        text = " | ".join(str(a) for a in typing.get_args(hint))
    elif typing.get_origin(hint) is list:
        text = f"a comma-separated list of {describe(typing.get_args(hint)[0])}"
    else:
        text = {bool: "true or false", int: "an integer", float: "a number", str: "text"}.get(hint, str(hint))
    return text + (" (or empty)" if optional else "")


def check_value(value: Any, hint: Any, name: str) -> Any:
    """``value`` as ``hint`` declares it (ints accepted for floats, paths for text, tuples
    for lists), or a :class:`SatganError` naming ``name``."""
    hint, optional = _options(hint)
    if value is None:
        if optional:
            return None
        raise SatganError(f"{name}: a value is required ({describe(hint)})")
    origin = typing.get_origin(hint)
    bad = SatganError(f"{name}={value!r}: expected {describe(hint)}")
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise SatganError(f"{name}={value!r}: choose from {', '.join(map(str, typing.get_args(hint)))}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise bad
        return [check_value(v, typing.get_args(hint)[0], name) for v in value]
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad
        return float(value)
    if hint is str:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if not isinstance(value, str):
            raise bad
        return value
    if isinstance(hint, type) and not isinstance(value, hint):
        raise bad
    return value


def parse_text(text: str, hint: Any, name: str) -> Any:
    """``text`` (from ``--set`` or a command-line option) as the setting's declared type."""
    inner, optional = _options(hint)
    text = text.strip()
    if optional and text.lower() in ("", "none", "null"):
        return None
    origin = typing.get_origin(inner)
    if origin is Literal:
        for choice in typing.get_args(inner):
            if str(choice) == text:
                return choice
        raise SatganError(f"{name}={text!r}: choose from {', '.join(map(str, typing.get_args(inner)))}")
    try:
        if origin is list:
            item = typing.get_args(inner)[0]
            return [parse_text(t, item, name) for t in text.split(",") if t.strip()]
        if inner is bool:
            if text.lower() not in _TRUE + _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        if inner is int:
            return int(text)
        if inner is float:
            return float(text)
    except ValueError:
        raise SatganError(f"{name}={text!r}: expected {describe(hint)}") from None
    return text


class Settings:
    """Base of every config dataclass: all fields are checked when an object is made.
    ``prefix`` names the section in messages (``train.lr=-1: ...``)."""

    prefix: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = type_hints(type(self))
        for f in dataclasses.fields(self):
            name = f"{self.prefix}{f.name}"
            value = check_value(getattr(self, f.name), hints[f.name], name)
            _check_range(value, f.metadata, name)
            object.__setattr__(self, f.name, value)
        self.check()

    def check(self) -> None:
        """Checks across fields; subclasses raise :class:`SatganError`."""


def _check_range(value: Any, meta: Any, name: str) -> None:
    if meta.get("pattern") and isinstance(value, str) and not re.fullmatch(meta["pattern"], value):
        raise SatganError(f"{name}={value!r}: {meta['help']}")
    values = value if isinstance(value, list) else [value]
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        for key, ok, words in (("ge", lambda a, b: a >= b, "at least"), ("gt", lambda a, b: a > b, "more than"),
                               ("le", lambda a, b: a <= b, "at most"), ("lt", lambda a, b: a < b, "less than")):
            bound = meta.get(key)
            if bound is not None and not ok(v, bound):
                raise SatganError(f"{name}={v!r}: must be {words} {bound:g}")


def defaults(cls: type) -> dict[str, Any]:
    """Field name -> default value (required fields left out)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
        elif f.default is not MISSING:
            out[f.name] = f.default
    return out


def from_dict(cls: type[T], values: dict[str, Any], where: str = "") -> T:
    """Build ``cls`` from ``values``; unknown keys are an error naming the valid ones."""
    if not isinstance(values, dict):
        raise SatganError(f"{where}{cls.__name__}: expected a mapping of settings, got {type(values).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise SatganError(f"{where}unknown {cls.__name__} setting(s) {unknown}; valid: {', '.join(names)}")
    missing = [f.name for f in dataclasses.fields(cls)
               if f.name not in values and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise SatganError(f"{where}{cls.__name__}: missing required setting(s) {', '.join(missing)}")
    try:
        return cls(**values)
    except SatganError as exc:
        raise SatganError(f"{where}{exc}") from None


def build(cls: type[T], **values: Any) -> T:
    """``cls`` from keyword values where ``None`` means "the default": how notebooks pass
    their parameters, so defaults live only in :mod:`satgan.config`."""
    return from_dict(cls, {k: v for k, v in values.items() if v is not None})


# -- the command line ---------------------------------------------------------------------------
def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_options(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One argparse argument per setting of ``cls`` (positional ones as positionals), with
    its help, choices and default; values are parsed and checked as ``--set`` does."""
    hints = type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.metadata.get("cli", True):
            continue
        hint = hints[f.name]
        inner, _ = _options(hint)
        text = f.metadata["help"]

        def parse(value: str, hint=hint, name=f.name) -> Any:
            try:
                return parse_text(value, hint, name)
            except SatganError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None

        if f.metadata.get("positional"):
            parser.add_argument(f.name, type=parse, help=text)
            continue
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if f.metadata.get("repeat"):
            item = typing.get_args(inner)[0]
            parser.add_argument(_flag(f.name), action="append", default=[], metavar=f.name.upper(), help=text,
                                type=lambda value, item=item, name=f.name: parse(value, item, name))
            continue
        if inner is bool:
            parser.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, default=default, help=text)
            continue
        if typing.get_origin(inner) is Literal:
            text += f" ({' | '.join(map(str, typing.get_args(inner)))})"
        required = default is MISSING
        if default not in (None, [], "") and not required:
            shown = ",".join(map(str, default)) if isinstance(default, list) else default
            text += f"; default {shown}"
        parser.add_argument(_flag(f.name), type=parse, default=None if required else default, required=required,
                            help=text, metavar=f.name.upper())


def from_namespace(cls: type[T], args: argparse.Namespace, **extra: Any) -> T:
    """``cls`` from the parsed options :func:`add_options` made (plus ``extra`` values)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    values.update(extra)
    return from_dict(cls, values)


Device = str
DEVICES = r"auto|cpu|mps|cuda(:\d+)?"  # whether the device is here is checked where it is used
DEVICE_HELP = "choose auto, cpu, cuda, cuda:N or mps"


def device_setting() -> Any:
    """The ``device`` setting every command that runs a network declares."""
    return setting("auto", pattern=DEVICES, help=DEVICE_HELP)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
