"""segbench's report: per arm the IoU over seeds, its gain over real only with a standard
error, a markdown table, a figure and a sentence a user can act on; the runs it is
assembled from, one file each under ``OUT/runs/`` written as each run finishes; and the
lock that keeps one segbench per ``OUT``.

Gains are paired: each seed's arm against the same seed's real-only run (same initial
weights, same real tiles), so the standard error is that of the per-seed differences. A
gain counts when a paired t-test (seeds - 1 degrees of freedom) rejects "no change" at
5 %, after Holm's correction for the several arms of one fraction: with few seeds and
many arms, the best of them beats "twice its standard error" by chance too often.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import socket
import statistics
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from matplotlib.figure import Figure

from satgan import SatganError, SatganWarning
from satgan.atomic import write_json
from satgan.synthetic.plan import Arm

try:  # scipy is optional (the synthetic extra): a missing one should name the extra
    from scipy import stats
except ImportError as exc:
    raise SatganError(f"segbench's statistics need scipy: pip install 'satgan[synthetic]' ({exc})") from exc

RUNS = "runs"  # OUT/runs/: one finished run per file
LOCK = ".segbench.lock"  # in OUT while a segbench writes there: "PID HOST"
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
               "filter": arm.filter, "source": arm.source, "real_tiles": arm.real, "synthetic_tiles": arm.synthetic,
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


def paired_difference(runs: list[dict], arm: str, other: str) -> dict | None:
    """``arm`` minus ``other`` in IoU, paired by seed: the mean, its standard error and the
    two-sided p of a paired t-test (None without a common seed)."""
    theirs = {r["seed"]: r["iou"] for r in runs if r["arm"] == other}
    deltas = [r["iou"] - theirs[r["seed"]] for r in runs if r["arm"] == arm and r["seed"] in theirs]
    if not deltas:
        return None
    mean = statistics.fmean(deltas)
    se = statistics.stdev(deltas) / math.sqrt(len(deltas)) if len(deltas) > 1 else None
    return {"delta": mean, "se": se, "p": _p_value(mean, se, len(deltas)), "seeds": len(deltas)}


def _against_copy_paste(report: dict, best: dict, copy_paste: list[dict]) -> str:
    """Whether the best synthetic arm beats copy-paste of the same real tiles (the same share
    where it mixes, else the best copy-paste arm), paired by seed."""
    same = [a for a in copy_paste if a["share"] == best["share"]]
    rival = same[0] if same else max(copy_paste, key=lambda a: a["delta_iou"])
    diff = paired_difference(report["runs"], best["arm"], rival["arm"])
    if diff is None:
        return ""
    cp = f"{rival['delta_iou']:+.3f}" if rival["delta_iou"] is not None else "?"
    by = f"{diff['delta']:+.3f} IoU" + (f" ± {diff['se']:.3f}" if diff["se"] is not None else "")
    if diff["p"] is not None and diff["p"] < ALPHA and diff["delta"] > 0:
        verdict = f"the generated pairs beat it by {by} (p = {diff['p']:.3f}, paired)"
    elif diff["p"] is None:
        verdict = f"the generated pairs differ from it by {by} in one seed"
    else:
        verdict = f"the generated pairs do not beat it ({by}, p = {diff['p']:.3f}, paired)"
    return f" Copy-paste of the same real tiles ({rival['arm']}, no generator) changes IoU by {cp}: {verdict}."


def recommendation(report: dict) -> str:
    """One sentence on whether to use the synthetic set: the best arm's gain and whether it
    is more than twice its standard error; for each fraction separately when gains differ;
    and whether it beats the copy-paste baseline."""
    arms = [a for a in report["arms"] if a["delta_iou"] is not None and a["fraction"] is not None]
    rows = [a for a in arms if a.get("source", "synthetic") != "copy-paste"]
    if not rows:
        if report["settings"].get("synthetic"):
            return ("No arm added the synthetic tiles to real ones (no --shares, --pretrain 0), so nothing says "
                    "whether they help: give --shares or --pretrain.")
        return "No synthetic arm ran: give --synthetic to measure whether synthetic pairs help."
    seeds = report["settings"]["seeds"]
    sentences = []
    for fraction in sorted({a["fraction"] for a in rows}):
        mine = [a for a in rows if a["fraction"] == fraction]
        family = len([a for a in arms if a["fraction"] == fraction])  # Holm's, copy-paste arms included
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
                             f"{family} arms){ground}.")
        elif best["delta_iou"] <= 0:
            sentences.append(f"{where}, do not use the synthetic set: no arm beats real only (best {best['arm']}, "
                             f"{gain}).")
        else:
            sentences.append(f"{where}, no arm helps for sure: the best ({best['arm']}, {gain}, p = "
                             f"{best['p_value']:.3f}) could be chance after correcting for {family} arms; "
                             "more seeds would tell.")
        copy_paste = [a for a in arms if a["fraction"] == fraction and a.get("source") == "copy-paste"]
        if copy_paste:
            sentences[-1] += _against_copy_paste(report, best, copy_paste)
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


def run_file(out: Path, arm: str, seed: int) -> Path:
    """Where the run of ``arm`` and ``seed`` is kept: ``OUT/runs/seed0-real-10pct-50pct-synthetic.json``."""
    slug = re.sub(r"[^a-z0-9.]+", "-", arm.lower().replace("%", "pct")).strip("-")
    return out / RUNS / f"seed{seed}-{slug}.json"


def load_run(path: Path, key: str) -> dict | None:
    """The run kept in ``path`` when it was made with ``key`` (the same arm, seed, settings and
    data), else None: a run of other settings, or a damaged file, is trained again."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("key") != key or not isinstance(kept.get("run"), dict):
        return None
    return kept["run"]


