"""Does forged data help a segmenter with N real pairs? The whole chain per N, with no leakage.

For each N: ``satgan subset`` keeps N of REAL's train pairs (its val split whole), a
generator is trained on those N pairs and nothing else (``satgan train --preset quick``, or
``--checkpoint N=PATH`` for one already trained on exactly them, checked by the manifest
hash), a folder links the N source masks, and notebook 06 runs forge (rearranged layouts of
those masks) -> synthesize (several variants per mask) -> pretransform -> segbench (every
arm at fraction 1: the segmenter gets the same N real pairs the generator saw). At the end
one markdown table per N, from each N's ``segbench/report.json``, in ``OUT/summary.md``.

    python benchmarks/synthetic_gain.py REAL OUT --n 56,140 [--steps-generator 1000]
        [--seeds 5] [--shares 0.25,0.5,0.75] [--pretrain 0.5] [--filter 1.25]
        [--masks-per-pair 2] [--variants 2] [--checkpoint 560=runs/geo/quick/checkpoints/last.pt]

Run one N per process with OMP_NUM_THREADS=1 to use two cores for two N at once.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

from satgan.checkpoint import load_checkpoint
from satgan.data.arrays import load_manifest
from satgan.data.subset import subset_folder
from satgan.synthetic.report import format_table

REPO = Path(__file__).resolve().parent.parent


def _run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def real_pairs(real: Path, out: Path, n: int, seed: int) -> Path:
    """REAL itself when N is all of its train split, else a subset folder of N pairs."""
    total = load_manifest(real)["splits"]["train"]["count"]
    if n == total:
        return real
    folder = out / "real"
    if (folder / "manifest.json").is_file():
        made = load_manifest(folder).get("subset_of", {})
        if (made.get("content_hash"), made.get("count"), made.get("seed")) != \
                (load_manifest(real)["content_hash"], n, seed):
            sys.exit(f"{folder}: a subset of other data, count or seed; remove it or give another OUT")
    else:
        subset_folder(real, folder, n, seed)
    return folder


def generator(real_n: Path, out: Path, n: int, steps: int, given: str | None) -> Path:
    """A checkpoint trained on ``real_n``'s train split only: ``given`` (checked) or trained here."""
    content_hash = load_manifest(real_n)["content_hash"]
    if given:
        if load_checkpoint(given).manifest_hash != content_hash:
            sys.exit(f"--checkpoint {n}={given}: not trained on {real_n} (manifest hash differs): that would leak")
        return Path(given)
    run = out / "generator"
    last = run / "checkpoints" / "last.pt"
    epochs = max(1, math.ceil(steps / math.ceil(n / 4)))  # quick trains batches of 4
    if last.is_file() and load_checkpoint(last).manifest_hash != content_hash:
        sys.exit(f"{last}: trained on other data than {real_n}; remove {run} or give another OUT")
    if not last.is_file() or load_checkpoint(last).epoch < epochs:
        _run([sys.executable, "-m", "satgan", "train", str(real_n), str(run), "--preset", "quick",
              "--set", f"train.epochs={epochs}", "--set", f"train.val_every={max(1, epochs // 5)}",
              "--set", "train.keep_every=0", "--resume", "auto"])
    return last


def mask_folder(real_n: Path, out: Path) -> Path:
    """The N source masks (links), for forge's rearranged layouts: nothing outside the N pairs."""
    manifest = load_manifest(real_n)
    samples = manifest["splits"]["train"]["samples"]
    if len({s["mask"] for s in samples}) < len(samples):  # grid > 1: a whole mask holds other tiles too
        sys.exit(f"{real_n}: several tiles per source mask; linking whole masks would bring in tiles outside "
                 "the N pairs: use a grid-1 folder")
    source = Path(manifest["settings"]["source"])
    folder = out / "masks"
    folder.mkdir(parents=True, exist_ok=True)
    for sample in manifest["splits"]["train"]["samples"]:
        link = folder / Path(sample["mask"]).name
        if not link.exists():
            link.symlink_to(source / sample["mask"])
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("real")
    ap.add_argument("out")
    ap.add_argument("--n", default="56,140,560")
    ap.add_argument("--subset-seed", type=int, default=0)
    ap.add_argument("--steps-generator", type=int, default=1000, help="generator training steps (about)")
    ap.add_argument("--checkpoint", action="append", default=[], metavar="N=PATH")
    ap.add_argument("--masks-per-pair", type=float, default=2.0, help="forged masks per real pair")
    ap.add_argument("--variants", type=int, default=2)
    ap.add_argument("--size", type=int, default=256, help="forged mask side (at most the source masks')")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=None, help="segbench steps (default: its own)")
    ap.add_argument("--shares", default="0.25,0.5,0.75")
    ap.add_argument("--pretrain", type=float, default=0.5)
    ap.add_argument("--filter", type=float, default=None)
    ap.add_argument("--synthetic-only", action="store_true", help="also segbench's synthetic-only arm")
    args = ap.parse_args()
    real, root = Path(args.real).resolve(), Path(args.out).resolve()
    given = dict(c.split("=", 1) for c in args.checkpoint)
    summary = []
    for n in [int(v) for v in args.n.split(",")]:
        out = root / f"n{n}"
        out.mkdir(parents=True, exist_ok=True)
        real_n = real_pairs(real, out, n, args.subset_seed)
        ckpt = generator(real_n, out, n, args.steps_generator, given.get(str(n)))
        masks = mask_folder(real_n, out)
        params = {"CHECKPOINT": str(ckpt), "REAL_DIR": str(real_n), "SOURCE": str(masks), "METHOD": "rearrange",
                  "OUT_DIR": str(out / "synthetic"), "COUNT": max(1, round(args.masks_per_pair * n)),
                  "SIZE": args.size, "VARIANTS": args.variants, "SEEDS": args.seeds, "FRACTIONS": [1.0],
                  "SHARES": [float(v) for v in args.shares.split(",")], "PRETRAIN": args.pretrain,
                  "FILTER": args.filter, "STEPS": args.steps, "SYNTHETIC_ONLY": args.synthetic_only,
                  "OVERWRITE": True}
        cmd = [sys.executable, "-m", "papermill", "--no-progress-bar", "--log-level", "WARNING",
               str(REPO / "notebooks" / "06_synthesize.ipynb"), str(out / "06_synthesize.ipynb")]
        for key, value in params.items():
            cmd += ["-y", json.dumps({key: value})]
        _run(cmd)
        report = json.loads((out / "synthetic" / "segbench" / "report.json").read_text())
        summary.append(f"## N = {n}\n\n{format_table(report)}\n\n{report['recommendation']}\n\n"
                       f"{report['generator']['sentence']}\n")
    (root / "summary.md").write_text("\n".join(summary))
    print("\n".join(summary))


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    main()
