"""City conditioning and style codes, measured: per-city realism, and how different the
generations of one mask are.

    python benchmarks/bench_styles.py DATA --checkpoint plain=CKPT --checkpoint city=CKPT ...
        [--samples 4] [--limit N] [--json OUT.json]

For each checkpoint, on DATA's val split (each tile drawn as its own city):
- PSNR, SSIM, FID and KID per city and overall, deterministic (the average style code);
- with a style code or noise (``model.latent``, ``model.noise``): the same scores for
  ``--samples`` draws (seeds 0, 1, ...), averaged, and their diversity: the mean pairwise
  distance between the generations of one mask, in pixels (mean absolute difference,
  images in [0, 1]) and in Inception features;
- the diversity pix2pix's dropout noise gives the same generator (``--samples`` seeds);
- for scale, the real images' own spread: the mean distance between the real images of two
  different tiles of one city, in the same units (what samples that look like the data can
  reach at most, on average: one mask's images vary less than a city's images do).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
from dataclasses import replace
from pathlib import Path

import torch

from satgan import metrics
from satgan.config import EvaluateConfig, model_spec
from satgan.data.arrays import load_split, split_samples
from satgan.evaluation.baselines import DropoutNoise, FlatFill
from satgan.evaluation.scoring import diversity, eval_side, evaluate_models
from satgan.generation.loading import load_generator

SCORES = ("psnr", "ssim", "fid", "kid")


def scores(models: dict, data: Path, limit: int | None) -> dict:
    cfg = EvaluateConfig(out="unused.json", data=str(data), limit=limit, baselines=["flat"])
    report = evaluate_models(models, data, cfg)["models"]
    return {name: {"overall": {k: m["overall"].get(k) for k in SCORES},
                   "cities": {c: {k: v.get(k) for k in SCORES} for c, v in m["cities"].items()}}
            for name, m in report.items()}


def real_spread(data: Path, side: int, inception: metrics.InceptionFeatures, limit: int | None) -> dict:
    """Mean distance between the real val images (centred ``side`` crops, as the models are
    scored) of two different tiles of the same city."""
    images, cities = [], []
    for batch in split_samples(data, "val", side, 16, limit):
        images.append(torch.from_numpy(batch["images"]).permute(0, 3, 1, 2).float() / 255)
        cities += batch["cities"]
    pixels = torch.cat(images)
    feats = metrics.features(inception, pixels)
    pairs = [(i, j) for i, j in itertools.combinations(range(len(cities)), 2) if cities[i] == cities[j]]
    return {"pairs": len(pairs),
            "pixels": statistics.mean(float((pixels[i] - pixels[j]).abs().mean()) for i, j in pairs),
            "inception": statistics.mean(float((feats[i] - feats[j]).norm()) for i, j in pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--checkpoint", action="append", required=True, help="NAME=PATH")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--truncation", type=float, default=1.0,
                        help="style codes scaled by this (1: full variety; 0: the average code, only the "
                             "noise varies)")
    args = parser.parse_args()
    inception = metrics.InceptionFeatures()
    specs = dict(model_spec(s) for s in args.checkpoint)
    gens = {name: replace(load_generator(path, "cpu"), truncation=args.truncation) for name, path in specs.items()}
    results = {"scores": scores({**gens, "flat": FlatFill.from_split(args.data, "val", args.limit)}, args.data,
                                args.limit), "diversity": {},
               "real_spread": real_spread(args.data, eval_side(gens, load_split(args.data, "val")[1]["image_shape"][1]),
                                          inception, args.limit)}
    print(json.dumps({"real_spread": results["real_spread"]}))
    for name, gen in gens.items():
        noisy = load_generator(specs[name], "cpu", dropout=True)
        entry = {"dropout": diversity([DropoutNoise(noisy, k) for k in range(args.samples)], args.data,
                                      limit=args.limit, inception=inception)}
        if gen.latent or gen.noise:  # samples: the code and the noise drawn from seeds 0, 1, ...
            codes = [gen.styled(None, k) for k in range(args.samples)]
            entry["codes"] = diversity(codes, args.data, limit=args.limit, inception=inception)
            sampled = scores({f"{name}-code{k}": c for k, c in enumerate(codes)}, args.data, args.limit)
            entry["code_scores"] = {k: statistics.mean(s["overall"][k] for s in sampled.values())
                                    for k in SCORES}
        results["diversity"][name] = entry
        print(json.dumps({name: entry}))
    print("| model | city | PSNR dB | SSIM | FID | KID |\n|---|---|---|---|---|---|")
    for name, s in results["scores"].items():
        for city, v in [("overall", s["overall"]), *sorted(s["cities"].items())]:
            print(f"| {name} | {city} | {v['psnr']:.2f} | {v['ssim']:.3f} | {v['fid']:.1f} | {v['kid']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
