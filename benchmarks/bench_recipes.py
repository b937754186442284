"""Quality per CPU-minute of training recipes: each candidate trains on the same data with
the same seed, its checkpoints at several epoch budgets are scored on held-out pairs
(PSNR, SSIM, FID, KID) beside the flat-fill and untrained baselines.

    python benchmarks/bench_recipes.py DATA OUT --epochs 10 --budgets 5,10 \
        --candidate quick= --candidate ema=train.ema=0.999 ...

Results go to OUT/results.json (one row per candidate and budget, with the training
minutes it took) and a table on stdout; ``--plot`` draws quality against minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from satgan.config import EvaluateConfig, make_config
from satgan.evaluation.baselines import FlatFill
from satgan.evaluation.scoring import evaluate_models
from satgan.generation.loading import generator_from_config, load_generator
from satgan.training.trainer import train


def _scoring(out: Path, data: Path, split: str = "val", limit: int | None = None) -> EvaluateConfig:
    return EvaluateConfig(out=str(out / "unused.json"), data=str(data), baselines=["flat"], split=split, limit=limit)


def run_candidate(data: Path, out: Path, name: str, overrides: list[str], preset: str, epochs: int,
                  budgets: list[int], extra: list[str], sharpen: list[float] | None = None,
                  split: str = "val", limit: int | None = None) -> list[dict]:
    """Train candidate ``name`` (resuming a run that is there) and score it at each budget;
    with ``sharpen``, once per unsharp-mask amount (rows named ``NAME+sharpenA``)."""
    run = out / "runs" / name
    cfg = make_config(preset, overrides=[f"train.epochs={epochs}", "train.keep_every=1", "train.val_kid=false",
                                         *extra, *overrides])
    started = time.perf_counter()
    train(data, run, cfg, resume="auto")
    history = json.loads((run / "history.json").read_text())
    print(f"{name}: trained in {(time.perf_counter() - started) / 60:.1f} min", file=sys.stderr)
    rows = []
    for budget in budgets:
        gen = load_generator(run / "checkpoints" / f"epoch_{budget:04d}.pt", "cpu")
        models = {name: gen} if sharpen is None else {f"{name}+sharpen{a:g}": replace(gen, sharpen=a) for a in sharpen}
        report = evaluate_models(models, data, _scoring(out, data, split, limit))
        minutes = sum(h["seconds"] for h in history[:budget]) / 60
        for model in models:
            rows.append({"candidate": model, "overrides": overrides, "epochs": budget, "minutes": round(minutes, 2),
                         **{k: report["models"][model]["overall"].get(k) for k in ("psnr", "ssim", "fid", "kid")}})
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def baselines(data: Path, out: Path, preset: str, split: str = "val", limit: int | None = None) -> list[dict]:
    cfg = make_config(preset)
    models = {"flat": FlatFill.from_split(data, split, limit), "untrained": generator_from_config(cfg, "cpu")}
    report = evaluate_models(models, data, _scoring(out, data, split, limit))
    return [{"candidate": n, "overrides": [], "epochs": 0, "minutes": 0.0,
             **{k: m["overall"].get(k) for k in ("psnr", "ssim", "fid", "kid")}} for n, m in report["models"].items()]


def table(rows: list[dict]) -> str:
    lines = ["| candidate | epochs | train min | PSNR dB | SSIM | FID | KID |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['candidate']} | {r['epochs']} | {r['minutes']:.1f} | {r['psnr']:.2f} | {r['ssim']:.3f} "
                     f"| {r['fid']:.1f} | {r['kid']:.3f} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4), layout="constrained")
    trained = sorted({r["candidate"] for r in rows if r["epochs"]})
    for ax, metric, better in zip(axes, ("kid", "fid", "psnr"), ("lower", "lower", "higher")):
        for name in trained:
            pts = sorted((r["minutes"], r[metric]) for r in rows if r["candidate"] == name)
            ax.plot(*zip(*pts), "o-", label=name)
        for r in rows:
            if not r["epochs"]:
                ax.axhline(r[metric], ls="--", color="grey" if r["candidate"] == "flat" else "black", lw=0.8)
                ax.annotate(r["candidate"], (0, r[metric]), fontsize=7, va="bottom")
        ax.set_xlabel("training minutes (2 CPU cores)")
        ax.set_title(f"{metric.upper()} ({better} is better)")
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--budgets", default="5,10")
    parser.add_argument("--candidate", action="append", default=[], help="NAME=key=value;key=value")
    parser.add_argument("--set", action="append", default=[], help="settings for every candidate")
    parser.add_argument("--plot", default="", help="draw the results to this PNG")
    parser.add_argument("--title", default="")
    parser.add_argument("--sharpen", default="", help="comma-separated model.sharpen amounts to score each "
                                                      "checkpoint with (default: its own)")
    parser.add_argument("--split", default="val", help="the split scored")
    parser.add_argument("--limit", type=int, default=None, help="score only the split's first N tiles")
    args = parser.parse_args()
    sharpen = [float(a) for a in args.sharpen.split(",")] if args.sharpen else None
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.json"
    rows = json.loads(results.read_text()) if results.exists() else []
    if not any(r["epochs"] == 0 for r in rows):
        rows += baselines(data, out, args.preset, args.split, args.limit)
    budgets = [int(b) for b in args.budgets.split(",")]
    for spec in args.candidate:
        name, _, sets = spec.partition("=")
        overrides = [s for s in sets.split(";") if s]
        if any(r["candidate"].partition("+sharpen")[0] == name for r in rows):
            continue  # already measured (the script resumes)
        rows += run_candidate(data, out, name, overrides, args.preset, args.epochs, budgets, args.set, sharpen,
                              args.split, args.limit)
        results.write_text(json.dumps(rows, indent=1))
    results.write_text(json.dumps(rows, indent=1))
    print(table(rows))
    if args.plot:
        plot(rows, Path(args.plot), args.title)


if __name__ == "__main__":
    main()
