"""Whole-mask generation: seamless mode at one or more overlaps against grid mode.

A 5000x5000 mask: by default a synthetic Inria one; with ``--masks DIR``, real masks
from DIR (e.g. geocompass's 256 px tiles) mosaicked into one scene, as a user's own
region would look. Grid mode cuts it into NxN tiles of 5000/N pixels and generates each
resized to the window (the old project's way); seamless mode generates the same area at
the same pixel scale (5000 / (N * window) mask pixels per output pixel) with a sliding
window. Each measurement runs in a fresh process, so its peak resident memory (VmHWM:
the whole process, torch and the model included) is its own; rounds alternate the
modes, and each overhead is the median of per-round ratios against grid mode.

    python benchmarks/bench_generate.py [--preset satgan | --checkpoint CKPT] [--grids 5,10]
        [--overlaps 0.25,0.5] [--windows 0,128] [--norms shared,window] [--rounds 5] [--masks DIR]
        [--json OUT.json] [--device cpu] [--city NAME] [--style-seed N]

Beside the time, what the output looks like: edge sharpness (the outermost rows and
columns' gradient over the median: a frame) of every output, the seamless scene's shift
consistency (PSNR between two generations with the windows offset by half a stride: a
lattice), and the steps at the edge of a constant (empty) mask's scene in grey levels (a
frame with nothing else to hide behind). These mean something only for a trained
``--checkpoint``.
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


def _generator(args):
    from satgan.config import preset
    from satgan.generation.loading import generator_from_config, load_generator

    if args.checkpoint:  # a conditioned model draws one city (and style code) over the whole scene
        return load_generator(args.checkpoint, args.device).styled(args.city, args.style_seed)
    return generator_from_config(preset(args.preset), args.device)


def measure(args, mask_path: str, mode: str, grid: int, overlap: float, window: int | None,
            shared_norm: bool = True) -> dict:
    """One generation in this process (mode ``grid`` or ``seamless``): seconds, peak RSS
    (MiB) and the output's edge sharpness; mode ``looks``: the seamless scene's shift
    consistency and a constant mask's edge steps, untimed."""
    import torch

    from satgan.generation.consistency import shift_consistency
    from satgan.generation.modes import generate_grid, generate_seamless
    from satgan.metrics import edge_sharpness

    torch.set_grad_enabled(False)
    gen = _generator(args)
    mask = np.load(mask_path)
    scale = SIZE / (grid * gen.window)
    if mode == "looks":
        blank = generate_seamless(gen, np.zeros((SIZE // 2, SIZE // 2), bool), scale, overlap,
                                  window=window, shared_norm=shared_norm).astype(np.float32)
        steps = np.abs(np.diff(blank, axis=1)).mean(axis=(0, 2))
        consistency = shift_consistency(gen, mask, scale, overlap, batch_size=8, window=window,
                                        shared_norm=shared_norm)
        return {"shift_consistency_db": consistency,
                "blank_edge_step": float(steps[[0, -1]].mean()), "blank_inside_step": float(np.median(steps))}
    gen(np.zeros((1, gen.window, gen.window), np.uint8))  # warm-up outside the timing
    before = _memory_mib("VmRSS")
    start = time.perf_counter()
    if mode == "grid":
        _, image = generate_grid(gen, mask, grid, batch_size=8)
    else:
        image = generate_seamless(gen, mask, scale=scale, overlap=overlap, batch_size=8, window=window,
                                  shared_norm=shared_norm)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mib": _memory_mib("VmHWM"), "before_mib": before,
            "output": list(image.shape), "edge_sharpness": edge_sharpness(image)}


def scene_mask(masks: str) -> np.ndarray:
    """The 5000x5000 benchmark mask: real masks from ``masks`` mosaicked, or a synthetic one."""
    if masks:
        from satgan.data.readers import read_mask
        from satgan.data.tiling import mosaic

        files = sorted(p for p in Path(masks).iterdir() if p.is_file())
        first = read_mask(files[0])
        need = -(-SIZE // first.shape[0]) * -(-SIZE // first.shape[1])
        return mosaic([read_mask(f) for f in files[:need]], SIZE)
    from satgan.data.synthetic import render_scene

    return render_scene("chicago", SIZE, seed=0, index=1)[1] > 0


def _child(args, mask_path: str, mode: str, grid: int, overlap: float, window: int, norm: str = "shared") -> dict:
    cmd = [sys.executable, __file__, "--preset", args.preset, "--device", args.device, "--checkpoint",
           args.checkpoint, "--child", mask_path, mode, str(grid), str(overlap), str(window), norm]
    cmd += ["--city", args.city] if args.city else []
    cmd += ["--style-seed", str(args.style_seed)] if args.style_seed is not None else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="satgan")
    parser.add_argument("--checkpoint", default="", help="a trained checkpoint (default: the preset, untrained)")
    parser.add_argument("--grids", default="5,10", help="comma-separated N of the NxN grids to compare at")
    parser.add_argument("--overlaps", default="0.25", help="comma-separated seamless overlaps to compare")
    parser.add_argument("--windows", default="0", help="comma-separated seamless window sides (0: the default)")
    parser.add_argument("--norms", default="shared", help="comma-separated seamless normalisation statistics: "
                                                           "shared (the default: one set per scene), window")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--masks", default="", help="a folder of mask files to mosaic (default: a synthetic mask)")
    parser.add_argument("--json", default="", help="also write the results here")
    parser.add_argument("--looks-only", action="store_true", help="only the untimed measurements of the output")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--city", default=None, help="a city-conditioned checkpoint: the city of the scene")
    parser.add_argument("--style-seed", type=int, default=None, help="a checkpoint with a style code: its seed")
    parser.add_argument("--child", nargs=6, metavar=("MASK", "MODE", "GRID", "OVERLAP", "WINDOW", "NORM"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mask, mode, grid, overlap, window, norm = args.child
        print(json.dumps(measure(args, mask, mode, int(grid), float(overlap), int(window) or None, norm == "shared")))
        return

    settings = [(float(o), int(w), n) for n in args.norms.split(",") for w in args.windows.split(",")
                for o in args.overlaps.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        mask_path = str(Path(tmp) / "mask.npy")
        mask = scene_mask(args.masks)
        np.save(mask_path, mask)
        print(f"{SIZE}x{SIZE} mask ({args.masks or 'synthetic'}, building fraction {mask.mean():.3f}), "
              f"{args.checkpoint or 'preset ' + args.preset}, device {args.device}, {args.rounds} rounds")
        for grid in (int(g) for g in args.grids.split(",")):
            modes = [("grid", 0.0, 0, "shared")] + [("seamless", o, w, n) for o, w, n in settings]
            runs: dict[tuple, list[dict]] = {m: [] for m in modes}
            if args.looks_only:
                for o, w, n in settings:
                    row = {"grid": grid, "overlap": o, "window": w, "norm": n,
                           **_child(args, mask_path, "looks", grid, o, w, n)}
                    print(json.dumps(row))
                    results.append(row)
                continue
            for r in range(args.rounds):
                for mode in modes if r % 2 == 0 else modes[::-1]:
                    runs[mode].append(_child(args, mask_path, *mode[:1], grid, *mode[1:]))
            grid_runs = runs[modes[0]]
            for mode, measured in runs.items():
                row = {"grid": grid, "mode": mode[0], "overlap": mode[1], "window": mode[2] or "default",
                       "norm": mode[3],
                       "output": measured[0]["output"][:2],
                       "seconds": statistics.median(m["seconds"] for m in measured),
                       "ratio_to_grid": statistics.median(m["seconds"] / g["seconds"]
                                                          for m, g in zip(measured, grid_runs)),
                       "ratios": [m["seconds"] / g["seconds"] for m, g in zip(measured, grid_runs)],
                       "peak_rss_mib": max(m["peak_rss_mib"] for m in measured),
                       "edge_sharpness": measured[0]["edge_sharpness"]}
                if mode[0] == "seamless":
                    row.update(_child(args, mask_path, "looks", grid, *mode[1:]))
                results.append(row)
    if args.looks_only:
        return
    print("| grid N (scale) | mode | output | time s | / grid | peak MiB | edge sharpness | shift consistency "
          "| blank: edge / inside step |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in results:
        scale = SIZE / row["output"][0]
        mode = ("grid" if row["mode"] == "grid" else
                f"seamless, window {row['window']}, overlap {row['overlap']:g}, {row['norm']} statistics")
        shift = f"{row['shift_consistency_db']:.1f} dB" if "shift_consistency_db" in row else "-"
        blank = (f"{row['blank_edge_step']:.2f} / {row['blank_inside_step']:.2f}"
                 if "blank_edge_step" in row else "-")
        print(f"| {row['grid']} ({scale:.2f}) | {mode} | {row['output'][0]}x{row['output'][1]} | "
              f"{row['seconds']:.2f} | {row['ratio_to_grid']:.2f}x ({', '.join(f'{x:.2f}' for x in row['ratios'])}) "
              f"| {row['peak_rss_mib']:.0f} | {row['edge_sharpness']:.2f}x | {shift} | {blank} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
