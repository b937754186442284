"""Forging masks: ``satgan forge --method procedural`` at Inria's 5000x5000 pixels, per city.

Each round forges one mask per city (``forge`` with ``count`` = the number of cities) in
this process, single-threaded (OMP_NUM_THREADS=1: the issue's "one core"), and takes the
time per mask from the report's order: the whole call, masks written as LZW GeoTIFFs and
``forge.json``, divided by the masks. Per city, one call per city per round. Reported:
the median over rounds of seconds per mask, per city and over all.

    OMP_NUM_THREADS=1 python benchmarks/bench_forge.py [--size 5000] [--rounds 5] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from satgan.config import INRIA_CITIES, ForgeConfig
from satgan.data.forge import forge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {c: [] for c in INRIA_CITIES}
    fractions: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for city in INRIA_CITIES:
                out = Path(tmp) / f"{city}-{r}"
                start = time.perf_counter()
                report = forge(ForgeConfig(source=city, out=str(out), count=1, size=args.size, seed=r), progress=False)
                seconds[city].append(time.perf_counter() - start)
                fractions[city] = report["masks"][0]["fraction"]
    rows = {c: {"median_s": round(statistics.median(v), 3), "max_s": round(max(v), 3),
                "fraction": round(fractions[c], 3)} for c, v in seconds.items()}
    overall = statistics.median([s for v in seconds.values() for s in v])
    for c, row in rows.items():
        print(f"{c:8s} median {row['median_s']:.3f} s  max {row['max_s']:.3f} s  (building fraction {row['fraction']})")
    print(f"all cities: median {overall:.3f} s per {args.size}x{args.size} mask")
    if args.json:
        Path(args.json).write_text(json.dumps({"size": args.size, "rounds": args.rounds, "cities": rows,
                                               "median_s": round(overall, 3)}, indent=1))


if __name__ == "__main__":
    main()
