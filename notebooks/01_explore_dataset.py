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
# # 01 · Explore the dataset
#
# What is in a data folder before any training: how many image/mask pairs per city and
# split, their sizes, how much of each image is building, at the three tiling levels
# the project uses (1x1 "low", 2x2 "mid", 5x5 "high"), and what the pairs look like whole
# and tiled.
#
# Works on the Inria Aerial Image Labeling download (`AerialImageDataset/`), on a folder
# of your own (`images/` + `masks/`), or, with no data at all, on satgan's built-in
# synthetic data, which this notebook writes for you when `DATA_DIR` does not exist.

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
SYNTH_IF_MISSING = True  # write synthetic Inria-like data to DATA_DIR when it does not exist
SYNTH_SIZE = 1000  # pixels per side of the synthetic images (Inria: 5000)
SYNTH_PER_CITY = 6
GRIDS = [1, 2, 5]  # tiling levels to study
MAX_PAIRS_PER_CITY = 8  # masks read per city for the fraction statistics (0: all)
SEED = 0

# %%
import matplotlib.pyplot as plt
from IPython.display import display

from satgan.config import SynthConfig
from satgan.data.sources import open_source
from satgan.data.synthetic import synthesize_inria
from satgan.gallery import explore, plots

data_dir = resolve(DATA_DIR, WORKSPACE)
if not data_dir.exists() and SYNTH_IF_MISSING:
    synthesize_inria(SynthConfig(out=str(data_dir), size=SYNTH_SIZE, per_city=SYNTH_PER_CITY, seed=SEED))
source = open_source(data_dir, skip_unpaired=True)
print(f"{source.kind} dataset at {source.root}")

# %% [markdown]
# ## Pairs per city and split
# For Inria, images 1-5 of each city are the customary validation split.

# %%
print(explore.count_table(source))
if source.test_images:
    print(f"\n{len(source.test_images)} test images without masks (not used for training)")
print("\nimage sizes:", dict(explore.size_counts(source)))

# %% [markdown]
# ## How much of a tile is building?
# The building fraction of every tile, per city, at each grid level. Finer grids spread
# the fractions out: many tiles hold no building at all, which is what the density
# filter of notebook 02 (`MIN_DENSITY`) is for.

# %%
import numpy as np

rng = np.random.default_rng(SEED)
picked = []
for city in source.cities:
    pairs = [p for p in source.pairs if p.city == city]
    if MAX_PAIRS_PER_CITY and len(pairs) > MAX_PAIRS_PER_CITY:
        pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), MAX_PAIRS_PER_CITY, replace=False))]
    picked += pairs
fractions = explore.building_fractions(picked, GRIDS)
plots.plot_fraction_histograms(fractions)
plt.show()

rows = [[city, *(float(by_grid[g].mean()) for g in GRIDS),
         *(float((by_grid[g] == 0).mean()) for g in GRIDS)] for city, by_grid in fractions.items()]
print(explore.format_table(["city", *(f"mean {g}x{g}" for g in GRIDS), *(f"empty {g}x{g}" for g in GRIDS)], rows))

# %% [markdown]
# ## Sample pairs, whole and tiled
# One pair per city: the image with the tile grid, the mask laid over it, and the tiles
# with their building fractions.

# %%
for city in source.cities:
    pair = next(p for p in source.pairs if p.city == city)
    plots.plot_pair(pair, grid=max(GRIDS))
    plt.show()

# %% [markdown]
# ## Browse
# Pick a city, an image and a grid. The browser needs a live kernel; a saved or
# headless run keeps the static figure drawn below it.

# %%
display(plots.pair_browser(source, GRIDS))
plots.plot_pair(source.pairs[0], grid=GRIDS[len(GRIDS) // 2])
plt.show()
