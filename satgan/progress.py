"""Progress for long work: a bar where a person watches, plain lines where a file listens.

A terminal gets tqdm's bar and a notebook its widget (tqdm.auto). Anywhere else (a batch
log, ``satgan train ... > log 2>&1``, a pipe) the same calls print one plain line at most
every ``SATGAN_PROGRESS_EVERY`` seconds (10 by default) and one when the work ends: no
carriage returns, and a number of lines bounded by the run's length, not by its steps.
Training's TensorBoard log (:class:`EventLog`) is another listener: one that a full disk
silences with one warning, never with a traceback.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from satgan import SatganWarning


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (notebook, Colab, papermill), where tqdm draws a widget."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:  # noqa: BLE001 - an odd IPython is no reason to fail the work
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def interactive(stream: TextIO | None = None) -> bool:
    """Whether progress should be drawn as a live bar: a notebook kernel or a terminal."""
    stream = sys.stderr if stream is None else stream
    return _in_notebook() or bool(getattr(stream, "isatty", lambda: False)())


def _every_s() -> float:
    raw = os.environ.get("SATGAN_PROGRESS_EVERY", "10")
    try:
        return max(float(raw), 0.0)
    except ValueError:
        return 10.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60:02d}:{seconds % 60:02d}"


class PlainProgress:
    """tqdm's interface (iterate, ``update``, ``set_postfix``, ``close``, ``with``) as log lines."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0, disable: bool = False, stream: TextIO | None = None,
                 every_s: float | None = None, **_ignored: Any) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.desc, self.unit, self.n, self.disable = total, desc, unit, initial, disable
        self.stream = stream
        self.every_s = _every_s() if every_s is None else every_s
        self.postfix = ""
        self.start = self.last = time.monotonic()
        self.initial = initial
        self.closed = False

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        except BaseException:
            self.close(stopped=True)
            raise
        self.close()

    def __len__(self) -> int:
        return self.total or 0

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(stopped=exc_type is not None)

    def set_postfix(self, values: dict | None = None, refresh: bool = True, **kw: Any) -> None:
        values = {**(values or {}), **kw}
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        self.postfix = text

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self._line()

    def refresh(self) -> None:
        """Nothing to redraw: lines are printed as the work advances."""

    def close(self, stopped: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self._line(end="stopped" if stopped else "done")

    def _line(self, end: str = "") -> None:
        if self.disable:
            return
        elapsed = time.monotonic() - self.start
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else 0.0
        timing = f"{_duration(elapsed)}, {rate:.2f} {self.unit}/s"
        if not end and self.total and rate > 0:
            timing += f", ~{_duration((self.total - self.n) / rate)} left"
        head = f"{self.desc}: " if self.desc else ""
        tail = f" [{self.postfix}]" if self.postfix else ""
        stream = self.stream or sys.stderr
        print(f"{head}{count} {self.unit}{pct} in {timing}{tail}{' ' + end if end else ''}", file=stream, flush=True)


def progress_bar(iterable: Iterable | None = None, **kwargs: Any):
    """A progress bar over ``iterable`` (or driven by ``update``), tqdm's keywords: a bar in a
    terminal or notebook, :class:`PlainProgress` lines in a log."""
    if kwargs.get("disable"):
        return PlainProgress(iterable, **kwargs)
    if interactive(kwargs.get("stream")):
        from tqdm.auto import tqdm

        kwargs.pop("every_s", None)
        return tqdm(iterable, **{("file" if k == "stream" else k): v for k, v in kwargs.items()})
    return PlainProgress(iterable, **kwargs)


def process_pool(workers: int, initializer=None):
    """A pool of ``workers`` processes for file-bound work.

    ``fork`` where the platform has it: workers start at once and scripts without an
    ``if __name__ == "__main__"`` guard still work; ``spawn`` elsewhere.
    """
    import multiprocessing

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method).Pool(workers, initializer=initializer)


class EventLog:
    """TensorBoard's ``SummaryWriter`` in ``folder``, where a failed write (a full disk, a
    read-only folder) is one :class:`SatganWarning` naming the folder, after which the log
    stops and the work goes on: ``add_scalar``, ``add_image`` (any ``add_*``), ``flush`` and
    ``close`` never raise an :class:`OSError`, and the writer's thread prints no traceback
    (its failure reaches this object at the next call, which warns)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.writer = None
        self.failed: OSError | None = None
        _quiet_event_writer_threads()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not os.access(self.folder, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "not writable", str(self.folder))
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.folder))
        except OSError as exc:
            self._stop(exc)

    def __getattr__(self, name: str):
        if not (name.startswith("add_") or name == "flush"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> None:
            if self.writer is None:
                return
            try:
                getattr(self.writer, name)(*args, **kwargs)
            except OSError as exc:
                self._stop(exc)

        return call

    def close(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            try:
                writer.close()
            except OSError as exc:
                self._stop(exc)

    def _stop(self, exc: OSError) -> None:
        """Warn once, naming the folder, and write nothing more."""
        writer, self.writer = self.writer, None
        if writer is not None:
            try:
                writer.close()
            except OSError:
                pass  # the same failure again: said once below
        if self.failed is None:
            self.failed = exc
            reason = exc.strerror or type(exc).__name__
            warnings.warn(f"TensorBoard log stopped: {self.folder} cannot be written ({reason}); the work goes on "
                          "without it", SatganWarning, stacklevel=3)


_quiet_hook_installed = False


def _quiet_event_writer_threads() -> None:
    """TensorBoard writes events from a thread of its own and keeps a failure there to raise
    at the next call (which :class:`EventLog` turns into one warning), but Python also prints
    that thread's traceback. This silences only that: an :class:`OSError` ending one of
    tensorboard's writer threads; every other thread's failure is printed as before."""
    global _quiet_hook_installed
    if _quiet_hook_installed:
        return
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        thread = type(args.thread)
        if thread.__module__.startswith("tensorboard") and thread.__name__ == "_AsyncWriterThread" \
                and issubclass(args.exc_type, OSError):
            return
        previous(args)

    threading.excepthook = hook
    _quiet_hook_installed = True
