"""Buildings a segmenter finds: candidate recipes scored for realism (FID, KID) and alignment
(mask IoU by two judges that never took part in training) against the flat fill, the
untrained generator and the real images.

    python benchmarks/bench_alignment.py DATA OUT --epochs 20 --seeds 0,1,2 \
        --judge runs/seg-unet.pt --judge-2 runs/seg-dilated.pt \
        --candidate quick= --candidate aligned=loss.seg_weight=1 \
        --candidate joint=model.discriminator=projected_seg

Each candidate trains with the ``quick`` preset and its overrides (``;``-separated), one run
per seed (resumed where it is there), and is scored at the end with both judges. Rows go to
OUT/results.json and a markdown table on stdout with each score as a fraction of the real
images' (mask IoU) or of the flat fill's (KID), the median over seeds and the worst seed,
the seconds per epoch, the discriminator's lowest accuracy over the epochs, and how far
apart three noise draws of the same masks are (mean absolute pixel difference, [0, 1]).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from satgan.atomic import write_json
from satgan.config import EvaluateConfig, make_config
from satgan.evaluation.report import evaluate
from satgan.evaluation.scoring import diversity
from satgan.generation.loading import load_generator
from satgan.training.trainer import train


def run(data: Path, out: Path, name: str, overrides: list[str], seed: int, epochs: int) -> Path:
    run_dir = out / "runs" / f"{name}-s{seed}"
    cfg = make_config("quick", overrides=[f"train.epochs={epochs}", f"train.seed={seed}", "train.val_kid=false",
                                          *overrides])
    started = time.perf_counter()
    train(data, run_dir, cfg, resume="auto")
    print(f"{name} seed {seed}: {(time.perf_counter() - started) / 60:.1f} min", file=sys.stderr)
    return run_dir


def health(run_dir: Path) -> dict:
    history = json.loads((run_dir / "history.json").read_text())
    real = [h.get("D_acc_real") for h in history if h.get("D_acc_real") is not None]
    fake = [h.get("D_acc_fake") for h in history if h.get("D_acc_fake") is not None]
    return {"seconds_per_epoch": statistics.median(h["seconds"] for h in history),
            "d_acc_real_min": min(real, default=None), "d_acc_fake_min": min(fake, default=None)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--candidate", action="append", required=True, help="NAME=OVERRIDE;OVERRIDE...")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--judge", required=True, help="the reference segmenter (.pt), the first judge")
    ap.add_argument("--judge-2", required=True, help="the second judge (.pt)")
    args = ap.parse_args()
    results = args.out / "results.json"
    rows = json.loads(results.read_text()) if results.exists() else []
    done = {(r["candidate"], r["seed"]) for r in rows}
    for spec in args.candidate:
        name, _, overrides = spec.partition("=")
        for seed in (int(s) for s in args.seeds.split(",")):
            if (name, seed) in done:
                continue
            run_dir = run(args.data, args.out, name, [o for o in overrides.split(";") if o], seed, args.epochs)
            report = evaluate(EvaluateConfig(
                out=str(args.out / "reports" / f"{name}-s{seed}.json"), overwrite=True,
                checkpoints=[f"{name}={run_dir / 'checkpoints' / 'last.pt'}"], data=str(args.data),
                baselines=["flat", "untrained"], segmenter=args.judge, segmenter_2=args.judge_2))
            m = report["models"]
            gen = load_generator(run_dir / "checkpoints" / "last.pt", "cpu")  # its noise must still vary the images
            spread = diversity([gen.styled(seed=k) for k in range(3)], args.data)["pixels"] if gen.noise else None
            row = {"candidate": name, "overrides": overrides, "seed": seed, "epochs": args.epochs, **health(run_dir),
                   "variants_pixels": spread}
            for model in (name, "flat", "untrained", "real"):
                row[model if model != name else "model"] = {k: m[model]["overall"].get(k) for k in
                                                            ("fid", "kid", "mask_iou", "mask_iou_2", "psnr")}
            rows.append(row)
            write_json(results, rows)
    print(table(rows))


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def table(rows: list[dict]) -> str:
    lines = ["| candidate | seeds | KID / flat (median, worst) | FID - flat | IoU / real, judge 1 (median, worst) | "
             "IoU / real, judge 2 (median, worst) | s / epoch | D acc real, fake (min) | variants apart |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["candidate"] for r in rows):
        mine = [r for r in rows if r["candidate"] == name]
        kid = [_ratio(r["model"]["kid"], r["flat"]["kid"]) for r in mine]
        fid = [r["model"]["fid"] - r["flat"]["fid"] for r in mine if r["model"]["fid"] is not None]
        iou = [[_ratio(r["model"][j], r["real"][j]) for r in mine] for j in ("mask_iou", "mask_iou_2")]

        def cell(values, worst=min, fmt=".2f"):
            values = [v for v in values if v is not None]
            return f"{statistics.median(values):{fmt}} ({worst(values):{fmt}})" if values else "-"

        lines.append(f"| {name} | {len(mine)} | {cell(kid, max)} | {cell(fid, max, '+.0f')} | {cell(iou[0])} | "
                     f"{cell(iou[1])} | {statistics.median(r['seconds_per_epoch'] for r in mine):.0f} | "
                     f"{min(r['d_acc_real_min'] or 0 for r in mine):.2f}, "
                     f"{min(r['d_acc_fake_min'] or 0 for r in mine):.2f} | "
                     f"{cell([r['variants_pixels'] for r in mine], min, '.3f')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
