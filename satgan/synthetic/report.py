"""segbench's report: per arm the IoU over seeds, its gain over real only with a standard
error, a markdown table, a figure and a sentence a user can act on.

Gains are paired: each seed's arm against the same seed's real-only run (same initial
weights, same real tiles), so the standard error is that of the per-seed differences. A
gain counts when a paired t-test (seeds - 1 degrees of freedom) rejects "no change" at
5 %, after Holm's correction for the several arms of one fraction: with few seeds and
many arms, the best of them beats "twice its standard error" by chance too often.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from matplotlib.figure import Figure

from satgan import SatganError
from satgan.atomic import atomic_path, write_json
from satgan.synthetic.plan import Arm

try:  # scipy is optional (the synthetic extra): a missing one should name the extra
    from scipy import stats
except ImportError as exc:
    raise SatganError(f"segbench's statistics need scipy: pip install 'satgan[synthetic]' ({exc})") from exc

ALPHA = 0.05  # family-wise, per fraction (Holm)
MOSTLY_IGNORED = 0.5  # a filter that drops more of the synthetic buildings than this leaves mostly ground


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
        row["p_value"] = _p_value(row["delta_iou"], row["delta_se"], len(mine))
        filters = [r["filter"] for r in mine if r.get("filter")]
        if filters:
            row["ignored"] = statistics.fmean(f["ignored"] for f in filters)
            row["ignored_building"] = statistics.fmean(f["ignored_building"] for f in filters)
        rows.append(row)
    for fraction in {row["fraction"] for row in rows}:
        _holm([row for row in rows if row["fraction"] == fraction and row["p_value"] is not None])
    return rows


def _p_value(delta: float | None, se: float | None, n: int) -> float | None:
    """Two-sided paired t-test of "no change" (None without a gain or with one seed)."""
    if delta is None or se is None or n < 2:
        return None
    if se == 0:
        return 0.0 if delta != 0 else 1.0
    return float(2 * stats.t.sf(abs(delta) / se, n - 1))


def _holm(rows: list[dict]) -> None:
    """Mark ``significant`` the rows whose change survives Holm's step-down correction."""
    for row in rows:
        row["significant"] = False
    for i, row in enumerate(sorted(rows, key=lambda r: r["p_value"])):
        if row["p_value"] * (len(rows) - i) > ALPHA:
            break
        row["significant"] = True


def significant(row: dict) -> bool:
    """A change that survives the paired t-test at 5 % after Holm's correction over the
    fraction's arms."""
    return bool(row.get("significant"))


def _delta(row: dict) -> str:
    if row["delta_iou"] is None:
        return ""
    se = "" if row["delta_se"] is None else f" ± {row['delta_se']:.3f}"
    return f"{row['delta_iou']:+.3f}{se}{' *' if significant(row) else ''}"


def format_table(report: dict) -> str:
    """The report's arms as a markdown table: tile counts, IoU and F1 mean ± std over seeds,
    the IoU change against real only ± its standard error (``*``: significant, see the
    module), its p-value, and for filtered arms the share of synthetic building pixels left out."""
    lines = ["| arm | real | synthetic | IoU | F1 | ΔIoU vs real only (± s.e.) | p | synthetic buildings ignored |",
             "|---|---:|---:|---|---|---:|---:|---:|"]
    for a in report["arms"]:
        p = "" if a.get("p_value") is None else f"{a['p_value']:.3f}"
        ignored = "" if a.get("ignored_building") is None else f"{a['ignored_building']:.0%}"
        lines.append(f"| {a['arm']} | {a['real_tiles']} | {a['synthetic_tiles']} | {a['iou_mean']:.3f} ± "
                     f"{a['iou_std']:.3f} | {a['f1_mean']:.3f} ± {a['f1_std']:.3f} | {_delta(a)} | {p} | {ignored} |")
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
        mine = [a for a in rows if a["fraction"] == fraction]
        helping = [a for a in mine if a["delta_iou"] > 0 and significant(a)]
        best = max(helping or mine, key=lambda a: a["delta_iou"])
        where = f"With {best['real_tiles']} real tiles"
        gain = f"{best['delta_iou']:+.3f} IoU" + (f" ± {best['delta_se']:.3f}" if best["delta_se"] is not None else "")
        if seeds < 2:
            sentences.append(f"{where}, the best arm ({best['arm']}) changes IoU by {gain} in one seed: run more "
                             "seeds (--seeds 5) before deciding.")
        elif helping:
            ground = ""
            if (best.get("ignored_building") or 0) > MOSTLY_IGNORED:
                ground = (f"; its filter left out {best['ignored_building']:.0%} of the synthetic building pixels, "
                          "so the gain comes from the synthetic ground, not from the buildings")
            sentences.append(f"{where}, use the synthetic set as '{best['arm']}': {gain} over real only "
                             f"(p = {best['p_value']:.3f}, paired over {seeds} seeds, Holm-corrected over "
                             f"{len(mine)} arms){ground}.")
        elif best["delta_iou"] <= 0:
            sentences.append(f"{where}, do not use the synthetic set: no arm beats real only (best {best['arm']}, "
                             f"{gain}).")
        else:
            sentences.append(f"{where}, no arm helps for sure: the best ({best['arm']}, {gain}, p = "
                             f"{best['p_value']:.3f}) could be chance after correcting for {len(mine)} arms; "
                             "more seeds would tell.")
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
            f"mean ± std over {s['seeds']} seeds; changes paired by seed, ± their standard error, "
            f"p of a paired t-test (* significant at {ALPHA:g} after Holm's correction per fraction).\n\n"
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
