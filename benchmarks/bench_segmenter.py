"""The reference segmenter's learning curve: IoU on real held-out tiles against training
steps, network width and the share of the training tiles it sees.

Each run trains :mod:`satgan.segmentation.training`'s network from scratch on a subset of DATA's train
split (the first ``fraction`` of a seeded permutation, as segbench draws it) with the
default settings except those varied, and scores it on DATA's ``val`` split (or every tile
of ``--test``), pooled over pixels. One JSON line per run (appended to ``--json``), then a
markdown table: the budget for ``satgan segmenter`` and segbench was chosen from it
(docs/RESULTS.md, "Judges").

    python benchmarks/bench_segmenter.py DATA [--steps 300,600,1200] [--widths 16,24]
        [--fractions 0.1,1] [--seeds 0] [--batch-size 16] [--lr 3e-3] [--json OUT.jsonl] [--test DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from satgan.config import SegmenterConfig
from satgan.data.subset import subset
from satgan.segmentation.training import build, fit, load_tiles, score


def _numbers(text: str, kind=float) -> list:
    return [kind(v) for v in text.split(",") if v]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--steps", default="300,600,1200")
    ap.add_argument("--widths", default="16")
    ap.add_argument("--fractions", default="0.1,1")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--jitter", type=float, default=None)
    ap.add_argument("--test", default=None, help="score on every tile of this pretransformed folder instead")
    ap.add_argument("--json", default=None, help="append each run as a JSON line here")
    ap.add_argument("--eval-every", type=int, default=0,
                    help="also score every N steps within a run (under a schedule not yet decayed: a lower bound)")
    args = ap.parse_args()
    base = SegmenterConfig(data=args.data, device="cpu")
    for name in ("batch_size", "lr", "jitter"):
        if getattr(args, name) is not None:
            base = replace(base, **{name: getattr(args, name)})
    train = load_tiles(args.data, "train", "train", base.crop)
    test = load_tiles(args.test, "val", "test", 1) if args.test else load_tiles(args.data, "val", "test", 1)
    device = torch.device("cpu")
    rows = []
    for seed in _numbers(args.seeds, int):
        for width in _numbers(args.widths, int):
            for fraction in _numbers(args.fractions):
                for steps in _numbers(args.steps, int):
                    cfg = replace(base, width=width, steps=steps, seed=seed)
                    chosen = subset(len(train), max(1, round(fraction * len(train))), seed)
                    net = build(cfg).to(device)
                    started, done, curve = time.perf_counter(), [0], []

                    def on_step(net=net, done=done, curve=curve, steps=cfg.steps, started=started):
                        done[0] += 1
                        if args.eval_every and done[0] % args.eval_every == 0 and done[0] < steps:
                            curve.append((done[0], round(score(net, test, device)["iou"], 4),
                                          round(time.perf_counter() - started, 1)))
                            net.train()

                    trained = fit(net, [(train, int(i)) for i in chosen], cfg, seed, device, on_step)
                    seconds = time.perf_counter() - started
                    row = {"width": width, "steps": steps, "batch_size": cfg.batch_size, "lr": cfg.lr,
                           "jitter": cfg.jitter, "fraction": fraction, "tiles": len(chosen), "seed": seed,
                           "seconds": round(seconds, 1), "train_loss": round(trained["train_loss"], 4),
                           "curve": curve,
                           **{k: v for k, v in score(net, test, device).items() if k in ("iou", "f1")}}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    if args.json:
                        with Path(args.json).open("a") as f:
                            f.write(json.dumps(row) + "\n")
    print("\n| width | steps | tiles | seed | IoU | F1 | minutes |\n|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['width']} | {r['steps']} | {r['tiles']} | {r['seed']} | {r['iou']:.3f} | {r['f1']:.3f} | "
              f"{r['seconds'] / 60:.1f} |")


if __name__ == "__main__":
    main()
