"""The package's imports run one way, from the data up to the command line.

The rules are stated per package: a module belongs to the package its name starts with
(``satgan.training.trainer`` to ``satgan.training``), or is a top-level module named here.
A module may import its own package and the layers below its own, never a layer above
and never a sibling in its own layer; no chain of imports, within a package or across,
may lead back to where it started. docs/development.md draws the same picture.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

# Lowest first; each layer a list of sibling packages (or top-level modules).
LAYERS = [
    ["satgan"],                                                           # the error and warning types
    ["satgan.atomic", "satgan.progress", "satgan.settings"],              # writes, long work, settings machinery
    ["satgan.config"],                                                    # every setting and the presets
    ["satgan.runtime", "satgan.metrics"],                                 # device, processes; PSNR, SSIM, FID, KID
    ["satgan.data"],                                                      # reading, tiling, arrays, synthetic cities
    ["satgan.models"],                                                    # networks, losses, discriminator plug-ins
    ["satgan.checkpoint"],                                                # the one checkpoint schema
    ["satgan.segmentation"],                                              # segmenters: judges, segbench's, alignment
    ["satgan.training", "satgan.generation"],                             # the Trainer | the generator wrapper, modes
    ["satgan.evaluation"],                                                # scores, reports
    ["satgan.synthetic"],                                                 # synthesize, segbench
    ["satgan.gallery"],                                                   # samples, figures, files, notebook plots
    ["satgan.cli", "satgan.colab"],                                       # front ends
    ["satgan.__main__"],
]
LAYER = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
ROOT = "satgan"  # the root package's own __init__, not every module under it


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str | None:
    """The package (or top-level module) of LAYERS that ``module`` belongs to."""
    if module == ROOT:
        return ROOT
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        if ".".join(parts[:n]) in LAYER:
            return ".".join(parts[:n])
    return None


def satgan_imports(path: Path) -> set[str]:
    """Every satgan module ``path`` imports, at the top or inside a function."""
    modules = {module_name(p) for p in (REPO / "satgan").rglob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "satgan"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "satgan":
            for alias in node.names:  # "from satgan import metrics" imports the module satgan.metrics
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): satgan_imports(p) for p in sorted((REPO / "satgan").rglob("*.py"))}


def test_every_module_has_a_layer():
    assert sorted(m for m in graph() if unit(m) is None) == [], "add new top-level modules or packages to LAYERS"


def test_no_module_imports_from_a_layer_above_or_a_sibling():
    wrong = [f"{m} -> {i}" for m, imports in graph().items() for i in imports
             if unit(i) != unit(m) and LAYER[unit(i)] >= LAYER[unit(m)]]
    assert wrong == []


def test_no_import_cycles():
    edges = graph()
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in edges.get(node, ()):
            if nxt == path[0]:
                cycles.append(" -> ".join(path + [nxt]))
            elif nxt not in path and len(path) < len(edges):
                visit(nxt, path + [nxt])

    for start in edges:
        visit(start, [start])
    assert cycles == []


def test_the_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from satgan.training.trainer import train\n    from satgan import metrics\n")
    assert satgan_imports(bad) == {"satgan.training.trainer", "satgan.metrics"}
    assert unit("satgan.training.trainer") == "satgan.training"
    assert LAYER[unit("satgan.training.trainer")] > LAYER[unit("satgan.data.dataset")]
    assert LAYER[unit("satgan.generation.loading")] == LAYER[unit("satgan.training.trainer")]  # siblings


def test_top_level_holds_few_modules_and_no_file_is_a_room_or_a_hall():
    """The tree says the architecture: a dozen top-level modules, no module of a few lines
    that belongs in its story, none so long it holds two."""
    top = sorted(p.stem for p in (REPO / "satgan").glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(top) <= 12, top
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in (REPO / "satgan").rglob("*.py")
             if p.name not in ("__init__.py", "__main__.py")}
    assert {p: n for p, n in sizes.items() if n < 40 or n > 450} == {}
