"""segbench's report: per arm the IoU over seeds, its gain over real only with a standard
error, a markdown table, a figure and a sentence a user can act on.

Gains are paired: each seed's arm against the same seed's real-only run (same initial
weights, same real tiles), so the standard error is that of the per-seed differences.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from matplotlib.figure import Figure

from satgan.atomic import atomic_path, write_json
from satgan.segbench_plan import Arm

# A gain counts when it is larger than this many standard errors (about 95 % for a normal mean).
SIGNIFICANT_SE = 2.0


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (0 for one seed)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(arms: list[Arm], runs: list[dict]) -> list[dict]:
    """Per arm: tile counts, IoU and F1 mean and std over seeds and, against its baseline
    (its fraction's real-only arm; synthetic only: real 100%), ``delta_iou`` (mean of the
    per-seed differences) and ``delta_se`` (their standard error; None with one seed).
    Both None where there is no baseline, and for the real-only arms themselves."""
    by_arm_seed = {(r["arm"], r["seed"]): r for r in runs}
    names = {arm.name for arm in arms}
    rows = []
    for arm in arms:
        mine = [r for r in runs if r["arm"] == arm.name]
        iou_mean, iou_std = _mean_std([r["iou"] for r in mine])
        f1_mean, f1_std = _mean_std([r["f1"] for r in mine])
        row = {"arm": arm.name, "fraction": arm.fraction, "schedule": arm.schedule, "share": arm.share,
               "filter": arm.filter, "real_tiles": arm.real, "synthetic_tiles": arm.synthetic,
               "iou_mean": iou_mean, "iou_std": iou_std, "f1_mean": f1_mean, "f1_std": f1_std,
               "seeds": [r["seed"] for r in mine], "baseline": arm.baseline if arm.baseline in names else None,
               "delta_iou": None, "delta_se": None}
        if row["baseline"] is not None:
            deltas = [r["iou"] - by_arm_seed[(row["baseline"], r["seed"])]["iou"] for r in mine]
            row["delta_iou"] = statistics.fmean(deltas)
            row["delta_se"] = statistics.stdev(deltas) / math.sqrt(len(deltas)) if len(deltas) > 1 else None
        ignored = [r["ignored"] for r in mine if r.get("ignored") is not None]
        if ignored:
            row["ignored"] = statistics.fmean(ignored)
        rows.append(row)
    return rows


def significant(row: dict) -> bool:
    """A gain larger than :data:`SIGNIFICANT_SE` standard errors of the per-seed differences."""
    return row["delta_iou"] is not None and row["delta_se"] is not None \
        and abs(row["delta_iou"]) > SIGNIFICANT_SE * row["delta_se"]


def _delta(row: dict) -> str:
    if row["delta_iou"] is None:
        return ""
    se = "" if row["delta_se"] is None else f" ± {row['delta_se']:.3f}"
    return f"{row['delta_iou']:+.3f}{se}{' *' if significant(row) else ''}"


def format_table(report: dict) -> str:
    """The report's arms as a markdown table: tile counts, IoU and F1 mean ± std over seeds,
    and the IoU gain over real only ± its standard error (``*``: more than twice it)."""
    lines = ["| arm | real | synthetic | IoU | F1 | ΔIoU vs real only (± s.e.) |", "|---|---:|---:|---|---|---:|"]
    for a in report["arms"]:
        lines.append(f"| {a['arm']} | {a['real_tiles']} | {a['synthetic_tiles']} | {a['iou_mean']:.3f} ± "
                     f"{a['iou_std']:.3f} | {a['f1_mean']:.3f} ± {a['f1_std']:.3f} | {_delta(a)} |")
    return "\n".join(lines)


def recommendation(report: dict) -> str:
    """One sentence on whether to use the synthetic set: the best arm's gain and whether it
    is more than twice its standard error; for each fraction separately when gains differ."""
    rows = [a for a in report["arms"] if a["delta_iou"] is not None and a["fraction"] is not None]
    if not rows:
        return "No synthetic arm ran: give --synthetic to measure whether synthetic pairs help."
    seeds = report["settings"]["seeds"]
    sentences = []
    for fraction in sorted({a["fraction"] for a in rows}):
        best = max((a for a in rows if a["fraction"] == fraction), key=lambda a: a["delta_iou"])
        where = f"With {best['real_tiles']} real tiles"
        gain = f"{best['delta_iou']:+.3f} IoU" + (f" ± {best['delta_se']:.3f}" if best["delta_se"] is not None else "")
        if seeds < 2:
            sentences.append(f"{where}, the best arm ({best['arm']}) changes IoU by {gain} in one seed: run more "
                             "seeds (--seeds 5) before deciding.")
        elif best["delta_iou"] > 0 and significant(best):
            sentences.append(f"{where}, use the synthetic set as '{best['arm']}': {gain} over real only "
                             f"(more than {SIGNIFICANT_SE:g} standard errors, {seeds} seeds).")
        elif best["delta_iou"] <= 0:
            sentences.append(f"{where}, do not use the synthetic set: no arm beats real only (best {best['arm']}, "
                             f"{gain}).")
        else:
            sentences.append(f"{where}, no arm helps for sure: the best ({best['arm']}, {gain}) is within "
                             f"{SIGNIFICANT_SE:g} standard errors of real only; more seeds would tell.")
    return " ".join(sentences)


def segbench_figure(report: dict) -> Figure:
    """IoU against the fraction of real tiles (log axis), one line per way of adding
    synthetic tiles (real only first), error bars one std over seeds; synthetic only as a
    dashed line."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    arms = [a for a in report["arms"] if a["fraction"] is not None]
    kinds: list[str] = []
    for a in arms:  # the arm's name without its "real N%", in table order
        kind = a["arm"].split("%", 1)[1].lstrip(" +,") or "real only"
        a["_kind"] = kind
        if kind not in kinds:
            kinds.append(kind)
    for k, kind in enumerate(kinds):
        line = sorted((a for a in arms if a["_kind"] == kind), key=lambda a: a["fraction"])
        # A small sideways nudge per line keeps overlapping error bars apart.
        x = [a["fraction"] * 100 * 1.03 ** (k - (len(kinds) - 1) / 2) for a in line]
        ax.errorbar(x, [a["iou_mean"] for a in line], yerr=[a["iou_std"] for a in line], marker="o", capsize=3,
                    label=kind)
    for a in arms:
        del a["_kind"]
    for a in report["arms"]:
        if a["fraction"] is None:
            ax.axhline(a["iou_mean"], color="grey", linestyle="--", label=f"{a['arm']} ({a['synthetic_tiles']} tiles)")
            ax.axhspan(a["iou_mean"] - a["iou_std"], a["iou_mean"] + a["iou_std"], color="grey", alpha=0.15)
    fractions = sorted({a["fraction"] for a in arms})
    ax.set_xscale("log")
    ax.set_xticks([f * 100 for f in fractions], [f"{f * 100:g}%" for f in fractions])
    ax.minorticks_off()
    ax.set_xlabel(f"real training tiles (of {report['counts']['real_train']})")
    ax.set_ylabel(f"IoU on real {'+'.join(report['settings']['test_splits'])} ({report['counts']['test']} tiles)")
    s = report["settings"]
    ax.set_title(f"segbench: {s['steps']} steps x {s['batch_size']} tiles, {s['seeds']} seeds", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def markdown(report: dict) -> str:
    s, c = report["settings"], report["counts"]
    synthetic = f"synthetic {s['synthetic']} ({c['synthetic']} train tiles)" if s["synthetic"] else "no synthetic data"
    return (f"# satgan segbench\n\nReal {s['real']} ({c['real_train']} train tiles), scored on "
            f"{'+'.join(s['test_splits'])} of {s['test']} ({c['test']} tiles); {synthetic}. "
            f"Every run: {s['steps']} steps of {s['batch_size']} tiles, crop {s['crop']}, width {s['ngf']}; "
            f"mean ± std over {s['seeds']} seeds; gains paired by seed, ± their standard error "
            f"(* more than {SIGNIFICANT_SE:g} of them).\n\n"
            f"{format_table(report)}\n\n{report['recommendation']}\n"
            + (f"\n{report['generator']['sentence']}\n" if report.get("generator") else ""))


def write_report(report: dict, out: Path) -> None:
    """``report.png``, ``report.md`` and, last, ``report.json`` in ``out``, each atomically."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "report.png") as tmp:
        segbench_figure(report).savefig(tmp, dpi=110)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(markdown(report), encoding="utf-8")
    write_json(out / "report.json", report)
