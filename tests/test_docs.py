"""The README and the guides cannot rot silently: every command line in their fenced code
blocks is parsed by the real parser and its settings checked, every benchmark script they
run exists and takes the options given, every papermill parameter is one the notebook
has, and every relative link points at a file."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from satgan import config
from satgan.cli import build_parser
from satgan.config import make_config
from satgan.settings import from_namespace
from tests.conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[a-z]*\n(.*?)^```", re.M | re.S)
# the commands whose options are one settings class: checked by it too (ranges, choices)
SETTINGS = {"synth": config.SynthConfig, "pretransform": config.PretransformConfig,
            "generate": config.GenerateConfig, "forge": config.ForgeConfig, "subset": config.SubsetConfig,
            "synthesize": config.SynthesizeConfig, "segbench": config.SegbenchConfig,
            "segmenter": config.SegmenterConfig}


def command_lines(path: Path) -> list[str]:
    """Each command of the file's fenced blocks, continuation lines joined, comments cut."""
    lines = []
    for block in FENCE.findall(path.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                lines.append(" ".join(shlex.split(line, comments=True)))
    return [line for line in lines if line]


def satgan_argv(line: str) -> list[str] | None:
    """The arguments after ``satgan``, ``python -m satgan`` or ``torchrun ... -m satgan``."""
    words = shlex.split(line)
    for i, word in enumerate(words):
        if word == "satgan" and (i == 0 or words[i - 1] == "-m"):
            return words[i + 1:]
    return None


COMMANDS = [(path.relative_to(REPO).as_posix(), line) for path in DOCS for line in command_lines(path)]
SATGAN = [(where, line) for where, line in COMMANDS if satgan_argv(line) is not None]
SCRIPTS = [(where, line) for where, line in COMMANDS if re.search(r"(^|\s)benchmarks/\w+\.py", line)]
PAPERMILL = [(where, line) for where, line in COMMANDS if line.startswith("papermill ")]


def test_the_docs_hold_commands_to_check():
    assert len(SATGAN) >= 40 and {where for where, _ in SATGAN} >= {"README.md", "docs/data.md", "docs/training.md",
                                                                    "docs/generation.md", "docs/evaluation.md",
                                                                    "docs/synthetic-data.md"}


@pytest.mark.parametrize("where, line", SATGAN, ids=[f"{w}: {line[:60]}" for w, line in SATGAN])
def test_every_satgan_command_parses(where, line, capsys):
    argv = satgan_argv(line)
    if argv in (["--help"], ["-h"]):
        return
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: `{line}` does not parse: {capsys.readouterr().err.strip().splitlines()[-1]}")
    if argv[0] == "train":
        job = from_namespace(config.TrainJobConfig, args)
        make_config(job.preset, None, job.set)  # presets and --set keys and values
    elif argv[0] in SETTINGS:
        from_namespace(SETTINGS[argv[0]], args)


@pytest.mark.parametrize("where, line", SCRIPTS, ids=[f"{w}: {line[:60]}" for w, line in SCRIPTS])
def test_every_benchmark_command_names_a_script_and_its_options(where, line):
    words = shlex.split(line)
    script = next(w for w in words if re.fullmatch(r"(\.venv/bin/)?benchmarks/\w+\.py", w) or
                  w.startswith("benchmarks/"))
    source = (REPO / script.removeprefix(".venv/bin/")).read_text()
    for option in (w.split("=")[0] for w in words if w.startswith("--")):
        assert f'"{option}"' in source, f"{where}: {script} has no option {option}"


@pytest.mark.parametrize("where, line", PAPERMILL, ids=[f"{w}: {line[:60]}" for w, line in PAPERMILL])
def test_every_papermill_parameter_is_the_notebooks(where, line):
    words = shlex.split(line)
    notebook = REPO / next(w for w in words if w.endswith(".ipynb")).replace(".ipynb", ".py")
    cell = notebook.read_text().split('tags=["parameters"]', 1)[1].split("# %%", 1)[0]
    names = set(re.findall(r"^([A-Z_0-9]+) =", cell, re.M))
    for i, word in enumerate(words):
        if word in ("-p", "-y"):
            name = words[i + 1] if word == "-p" else words[i + 1].split(":")[0]
            assert name in names, f"{where}: {notebook.name} has no parameter {name}"


LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_relative_links_point_at_files(path):
    missing = [target for target, _ in LINK.findall(path.read_text())
               if "://" not in target and not (path.parent / target).exists()]
    assert missing == []
