"""Data pipeline speed: satgan's pretransform and PairDataset against the old project's way.

In one run, on the same synthetic 5000x5000 Inria-layout files (page cache warm):

* decode   - tifffile reads image and mask, nothing else (the floor for any pretransform)
* ours     - ``satgan.data.pretransform`` (uint8 arrays), 1 worker, and 2 workers
* baseline - what the old project did: PIL open + convert RGB + crop + BICUBIC resize to
             286 + ToTensor + Normalize + ``np.save`` of one float32 HWC array per tile,
             for the image and for the mask (as RGB)

at grid 1 and grid 5; then samples/s of ``PairDataset`` against the baseline dataset
(``np.load`` of one float32 ``.npy`` per item, to tensor, crop, flip). Each method runs
in its own process, so its peak memory (max RSS) is its own. Medians of ``--repeats``.

    python benchmarks/bench_data.py [--images 4] [--repeats 3] [--work runs/bench]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZE = 286
CROP = 256


# -- the methods, each run in a child process --------------------------------------------
def _pairs(data: Path) -> list[tuple[Path, Path]]:
    root = data / "AerialImageDataset" / "train"
    return [(p, root / "gt" / p.name) for p in sorted((root / "images").glob("*.tif"))]


def run_decode(data: Path, out: Path, grid: int) -> None:
    import tifffile

    for image, mask in _pairs(data):
        tifffile.imread(image)
        tifffile.imread(mask)


def run_ours(data: Path, out: Path, grid: int, workers: int = 1) -> None:
    from satgan.config import PretransformConfig
    from satgan.data.pretransform import pretransform

    pretransform(PretransformConfig(source=str(data), out=str(out), grid=grid, size=SIZE, workers=workers,
                                    val=["*"]))  # one split holding every file


def run_ours_2workers(data: Path, out: Path, grid: int) -> None:
    run_ours(data, out, grid, workers=2)


def run_baseline(data: Path, out: Path, grid: int) -> None:
    from PIL import Image
    from torchvision import transforms

    to_tensor = transforms.ToTensor()
    normalize = transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    out.mkdir(parents=True, exist_ok=True)
    for image_path, mask_path in _pairs(data):
        image = Image.open(image_path).convert("RGB")
        mask = Image.open(mask_path).convert("RGB")
        w, h = image.size
        tw, th = w // grid, h // grid
        for r in range(grid):
            for c in range(grid):
                box = (c * tw, r * th, (c + 1) * tw, (r + 1) * th)
                for kind, img in (("image", image), ("mask", mask)):
                    tile = img.crop(box).resize((SIZE, SIZE), Image.BICUBIC)
                    arr = normalize(to_tensor(tile)).permute(1, 2, 0).numpy()
                    np.save(out / f"{kind}_{image_path.stem}_{r}_{c}.npy", arr)


def evict(folder: Path) -> None:
    """Drop the folder's files from the page cache, so the next reads come from disk."""
    import os

    for path in folder.rglob("*.npy"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _order(count: int, n: int) -> np.ndarray:
    """n random indices; n = 0 means each item once, in random order, from a cold cache."""
    rng = np.random.default_rng(0)
    return rng.permutation(count) if n == 0 else rng.integers(0, count, n)


def run_dataset_ours(arrays: Path, n: int) -> float:
    from satgan.config import DataConfig
    from satgan.data.dataset import PairDataset

    ds = PairDataset(arrays, "val", DataConfig(crop=CROP))
    order = _order(len(ds), n)
    if n == 0:
        evict(arrays)
    start = time.perf_counter()
    for i in order:
        ds[int(i)]
    return len(order) / (time.perf_counter() - start)


def run_dataset_baseline(tiles: Path, n: int) -> float:
    import torch

    stems = sorted(p.name[len("image_"):] for p in tiles.glob("image_*.npy"))
    rng = np.random.default_rng(1)
    order = _order(len(stems), n)
    if n == 0:
        evict(tiles)
    start = time.perf_counter()
    for i in order:
        image = torch.from_numpy(np.load(tiles / f"image_{stems[i]}")).permute(2, 0, 1)
        mask = torch.from_numpy(np.load(tiles / f"mask_{stems[i]}")).permute(2, 0, 1)
        y, x = rng.integers(0, SIZE - CROP + 1, 2)
        image, mask = image[:, y : y + CROP, x : x + CROP], mask[:, y : y + CROP, x : x + CROP]
        if rng.random() < 0.5:
            image, mask = image.flip(2), mask.flip(2)
    return len(order) / (time.perf_counter() - start)


def run_imports(data: Path, out: Path, grid: int) -> None:
    pass  # the child imported satgan.data.pretransform already: its memory is the floor


METHODS = {
    "imports": run_imports,
    "decode": run_decode,
    "ours": run_ours,
    "ours_2workers": run_ours_2workers,
    "baseline": run_baseline,
}


def child(args: argparse.Namespace) -> None:
    """One measurement in this process: print seconds (or samples/s) and peak RSS as JSON."""
    if args.child in METHODS:
        # Imports are a one-off per process, not per-file work: load what the method uses
        # before timing (so peak memory is also each method's own).
        import tifffile  # noqa: F401

        if args.child.startswith("ours") or args.child == "imports":
            import satgan.data.pretransform  # noqa: F401
        elif args.child == "baseline":
            import torchvision  # noqa: F401

        start = time.perf_counter()
        METHODS[args.child](Path(args.data), Path(args.out), args.grid)
        value = time.perf_counter() - start
    elif args.child == "dataset_ours":
        value = run_dataset_ours(Path(args.out), args.samples)
    else:
        value = run_dataset_baseline(Path(args.out), args.samples)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"value": value, "peak_mib": max(peak, children)}))


