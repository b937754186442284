"""Stress run of the headless notebook tests: N repetitions, every hang caught and dissected.

Runs ``pytest tests/test_notebooks.py`` (the papermill runs, not the pairing checks) N
times in fresh processes. A watchdog samples the CPU time of pytest and of every Jupyter
kernel it started; when both stand still for ``--idle`` seconds (a hang: nobody is working,
everyone is waiting), it saves the Python stacks of each (``py-spy dump``, when py-spy is
installed) beside the run's log, with the end of each kernel's message log (every kernel
logs the messages it handles, with times, into ``OUT/kernels/``), so a hang is a
measurement, not a guess. The test's own cell timeout (``SATGAN_NB_CELL_TIMEOUT``, 90 s by
default) then turns it into a failure.

    python benchmarks/stress_notebooks.py [--runs 20] [--idle 40] [--out runs/stress] [-k EXPR]

Prints one line per run and a summary: passed / failed / hung, and the median run time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def _cpu(proc: psutil.Process) -> float:
    try:
        t = proc.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return -1.0


KERNEL_CONFIG = """import os
c.IPKernelApp.log_level = "DEBUG"
c.IPKernelApp.logging_config = {{
    "handlers": {{"file": {{"class": "logging.FileHandler", "level": "DEBUG", "formatter": "stamped",
                          "filename": os.path.join({folder!r}, f"kernel-{{os.getpid()}}.log")}}}},
    "formatters": {{"stamped": {{"format": "%(asctime)s.%(msecs)03d %(threadName)s %(message).300s",
                                "datefmt": "%H:%M:%S"}}}},
    "loggers": {{"IPKernelApp": {{"level": "DEBUG", "handlers": ["file"]}}}},
}}
"""


def kernel_logging(out: Path) -> dict[str, str]:
    """An IPython profile whose kernels log every message they handle into ``out/kernels``;
    returns the environment that selects it."""
    folder = (out / "kernels").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    profile = out.resolve() / "ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(KERNEL_CONFIG.format(folder=str(folder)))
    return {"IPYTHONDIR": str(profile.parent)}


def _dump_stacks(procs: list[psutil.Process], log: Path) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with log.open("a") as f:
        for p in procs:
            try:
                f.write(f"\n===== pid {p.pid}: {' '.join(p.cmdline())}\n")
            except psutil.Error:
                continue
            f.flush()
            if Path(spy).exists():
                subprocess.run([spy, "dump", "--pid", str(p.pid)], stdout=f, stderr=subprocess.STDOUT, timeout=60)
            else:
                f.write("(py-spy not installed: pip install py-spy to see the stacks)\n")
            kernel_log = log.parent / "kernels" / f"kernel-{p.pid}.log"
            if kernel_log.exists():
                f.write(f"----- the last lines of {kernel_log.name}\n")
                f.writelines(kernel_log.read_text().splitlines(keepends=True)[-40:])


def run_once(i: int, out: Path, idle_s: float, expr: str) -> tuple[str, float]:
    log = out / f"run{i:02d}.log"
    basetemp = out / f"run{i:02d}-tmp"  # the executed notebooks, with papermill's per-cell times
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_notebooks.py",
           "-k", expr, "--basetemp", str(basetemp)]
    start = time.monotonic()
    env = {**os.environ, **kernel_logging(out)}
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env)
    root = psutil.Process(proc.pid)
    last, still_since, hung = None, time.monotonic(), False
    while proc.poll() is None:
        time.sleep(2)
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        state = tuple(round(_cpu(p), 1) for p in procs)
        if state != last:
            last, still_since = state, time.monotonic()
        elif not hung and time.monotonic() - still_since > idle_s:
            hung = True  # dump once; the cell timeout ends the run
            _dump_stacks(procs, log.with_suffix(".stacks"))
    seconds = time.monotonic() - start
    verdict = "hung" if hung else ("passed" if proc.returncode == 0 else "failed")
    if verdict == "passed":
        shutil.rmtree(basetemp, ignore_errors=True)
    else:
        with log.with_suffix(".stacks").open("a") as f:
            f.write("\nslowest cells:\n" + "\n".join(slowest_cells(basetemp)) + "\n")
    return verdict, seconds


def slowest_cells(folder: Path, shown: int = 5) -> list[str]:
    """The longest cells of every executed notebook under ``folder`` (papermill's timing)."""
    import nbformat

    found = []
    for path in folder.rglob("*.ipynb"):
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 - a notebook cut short by the hang itself
            continue
        for k, cell in enumerate(nb.cells):
            seconds = cell.metadata.get("papermill", {}).get("duration")
            if seconds is not None:
                first = cell.source.strip().splitlines()[0][:70] if cell.source.strip() else ""
                found.append((seconds, f"{seconds:7.1f} s  {path.relative_to(folder)} cell {k}: {first}"))
    return [line for _, line in sorted(found, reverse=True)[:shown]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--idle", type=float, default=40.0, help="seconds with no CPU anywhere that count as a hang")
    ap.add_argument("--out", default="runs/stress")
    ap.add_argument("-k", dest="expr", default="not ipynb_matches and not colab_setup",
                    help="pytest -k expression choosing the tests (default: every papermill run)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    times = []
    for i in range(1, args.runs + 1):
        verdict, seconds = run_once(i, out, args.idle, args.expr)
        counts[verdict] = counts.get(verdict, 0) + 1
        times.append(seconds)
        print(f"run {i}/{args.runs}: {verdict} in {seconds:.0f} s", flush=True)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"{args.runs} runs: {summary}; median {statistics.median(times):.0f} s (logs in {out})")
    sys.exit(0 if counts.get("passed", 0) == args.runs else 1)


if __name__ == "__main__":
    main()
