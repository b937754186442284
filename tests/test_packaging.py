"""pyproject.toml declares what satgan imports: `pip install satgan` (plus an extra for an
optional part) gives a working install, not only the requirements.txt that make and Colab use.

Every third-party module imported anywhere in satgan/ (at the top or inside a function) must
be a requirement, of the core or of an extra; an optional one must sit in its extra, be
imported only where its feature needs it, and fail with a message that names the extra.
"""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.conftest import REPO

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

# Import names whose distribution is named otherwise (beyond case and - _ . differences).
DISTRIBUTIONS = {"PIL": "pillow"}
# Modules the platform provides, not pip: google.colab exists only on Colab.
PROVIDED = {"google.colab"}
# Modules of one distribution that need another one installed.
IMPLIED = {"torch.utils.tensorboard": "tensorboard"}
# The optional parts, stated once: import name -> the extra that installs it.
OPTIONAL = {"scipy": "synthetic", "ipywidgets": "notebooks", "IPython": "notebooks"}
# What must import without any optional package: the command line, training, generation,
# evaluation, the gallery and synthesis.
CORE_MODULES = ["satgan.cli", "satgan.training.trainer", "satgan.generation.generate", "satgan.evaluation.scoring",
                "satgan.evaluation.folder_scoring", "satgan.gallery.files", "satgan.gallery.plots",
                "satgan.gallery.figures", "satgan.synthetic.synthesize"]


def normalize(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalize(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1))


def declared() -> dict[str, set[str]]:
    """Distribution names per group of pyproject.toml: "" for the core, else the extra."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    groups = {"": project.get("dependencies", []), **project.get("optional-dependencies", {})}
    return {group: {requirement_name(r) for r in reqs} - {"satgan"} for group, reqs in groups.items()}


def imports(root: Path) -> dict[str, set[str]]:
    """Third-party modules imported by the .py files under ``root`` (dotted, as written), each
    with the files importing it; relative imports, the standard library and satgan left out."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "satgan":
                    found.setdefault(name, set()).add(path.relative_to(root).as_posix())
    return found


@functools.cache
def installed() -> dict[str, list[str]]:
    return packages_distributions()


def distributions(module: str) -> set[str]:
    """The distributions that may provide ``module``: from the name (and DISTRIBUTIONS), and
    from what this environment has installed where that knows more."""
    top = module.split(".")[0]
    return {normalize(DISTRIBUTIONS.get(top, top))} | {normalize(d) for d in installed().get(top, [])}


def undeclared(root: Path, groups: dict[str, set[str]]) -> dict[str, set[str]]:
    """Imported modules under ``root`` that no group of ``groups`` declares, with their files."""
    every = set().union(*groups.values())
    return {module: files for module, files in imports(root).items()
            if module not in PROVIDED and (not distributions(module) & every
                                           or module in IMPLIED and normalize(IMPLIED[module]) not in every)}


def unguarded(root: Path) -> list[str]:
    """Imports of OPTIONAL modules under ``root`` not inside a ``try`` whose ``except
    ImportError`` names the extra (``satgan[extra]``): a bare ModuleNotFoundError otherwise."""
    wrong = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text()
        tree = ast.parse(source, str(path))
        guarded = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Try):
                said = " ".join(ast.get_source_segment(source, h) or "" for h in node.handlers
                                if "ImportError" in ast.unparse(h.type or ast.Name("BaseException")))
                guarded |= {(id(inner), extra) for stmt in node.body for inner in ast.walk(stmt)
                            for extra in OPTIONAL.values() if f"satgan[{extra}]" in said}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top in OPTIONAL and (id(node), OPTIONAL[top]) not in guarded:
                    wrong.append(f"{path.relative_to(root).as_posix()}:{node.lineno} {top}")
    return wrong


def test_every_import_is_declared():
    assert undeclared(REPO / "satgan", declared()) == {}


def test_optional_packages_are_in_their_extra_only():
    groups = declared()
    for module, extra in OPTIONAL.items():
        assert distributions(module) & groups.get(extra, set()), f"{module}: not in the {extra!r} extra"
        assert not distributions(module) & groups[""], f"{module}: optional, but a core dependency"


def test_optional_imports_name_their_extra():
    assert unguarded(REPO / "satgan") == []


def test_the_checks_can_fail(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("import numpy\nimport not_declared_pkg\n")
    (tmp_path / "pkg" / "b.py").write_text("def f():\n    from other_missing.sub import x\n    import scipy\n")
    (tmp_path / "pkg" / "c.py").write_text(
        "try:\n    import scipy\nexcept ImportError as exc:\n"
        "    raise SystemExit(\"pip install 'satgan[synthetic]'\") from exc\n")
    groups = {"": {"numpy"}, "synthetic": {"scipy"}}
    assert undeclared(tmp_path, groups) == {"not_declared_pkg": {"pkg/a.py"}, "other_missing.sub": {"pkg/b.py"}}
    assert undeclared(tmp_path, {"": {"numpy"}})["scipy"] == {"pkg/b.py", "pkg/c.py"}
    assert unguarded(tmp_path) == ["pkg/b.py:3 scipy"]


def needing_at_import(root: Path) -> dict[str, str]:
    """The satgan modules that import an OPTIONAL package when imported themselves (an import
    among the module's own statements, in a ``try`` or not), each with the extra it needs."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        statements = [s for top in tree.body for s in ([top, *top.body] if isinstance(top, ast.Try) else [top])]
        for node in statements:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for name in names:
                if name.split(".")[0] in OPTIONAL:
                    parts = path.relative_to(root.parent).with_suffix("").parts
                    found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = OPTIONAL[name.split(".")[0]]
    return found


def test_core_imports_without_the_optional_packages():
    """The command line, training, generation, evaluation, the gallery and synthesis import
    with every optional package missing; a module that needs one says which extra."""
    needing = needing_at_import(REPO / "satgan")
    assert set(needing) == {"satgan.data.forge", "satgan.data.footprints", "satgan.synthetic.report"}
    script = f"""
import importlib, sys
for name in {sorted(OPTIONAL)!r}:
    sys.modules[name] = None  # "import name" fails as if it were not installed
for module in {CORE_MODULES!r}:
    importlib.import_module(module)
from satgan import SatganError
for module, extra in {needing!r}.items():
    try:
        importlib.import_module(module)
    except SatganError as exc:
        assert f"pip install 'satgan[{{extra}}]'" in str(exc), exc
    else:
        raise AssertionError(module + " imported without its optional package")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_requirements_files_name_every_declared_package():
    """make and colab_setup.sh install requirements.txt and requirements-nodeps.txt, not the
    package's metadata: they must not fall behind pyproject.toml."""
    named = set()
    for name in ("requirements.txt", "requirements-nodeps.txt"):
        for line in (REPO / name).read_text().splitlines():
            if line.split("#")[0].strip():
                named.add(requirement_name(line))
    assert set().union(*declared().values()) - named == set()
