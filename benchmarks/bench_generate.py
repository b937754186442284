"""Whole-mask generation: seamless mode (25% overlap, Hann blending) against grid mode.

A 5000x5000 synthetic Inria mask. Grid mode cuts it into NxN tiles of 5000/N pixels and
generates each resized to the window (the old project's way); seamless mode generates
the same area at the same pixel scale (5000 / (N * window) mask pixels per output pixel)
with a sliding window. Each measurement runs in a fresh process, so its peak resident
memory (VmHWM: the whole process, torch and the model included) is its own; rounds
alternate the two modes, and the reported overhead is the median of per-round ratios.

    python benchmarks/bench_generate.py [--preset satgan] [--grids 5,10] [--rounds 3] [--device cpu]
        [--checkpoint CKPT] [--overlap 0.25]

Beside the time, what the output looks like: edge sharpness (the outermost rows and
columns' gradient over the median: a frame) of both outputs, and the seamless scene's
shift consistency (PSNR between two generations with the windows offset by half a
stride: a lattice). These mean something only for a trained ``--checkpoint``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZE = 5000


def _memory_mib(field: str) -> float:
    """VmRSS or VmHWM (peak) of this process from /proc, in MiB. (ru_maxrss would carry
    the parent's peak across fork and exec.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(mask_path: str, mode: str, grid: int, preset_name: str, device: str, overlap: float,
            checkpoint: str) -> dict:
    """One generation in this process: seconds and peak RSS (MiB) beyond the imports; the
    output's edge sharpness; in mode ``shift``, the seamless scene's shift consistency."""
    import torch

    from satgan.inference import generate_grid, generate_seamless, generator_from_config, load_generator
    from satgan.metrics import edge_sharpness
    from satgan.presets import preset

    torch.set_grad_enabled(False)
    gen = load_generator(checkpoint, device) if checkpoint else generator_from_config(preset(preset_name), device)
    if mode == "shift":
        from satgan.inference import shift_consistency

        mask = np.load(mask_path)
        scale = SIZE / (grid * gen.window)
        return {"shift_consistency_db": shift_consistency(gen, mask, scale, overlap, batch_size=8)}
    mask = np.load(mask_path)
    gen(np.zeros((1, gen.window, gen.window), np.uint8))  # warm-up outside the timing
    before = _memory_mib("VmRSS")
    start = time.perf_counter()
    if mode == "grid":
        _, image = generate_grid(gen, mask, grid, batch_size=8)
    else:
        image = generate_seamless(gen, mask, scale=SIZE / (grid * gen.window), overlap=overlap, batch_size=8)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = _memory_mib("VmHWM")
    return {"seconds": seconds, "peak_rss_mib": peak, "before_mib": before, "output": list(image.shape),
            "edge_sharpness": edge_sharpness(image)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="satgan")
    parser.add_argument("--grids", default="5,10", help="comma-separated N of the NxN grids to compare at")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", default="", help="a trained checkpoint (default: the preset, untrained)")
    parser.add_argument("--child", nargs=3, metavar=("MASK", "MODE", "GRID"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mask, mode, grid = args.child
        print(json.dumps(measure(mask, mode, int(grid), args.preset, args.device, args.overlap, args.checkpoint)))
        return

    from satgan.data.synthetic import render_scene
    from satgan.inference import window_starts

    with tempfile.TemporaryDirectory() as tmp:
        mask_path = str(Path(tmp) / "mask.npy")
        np.save(mask_path, render_scene("chicago", SIZE, seed=0, index=1)[1] > 0)
        print(f"{SIZE}x{SIZE} mask, preset {args.preset}, device {args.device}, overlap {args.overlap:.0%}")
        for grid in (int(g) for g in args.grids.split(",")):
            runs: dict[str, list[dict]] = {"grid": [], "seamless": []}
            for r in range(args.rounds):
                order = ("grid", "seamless") if r % 2 == 0 else ("seamless", "grid")
                for mode in order:
                    cmd = [sys.executable, __file__, "--preset", args.preset, "--device", args.device,
                           "--overlap", str(args.overlap), "--checkpoint", args.checkpoint,
                           "--child", mask_path, mode, str(grid)]
                    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                    runs[mode].append(json.loads(out.strip().splitlines()[-1]))
            ratios = [s["seconds"] / g["seconds"] for g, s in zip(runs["grid"], runs["seamless"])]
            side = runs["seamless"][0]["output"][0]
            windows = len(window_starts(side, 256 if args.preset != "quick" else 128, args.overlap)) ** 2
            print(f"grid {grid}x{grid} ({grid * grid} windows) vs seamless ({windows} windows), "
                  f"output {runs['seamless'][0]['output'][:2]}:")
            for mode, results in runs.items():
                print(f"  {mode:8s} median {statistics.median(r['seconds'] for r in results):7.2f} s, "
                      f"peak RSS {max(r['peak_rss_mib'] for r in results):6.0f} MiB "
                      f"(imports and model {max(r['before_mib'] for r in results):.0f} MiB)")
            print(f"  seamless / grid time: median {statistics.median(ratios):.2f}x "
                  f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")
            cmd = [sys.executable, __file__, "--preset", args.preset, "--device", args.device, "--overlap",
                   str(args.overlap), "--checkpoint", args.checkpoint, "--child", mask_path, "shift", str(grid)]
            shift = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split("\n")[-2])
            print(f"  edge sharpness: grid {runs['grid'][0]['edge_sharpness']:.2f}x, seamless "
                  f"{runs['seamless'][0]['edge_sharpness']:.2f}x the median; seamless shift consistency "
                  f"{shift['shift_consistency_db']:.1f} dB")


if __name__ == "__main__":
    main()
