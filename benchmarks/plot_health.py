"""The discriminator's health over training runs, side by side: its accuracy on real and on
generated pairs per epoch (from each run's history.json), and, for runs that predate the
accuracy log, its losses against ln 2 (a discriminator at chance).

    python benchmarks/plot_health.py RUN_DIR ... --out FIG.png
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(11, 3.6), layout="constrained")
    for i, run in enumerate(args.runs):
        history = json.loads((Path(run) / "history.json").read_text())
        epochs = [h["epoch"] for h in history]
        name = Path(run).name
        if "D_acc_real" in history[0]:
            acc.plot(epochs, [h["D_acc_real"] for h in history], "-", color=f"C{i}", label=f"{name}: real called real")
            acc.plot(epochs, [h["D_acc_fake"] for h in history], "--", color=f"C{i}",
                     label=f"{name}: generated called fake")
        loss.plot(epochs, [h["D_real"] for h in history], "-", color=f"C{i}", label=f"{name}: D_real")
        loss.plot(epochs, [h["D_fake"] for h in history], "--", color=f"C{i}", label=f"{name}: D_fake")
    acc.axhline(0.5, color="grey", lw=0.8, ls=":")
    acc.set_ylim(0, 1.02)
    acc.set_title("discriminator accuracy per epoch (0.5: chance)")
    loss.axhline(math.log(2), color="grey", lw=0.8, ls=":", label="ln 2 (vanilla loss at chance)")
    loss.set_yscale("log")
    loss.set_title("discriminator losses per epoch")
    for ax in (acc, loss):
        ax.set_xlabel("epoch")
        ax.legend(fontsize=6)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
