"""The package's imports run one way, from the data up to the command line."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

# Lowest first. A module may import modules of its own layer or of layers below it,
# never above; and no chain of imports may lead back to where it started.
LAYERS = [
    ["satgan", "satgan.errors", "satgan.atomic", "satgan.parallel", "satgan.progress"],
    ["satgan.settings"],
    ["satgan.config.shared"],
    ["satgan.config.training", "satgan.config.data_jobs", "satgan.config.generation_jobs",
     "satgan.config.synthetic_jobs"],
    ["satgan.config.reading"],
    ["satgan.config"],
    ["satgan.presets"],
    ["satgan.runtime", "satgan.metrics", "satgan.images"],
    ["satgan.data", "satgan.data.readers", "satgan.data.tiling", "satgan.data.writers", "satgan.data.arrays",
     "satgan.data.sampling", "satgan.data.labels", "satgan.data.subset"],
    ["satgan.data.sources"],
    ["satgan.data.city_styles"],
    ["satgan.data.buildings", "satgan.data.scene", "satgan.data.staging"],
    ["satgan.data.synthetic", "satgan.data.pretransform", "satgan.data.dataset", "satgan.data.footprints"],
    ["satgan.data.forge"],
    ["satgan.models.filters"],
    ["satgan.models.conditioning"],
    ["satgan.models", "satgan.models.layers", "satgan.models.ema", "satgan.models.shared_norm"],
    ["satgan.models.efficientnet_lite"],
    ["satgan.models.generator", "satgan.models.discriminator", "satgan.models.losses", "satgan.models.augment",
     "satgan.models.encoder", "satgan.models.segmenter", "satgan.models.projected", "satgan.models.oasis"],
    ["satgan.models.objective", "satgan.models.factory"],
    ["satgan.checkpoint"],
    ["satgan.runs", "satgan.optim", "satgan.validation"],
    ["satgan.train_state", "satgan.train_step"],
    ["satgan.loading"],
    ["satgan.file_cities", "satgan.generation_modes"],
    ["satgan.consistency"],
    ["satgan.train", "satgan.inference", "satgan.segmenter"],
    ["satgan.reference_segmenter", "satgan.segbench_plan"],
    ["satgan.segbench_report"],
    ["satgan.baselines", "satgan.scoring"],
    ["satgan.folder_scoring"],
    ["satgan.evaluation"],
    ["satgan.gallery_samples"],
    ["satgan.gallery_figures", "satgan.gallery_files"],
    ["satgan.gallery", "satgan.explore", "satgan.plots", "satgan.synthesize", "satgan.segbench"],
    ["satgan.colab", "satgan.cli"],
    ["satgan.__main__"],
]
LAYER = {module: i for i, layer in enumerate(LAYERS) for module in layer}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def satgan_imports(path: Path) -> set[str]:
    """Every satgan module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "satgan"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "satgan":
            for alias in node.names:  # "from satgan import metrics" imports the module satgan.metrics
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in LAYER else node.module)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): satgan_imports(p) for p in sorted((REPO / "satgan").rglob("*.py"))}


def test_every_module_has_a_layer():
    assert sorted(set(graph()) - set(LAYER)) == [], "add new modules to LAYERS"


def test_no_module_imports_from_a_layer_above():
    upward = [f"{m} -> {i}" for m, imports in graph().items() for i in imports if LAYER[i] > LAYER[m]]
    assert upward == []


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
    bad.write_text("def f():\n    from satgan.train import train\n    from satgan import metrics\n")
    assert satgan_imports(bad) == {"satgan.train", "satgan.metrics"}
