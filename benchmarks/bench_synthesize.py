"""Synthesize against generate: what writing a dataset costs beyond generating the images.

The same checkpoint, the same mask folder, the same mode: ``satgan generate`` (an image
and a JPEG preview per mask in seamless mode, a PNG in resize mode) against ``satgan
synthesize`` (an image GeoTIFF, the mask copy brought to the image's size, the mask's and
the checkpoint's SHA-256 and the manifest). Rounds alternate the two into fresh folders;
the overhead is the median over rounds of synthesize's time over generate's, minus one.

    python benchmarks/bench_synthesize.py CKPT MASKS [--mode seamless] [--rounds 5] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from satgan.config import GenerateConfig, SynthesizeConfig
from satgan.data.forge import masks_folder
from satgan.data.sources import mask_files
from satgan.generation.generate import generate
from satgan.generation.loading import load_generator
from satgan.synthetic.synthesize import synthesize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("masks")
    parser.add_argument("--mode", default="seamless", choices=["seamless", "resize"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json")
    args = parser.parse_args()
    gen = load_generator(args.checkpoint, args.device)
    masks = Path(args.masks)
    folder = masks_folder(masks) if masks_folder(masks).is_dir() else masks
    count = len(mask_files(folder))
    times: dict[str, list[float]] = {"generate": [], "synthesize": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name in ("generate", "synthesize") if r % 2 == 0 else ("synthesize", "generate"):
                out = Path(tmp) / name
                shutil.rmtree(out, ignore_errors=True)
                start = time.perf_counter()
                if name == "generate":
                    generate(GenerateConfig(checkpoint=args.checkpoint, input=str(folder), out=str(out),
                                            mode=args.mode, device=args.device), gen)
                else:
                    synthesize(SynthesizeConfig(checkpoint=args.checkpoint, masks=str(masks), out=str(out),
                                                mode=args.mode, device=args.device), gen, progress=False)
                times[name].append(time.perf_counter() - start)
    ratios = [s / g for s, g in zip(times["synthesize"], times["generate"])]
    result = {"masks": count, "mode": args.mode, "rounds": args.rounds,
              "generate_s": round(statistics.median(times["generate"]), 3),
              "synthesize_s": round(statistics.median(times["synthesize"]), 3),
              "overhead": round(statistics.median(ratios) - 1, 4)}
    print(f"{count} masks, {args.mode}: generate {result['generate_s']} s, synthesize {result['synthesize_s']} s "
          f"(medians of {args.rounds}); synthesize's overhead {result['overhead']:+.1%} (median of per-round ratios)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
