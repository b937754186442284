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