def save_run(path: Path, key: str, run: dict) -> None:
    """Keep a finished run, atomically; a failed write is an :class:`OSError` naming ``path``."""
    try:
        write_json(path, {"key": key, "run": run})
    except OSError as exc:
        raise _named(exc, path) from exc


REPORT_FILES = ("report.json", "report.md", "report.png")


def foreign_report_files(out: Path) -> list[Path]:
    """Files of the report's names in ``out`` that no segbench wrote (its ``report.json``
    is a segbench report; the other two come with it): a user's, never to be replaced."""
    found = [out / name for name in REPORT_FILES if (out / name).exists()]
    try:
        earlier = json.loads((out / "report.json").read_text(encoding="utf-8"))
        ours = isinstance(earlier, dict) and {"settings", "arms", "runs"} <= set(earlier)
    except (OSError, ValueError):
        ours = False
    return [] if ours and all(p.is_file() for p in found) else found


def write_report(report: dict, out: Path) -> None:
    """``report.png``, ``report.md`` and ``report.json`` in ``out``: all three are written under
    temporary names first and renamed only when every one is whole, so a failed write (a full
    disk) leaves the earlier three as they were. The error names the file that failed."""
    out.mkdir(parents=True, exist_ok=True)
    writes = {"report.png": lambda tmp: segbench_figure(report).savefig(tmp, dpi=110),
              "report.md": lambda tmp: tmp.write_text(markdown(report), encoding="utf-8"),
              "report.json": lambda tmp: tmp.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n",
                                                        encoding="utf-8")}
    written: list[tuple[Path, Path]] = []
    path = out
    try:
        for name, write in writes.items():
            path = out / name
            tmp = out / f".{path.stem}.tmp-{os.getpid()}{path.suffix}"
            written.append((tmp, path))
            write(tmp)
        for tmp, path in written:
            os.replace(tmp, path)
    except OSError as exc:
        raise _named(exc, path) from exc
    finally:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)


def _named(exc: OSError, path: Path) -> OSError:
    """``exc`` naming ``path``, the file meant (a failed write names no file, a rename the temporary one)."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


# -- one segbench per OUT, and what a failed write keeps ---------------------------------------------
def _holder(lock: Path) -> tuple[int, str] | None:
    """The ``(pid, host)`` a lock file names (None: empty or unreadable)."""
    try:
        pid, host = lock.read_text(encoding="utf-8").split()
        return int(pid), host
    except (OSError, ValueError):
        return None


def _stale(lock: Path, holder: tuple[int, str] | None) -> bool:
    """A lock whose process is gone: its pid is not running on this host (a lock of another
    host, or of this process, is never taken over)."""
    if holder is None:  # a process between making the file and writing its pid; or one killed there
        try:
            return time.time() - lock.stat().st_mtime > 60
        except OSError:
            return True
    pid, host = holder
    if host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: running, as another user
        return False
    return False


def _busy(out: Path, lock: Path, holder: tuple[int, str] | None) -> SatganError:
    who = f"pid {holder[0]} on {holder[1]}" if holder else "a process starting"
    return SatganError(f"--out {out}: another segbench ({who}) is writing into this folder; wait for it to finish or "
                       f"give another --out (if that process is gone, remove {lock})")


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """``out`` for this process alone while the block runs: a lock file made with ``O_EXCL``
    holding this pid and host. A lock left by a process that is gone (kill -9) is taken over
    with a warning; a live one is refused with one error naming the folder."""
    lock = out / LOCK
    mine = f"{os.getpid()} {socket.gethostname()}\n"
    for attempt in range(2):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _holder(lock)
            if attempt or not _stale(lock, holder):
                raise _busy(out, lock, holder) from None
            aside = lock.with_name(f"{LOCK}.stale-{os.getpid()}")
            try:  # renamed, not removed: of two processes taking over the same lock, one wins
                os.rename(lock, aside)
            except FileNotFoundError:
                continue
            if _holder(aside) != holder:  # another process's fresh lock: give it back
                os.rename(aside, lock)
                raise _busy(out, lock, _holder(lock)) from None
            aside.unlink(missing_ok=True)
            warnings.warn(f"--out {out}: taking over the lock of segbench pid {holder[0] if holder else '?'}, which "
                          "is no longer running", SatganWarning, stacklevel=3)
            continue
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(mine)
        except OSError as exc:
            lock.unlink(missing_ok=True)
            raise OSError(exc.errno, exc.strerror or str(exc), str(lock)) from exc
        break
    try:
        yield
    finally:
        if lock.is_file() and lock.read_text(encoding="utf-8") == mine:
            lock.unlink()


def write_failed(exc: OSError, out: Path, kept: int) -> SatganError:
    """A failed write as one message: the file, why, and what was kept."""
    reason = "no space left on the disk" if exc.errno == errno.ENOSPC else (exc.strerror or type(exc).__name__)
    where = exc.filename or out
    if not kept:
        return SatganError(f"{where}: cannot be written ({reason}); no run had finished")
    return SatganError(f"{where}: cannot be written ({reason}); the {kept} finished run(s) are kept in "
                       f"{out / RUNS}: run the same command again (once there is room) and it reuses them")
