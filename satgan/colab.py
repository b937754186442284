"""Colab support: mount Google Drive and choose the folder relative paths resolve against.

A notebook's first cell calls :func:`setup_notebook`. On Colab it mounts Drive and returns
``/content/drive/MyDrive/satgan``, so data, arrays and runs outlive the runtime; elsewhere
it mounts nothing and returns ``$SATGAN_WORKSPACE`` or the checkout's ``runs/`` folder.
Parameters that are relative paths are then resolved with :func:`resolve` against it,
and absolute ones are kept, which is how papermill jobs and tests pass their own paths.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

from satgan.config import model_spec

# Overridable ($SATGAN_COLAB_MOUNT) so tests can stand in for Colab without touching /content.
COLAB_MOUNT = "/content/drive"
DRIVE_FOLDER = "satgan"


def in_colab() -> bool:
    """Whether this kernel runs on Google Colab (the ``google.colab`` module exists)."""
    try:
        return importlib.util.find_spec("google.colab") is not None
    except ModuleNotFoundError:
        return False


def mount_drive(mount_point: str | None = None) -> Path:
    """Mount Google Drive (Colab only) and return the satgan folder in ``MyDrive``."""
    from google.colab import drive  # only on Colab

    mount_point = mount_point or os.environ.get("SATGAN_COLAB_MOUNT", COLAB_MOUNT)
    drive.mount(mount_point)
    folder = Path(mount_point) / "MyDrive" / DRIVE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def local_workspace() -> Path:
    """``$SATGAN_WORKSPACE``, else ``runs/`` of the source checkout, else ``./runs``."""
    if os.environ.get("SATGAN_WORKSPACE"):
        return Path(os.environ["SATGAN_WORKSPACE"]).expanduser()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").exists():
        return checkout / "runs"
    return Path.cwd() / "runs"


def setup_notebook() -> Path:
    """Mount Drive on Colab; return the workspace folder relative paths resolve against."""
    workspace = mount_drive() if in_colab() else local_workspace()
    workspace.mkdir(parents=True, exist_ok=True)
    print(f"workspace: {workspace}" + (" (Google Drive)" if in_colab() else ""))
    return workspace


def resolve(path: str | os.PathLike, workspace: str | os.PathLike) -> Path:
    """``path`` if absolute, else ``workspace / path``."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else Path(workspace) / path


def resolve_spec(spec: str, workspace: str | os.PathLike) -> str:
    """A checkpoint given as ``path`` or ``name=path``, its path resolved as :func:`resolve` does."""
    name, path = model_spec(spec)
    return f"{name}={resolve(path, workspace)}"


# -- where Colab clones from ------------------------------------------------------------------------
# The setup cell runs before satgan is installed, so each notebook carries the URL itself; the
# one place it is set is pyproject.toml's [project.urls] Repository, copied by set_repository.
CHECKOUT = Path(__file__).resolve().parents[1]
SETUP_LINE = re.compile(r'(REPO = os\.environ\.get\("SATGAN_REPO", ")([^"]*)("\))')
BADGE = re.compile(r"(https://colab\.research\.google\.com/github/)([^/]+/[^/]+)(/blob/)")
PYPROJECT_LINE = re.compile(r'(?m)^(Repository = ")([^"]*)(")')
GITHUB = re.compile(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?")


def repository_url(checkout: Path = CHECKOUT) -> str:
    """The repository notebooks clone from on Colab: pyproject.toml's ``Repository`` URL."""
    found = PYPROJECT_LINE.search((checkout / "pyproject.toml").read_text())
    if not found:
        raise ValueError(f"{checkout / 'pyproject.toml'}: no [project.urls] Repository line")
    return found.group(2)


def set_repository(url: str, checkout: Path = CHECKOUT) -> list[Path]:
    """Point pyproject.toml, every notebook's setup cell (the jupytext .py; regenerate the
    .ipynb with ``make notebooks``) and the README's Colab badges at ``url``, a GitHub
    repository (https://github.com/OWNER/NAME). Returns the files changed."""
    found = GITHUB.fullmatch(url.strip())
    if not found:
        raise ValueError(f"{url!r}: give a GitHub repository as https://github.com/OWNER/NAME "
                         "(Colab's badges open notebooks from GitHub)")
    url, slug = f"https://github.com/{found.group(1)}", found.group(1)
    edits = [(checkout / "pyproject.toml", PYPROJECT_LINE, url), (checkout / "README.md", BADGE, slug)]
    edits += [(nb, SETUP_LINE, url) for nb in sorted((checkout / "notebooks").glob("*.py"))]
    changed = []
    for path, pattern, value in edits:
        text = path.read_text()
        new = pattern.sub(lambda m, v=value: m.group(1) + v + m.group(3), text)
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


if __name__ == "__main__":  # make repository URL=...
    try:
        changed_files = set_repository(sys.argv[1] if len(sys.argv) > 1 else "")
    except ValueError as exc:
        sys.exit(f"make repository: {exc}")
    for changed in changed_files:
        print(f"updated {changed}")
