"""Where and how tensors run: device choice, mixed precision, seeding and the process
group under ``torchrun``. Used by training and by inference alike."""

from __future__ import annotations

import errno
import os
import random
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from satgan import SatganError
from satgan.atomic import atomic_path
from satgan.settings import DEVICE_HELP, DEVICES

# what torch's file writer says when writing fails: it raises RuntimeError and loses errno
TORCH_WRITE_FAILED = ("PytorchStreamWriter failed", "unexpected pos", "file write failed", "cannot be opened",
                      "Parent directory")
NEARLY_FULL = 64 << 20  # bytes: a write that failed with less free space than this ran out of it


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else CPU. A device that is not here is an error."""
    if not isinstance(name, str) or not re.fullmatch(DEVICES, name):
        raise SatganError(f"device={name!r}: {DEVICE_HELP}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SatganError(f"device={name} but no CUDA GPU is available here; use device=auto or cpu")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise SatganError(f"device={name} but this machine has {torch.cuda.device_count()} GPU(s)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise SatganError("device=mps but Apple's MPS is not available here; use device=auto or cpu")
    return torch.device(name)


def save_torch(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (temporary name, then rename: a failed write
    leaves the earlier file as it was), with every failed write an :class:`OSError` whose
    ``filename`` is ``path``: torch reports a full disk as a ``RuntimeError`` without errno,
    which ``except OSError`` misses. ``ENOSPC`` when the disk holds less than 64 MiB after the
    failure, else ``EIO``; torch's own words stay in ``strerror``."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            try:
                torch.save(obj, tmp)
            except RuntimeError as exc:
                text = str(exc)
                if not any(words in text for words in TORCH_WRITE_FAILED):
                    raise
                code = errno.ENOENT if "Parent directory" in text else _write_errno(path)
                raise OSError(code, f"{os.strerror(code)} (torch: {text.splitlines()[0][:200]})", str(path)) \
                    from exc
    except OSError as exc:  # named by the file asked for, not the temporary one
        if exc.filename == str(path) and exc.filename2 is None:
            raise
        raise OSError(exc.errno or errno.EIO, exc.strerror or str(exc), str(path)) from exc
    return path


def _write_errno(path: Path) -> int:
    """``ENOSPC`` when the file system of ``path`` is (nearly) full, else ``EIO``."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return errno.EIO
    return errno.ENOSPC if free < NEARLY_FULL else errno.EIO


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full precision (always on CPU)."""
    if mode not in ("auto", "bf16", "fp16", "off"):
        raise SatganError(f"unknown amp {mode!r}; choose from auto, bf16, fp16, off")
    if device.type != "cuda" or mode == "off":
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if mode == "bf16" else torch.float16


def seed_all(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def use_deterministic_kernels() -> None:
    """Deterministic algorithms everywhere (exact resume), at some cost in speed."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=False)
    torch.backends.cudnn.benchmark = False


@dataclass
class Processes:
    """This process's place among those ``torchrun`` started (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls, device: str) -> Processes:
        """Join the process group torchrun describes (``WORLD_SIZE`` > 1), else a single process."""
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() and device != "cpu" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))

    def device(self, name: str) -> torch.device:
        """The device of this process: ``name`` resolved, one GPU per local rank under torchrun."""
        device = resolve_device(name)
        if device.type == "cuda" and self.distributed:
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        return device

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (fills a cache), the other ranks after it (read it)."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def all_true(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` holds on every process (all must take the same branch, or they hang)."""
        if not self.distributed:
            return flag
        t = torch.tensor(float(flag), device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t)

    def average_gradients(self, net: torch.nn.Module) -> None:
        """Average ``net``'s gradients over processes (what DDP does, for a network used twice per step)."""
        if not self.distributed:
            return
        for p in net.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= self.world

    def gather(self, obj: object) -> list:
        """``obj`` of every process, in rank order (a one-item list for one process)."""
        if not self.distributed:
            return [obj]
        out: list = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def stop(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def bare(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` without its torch.compile and DDP wrappers (whose state_dict keys differ)."""
    net = getattr(net, "_orig_mod", net)  # torch.compile
    return getattr(net, "module", net)  # DDP


def wrapped(net: torch.nn.Module, procs: Processes, device: torch.device, *, sync_batch_norm: bool, ddp: bool,
            compile: bool) -> torch.nn.Module:
    """``net`` with synchronized batch norm (on GPUs) and under DDP, where several processes
    run and these are asked for, then compiled if asked."""
    if procs.distributed and sync_batch_norm and device.type == "cuda":
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    if procs.distributed and ddp:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(net) if compile else net
