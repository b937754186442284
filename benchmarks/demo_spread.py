"""How much the demo's figures vary: evaluation reports of the same demo training with
different seeds, every figure as median [min, max] (the README's demo table).

    python benchmarks/demo_spread.py REPORT.json REPORT.json REPORT.json [...]

``make demo-spread`` trains seeds 1 and 2 beside ``make demo``'s seed 0 and runs this.
A rerun of ``make demo`` on another machine (other cores, other kernels: the arithmetic's
order changes) lands within the seeds' spread, which is why the table states it.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

COLUMNS = [("psnr", "PSNR dB", "{:.2f}"), ("ssim", "SSIM", "{:.3f}"), ("fid", "FID", "{:.1f}"),
           ("kid", "KID", "{:.3f}"), ("mask_iou", "mask IoU, judge 1", "{:.3f}"),
           ("mask_iou_2", "judge 2", "{:.3f}")]


def spread(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    if len(set(values)) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}, {fmt.format(max(values))}]"


def table(reports: list[dict]) -> str:
    models = list(dict.fromkeys(name for r in reports for name in r["models"]))
    lines = ["| model | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|---|" + "---|" * len(COLUMNS)]
    for name in models:
        rows = [r["models"][name]["overall"] for r in reports if name in r["models"]]
        cells = [spread([row[key] for row in rows if row.get(key) is not None], fmt) for key, _, fmt in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]]
    if len(paths) < 2:
        sys.exit("give two or more evaluation reports (report.json) of the same demo with different seeds")
    reports = [json.loads(p.read_text()) for p in paths]
    print(f"median [min, max] over {len(reports)} runs: {', '.join(str(p) for p in paths)}\n")
    print(table(reports))


if __name__ == "__main__":
    main()