def measure(method: str, data: Path, out: Path, grid: int, samples: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--child", method, "--data", str(data), "--out", str(out),
           "--grid", str(grid), "--samples", str(samples)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{method} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.suffix == ".npy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="5000x5000 pairs (one per city)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=3000, help="dataset samples per measurement")
    parser.add_argument("--work", default="runs/bench")
    parser.add_argument("--child")
    parser.add_argument("--data")
    parser.add_argument("--out")
    parser.add_argument("--grid", type=int, default=1)
    args = parser.parse_args()
    if args.child:
        return child(args)

    from satgan.config import SynthConfig
    from satgan.data.synthetic import synthesize_inria

    work = Path(args.work)
    data = work / f"inria-{args.images}x5000"
    cities = ["austin", "chicago", "vienna", "tyrol-w", "kitsap"][: args.images]
    if not (data / "AerialImageDataset" / "train" / "gt" / f"{cities[-1]}1.tif").exists():
        synthesize_inria(SynthConfig(out=str(data), cities=cities, per_city=1, test_per_city=0, size=5000,
                                     workers=2))
    measure("decode", data, work / "none", 1)  # warm the page cache

    # Rounds: every method once per round, so each round's ratios compare runs made
    # moments apart on this shared machine; report medians over the rounds.
    methods = ("decode", "ours", "ours_2workers", "baseline")
    rounds: dict = {(m, g): [] for m in methods for g in (1, 5)}
    for _ in range(args.repeats):
        for grid in (1, 5):
            for method in methods:
                out = work / f"out-{method}-g{grid}"
                shutil.rmtree(out, ignore_errors=True)
                rounds[(method, grid)].append(measure(method, data, out, grid))
    results: dict = {}
    for (method, grid), runs in rounds.items():
        results[(method, grid)] = {
            "seconds": statistics.median(r["value"] for r in runs),
            "vs_baseline": statistics.median(b["value"] / r["value"] for r, b in zip(runs, rounds[("baseline", grid)])),
            "vs_decode": statistics.median(r["value"] / d["value"] for r, d in zip(runs, rounds[("decode", grid)])),
            "peak_mib": max(r["peak_mib"] for r in runs),
            "bytes": folder_bytes(work / f"out-{method}-g{grid}") if method != "decode" else 0,
        }
    imports = measure("imports", data, work / "none", 1)["peak_mib"]

    dataset: dict = {}
    for _ in range(args.repeats):
        for cache, samples in (("warm", args.samples), ("cold", 0)):
            for method, out in (("dataset_ours", work / "out-ours-g5"), ("dataset_baseline", work / "out-baseline-g5")):
                dataset.setdefault((method, cache), []).append(measure(method, data, out, 5, samples)["value"])

    n = args.images
    print(f"\n{n} synthetic 5000x5000 Inria pairs, {args.repeats} repeats, medians; "
          f"tiles resized to {SIZE}\n")
    print("| grid | method | seconds | per pair | speed vs baseline | time vs decode | output | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for grid in (1, 5):
        for method in methods:
            r = results[(method, grid)]
            size = f"{r['bytes'] / 2**20:.1f} MiB" if r["bytes"] else "-"
            print(f"| {grid} | {method} | {r['seconds']:.2f} | {r['seconds'] / n:.3f} s "
                  f"| {r['vs_baseline']:.1f}x | {r['vs_decode']:.2f}x | {size} | {r['peak_mib']:.0f} MiB |")
        ratio = results[("baseline", grid)]["bytes"] / results[("ours", grid)]["bytes"]
        print(f"| {grid} | output size, baseline / ours | | | | | {ratio:.1f}x | |")
    print(f"\n(Peak RSS of a process that only imports satgan.data.pretransform, torch included: {imports:.0f} MiB.)")

    print(f"\n| dataset (grid-5 tiles, {CROP} crops, one process) | PairDataset | baseline | ratio |")
    print("|---|---|---|---|")
    for cache, what in (("warm", f"{args.samples} random samples, page cache warm"),
                        ("cold", "each tile once, page cache dropped first")):
        ours, base = dataset[("dataset_ours", cache)], dataset[("dataset_baseline", cache)]
        ratio = statistics.median(o / b for o, b in zip(ours, base))
        print(f"| {what} | {statistics.median(ours):.0f} samples/s | {statistics.median(base):.0f} samples/s "
              f"| {ratio:.1f}x |")


if __name__ == "__main__":
    main()
