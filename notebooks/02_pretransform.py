# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Pretransform
#
# Training reads tiles, not 5000x5000 TIFFs. This notebook cuts every pair once into an
# NxN grid of tiles, resizes them to `SIZE` (antialiased for images, area coverage for
# masks), drops tiles with less building than `MIN_DENSITY`, and writes one uint8
# array per split that training memory-maps: `OUT_DIR/<split>/images.npy`,
# `masks.npy` and `OUT_DIR/manifest.json`.
#
# The same as `satgan pretransform DATA_DIR OUT_DIR --grid N --size S --min-density D`.
# A rerun after an interruption finishes the work; a rerun when it is done returns at once.

# %%
# Colab: install satgan and mount Google Drive. Elsewhere this cell only imports satgan.
import importlib.util
import os
import subprocess
import sys

try:
    IN_COLAB = importlib.util.find_spec("google.colab") is not None
except ModuleNotFoundError:  # no "google" package at all
    IN_COLAB = False
if IN_COLAB and importlib.util.find_spec("satgan") is None:
    REPO = os.environ.get("SATGAN_REPO", "https://github.com/satgan/satgan")
    if not os.path.isdir("/content/satgan"):
        subprocess.run(["git", "clone", "--depth", "1", REPO, "/content/satgan"], check=True)
    subprocess.run(["bash", "/content/satgan/colab_setup.sh"], check=True)
    sys.path.insert(0, "/content/satgan")

from satgan.colab import resolve, setup_notebook

WORKSPACE = setup_notebook()  # Drive folder on Colab, runs/ locally: relative paths start here

# %% tags=["parameters"]
DATA_DIR = "synthetic"  # Inria AerialImageDataset (or its parent), or a paired folder
OUT_DIR = "pretransformed/grid1-286"
# None: the default in satgan/config/ (PretransformConfig), where each setting is described
GRID = None  # NxN tiles per image: 1 "low", 2 "mid", 5 "high"
SIZE = None  # tile side after resizing (training crops CROP from it)
MIN_DENSITY = None  # drop tiles whose building fraction is below this (0-1)
VAL = ""  # comma-separated stems or globs for the val split; "" keeps the layout's own
CROP = None  # the training crop the tiles must allow
WORKERS = 2
SKIP_UNPAIRED = None  # True: leave out images without masks instead of stopping
LABELS = None  # each pair's style label (city): a stem,label CSV or a regex on the stem; None: the city/folder
OVERWRITE = None  # True: replace an OUT_DIR made with other settings
N_SAMPLES = 8  # tiles shown per split
SEED = 0  # which tiles are shown

# %%
import matplotlib.pyplot as plt

from satgan.config import PretransformConfig
from satgan.data.pretransform import pretransform
from satgan.gallery import plots
from satgan.settings import build

# every parameter is checked here, with a message naming it
config = build(
    PretransformConfig,
    source=str(resolve(DATA_DIR, WORKSPACE)),
    out=str(resolve(OUT_DIR, WORKSPACE)),
    grid=GRID,
    size=SIZE,
    min_density=MIN_DENSITY,
    val=VAL.split(",") if VAL else None,
    crop=CROP,
    workers=WORKERS,
    skip_unpaired=SKIP_UNPAIRED,
    labels=LABELS,
    overwrite=OVERWRITE,
)
manifest = pretransform(config)

# %% [markdown]
# ## What was written

# %%
from satgan.gallery.explore import format_table

rows = [[split, info["tiles_before_filter"], info["count"], str(tuple(info["image_shape"])),
         f"{(info['image_shape'][0] * config.size * config.size * 4) / 2**20:.1f} MiB"]
        for split, info in manifest["splits"].items()]
print(format_table(["split", "tiles", "kept", "images.npy shape", "on disk"], rows))
print("content hash:", manifest["content_hash"][:16])

# %% [markdown]
# ## The density filter
# Building fraction of all tiles (grey) and of the kept ones (blue).

# %%
plots.plot_filter_histogram(manifest)
plt.show()

# %% [markdown]
# ## Random samples from the arrays
# Exactly what training will read (before its random crop and flips).

# %%
for split in manifest["splits"]:
    plots.plot_array_samples(config.out, split, n=N_SAMPLES, seed=SEED)
    plt.show()
