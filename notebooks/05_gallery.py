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
# # 05 · Gallery
#
# Mask | generated | real, side by side: random (or chosen) validation samples per city,
# one column per model (`"name=path"` in `CHECKPOINTS` names it), so several checkpoints
# (baseline, instance norm, VGG loss, ...) are compared on the same masks; and whole
# scenes, their grid tiles reassembled in place. Everything is also written to
# `OUT_DIR`: `gallery.html` (self-contained, images inline), `figures/`, and `files/`
# with the old project's names (`MaskResized-austin1-2.jpeg`, `OriginalResized-...`,
# `<model>/Generated-...`), so old and new results sit side by side. The same as
# `satgan gallery CKPT... DATA --out OUT_DIR`.

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

from satgan.colab import resolve, resolve_spec, setup_notebook

WORKSPACE = setup_notebook()  # Drive folder on Colab, runs/ locally: relative paths start here

# %% tags=["parameters"]
DATA_DIR = "pretransformed/grid1-286"  # a folder written by notebook 02 / satgan pretransform
CHECKPOINTS = ["training/satgan/checkpoints/last.pt"]  # paths, each optionally prefixed by a name: one column each
OUT_DIR = "gallery"
# None: the default in satgan/config/ (GalleryConfig), where each setting is described
SPLIT = None  # which split
PER_CITY = None  # random samples per city
INDICES = []  # chosen sample indices instead of random ones
SCENES = None  # whole scenes per city, grid tiles reassembled
SEED = None  # which random samples
STYLE_MASKS = None  # city-conditioned models: samples drawn as every city
VARIATIONS = None  # models with a style code: samples per mask
TRUNCATION = None  # models with a style code: scale it by this (1: full variety; 0: the average style, noise varies)
MASK_IOU = None  # each tile's mask fidelity (IoU of its mask and what a segmenter finds in the image) beside it
SEGMENTER = None  # that segmenter: a saved .pt or a pretransformed folder that trains one; None: DATA_DIR's train split

# %%
from satgan.config import GalleryConfig
from satgan.gallery.files import gallery
from satgan.settings import build

checkpoints = [resolve_spec(s, WORKSPACE) for s in CHECKPOINTS]
config = build(GalleryConfig, out=str(resolve(OUT_DIR, WORKSPACE)), data=str(resolve(DATA_DIR, WORKSPACE)),
                       checkpoints=checkpoints, split=SPLIT, per_city=PER_CITY, indices=list(INDICES) or None,
                       scenes=SCENES, seed=SEED, style_masks=STYLE_MASKS, variations=VARIATIONS,
                       truncation=TRUNCATION, mask_iou=MASK_IOU,
                       segmenter=str(resolve(SEGMENTER, WORKSPACE)) if SEGMENTER else None)
result = gallery(config)
g = result["gallery"]
print(f"{len(g.names)} samples of {len(set(g.cities))} cities, models: {', '.join(g.models)}")
print(f"HTML: {result['html']}\n{len(result['files'])} files with the old names under {config.out}/files")

# %% [markdown]
# ## Per city

# %%
import matplotlib.pyplot as plt

from satgan.gallery.figures import scene_figure, side_by_side

for city in sorted(set(g.cities)):
    side_by_side(g, city).suptitle(city)
    plt.show()

# %% [markdown]
# ## Whole scenes
# Every tile of one image, generated separately and put back in place (tiles the density
# filter dropped stay grey).

# %%
for scene in g.scenes:
    scene_figure(scene)
    plt.show()

# %% [markdown]
# ## One mask, every city; one mask, several style codes
# For a city-conditioned model (`model.condition=city`): the same mask drawn as each city
# it knows. For a model with a style code (`model.latent`): the same mask drawn with
# different codes, which should differ where the mask says nothing (roofs, trees, roads)
# and agree on the buildings. Nothing shows for models without either.

# %%
from satgan.gallery.figures import style_figure, variations_figure

for entry in g.styles:
    style_figure(entry)
    plt.show()
for entry in g.variations:
    variations_figure(entry)
    plt.show()

# %% [markdown]
# ## Viewer
# Pick a sample and a model; drag `swipe` to slide between the generated image (left) and
# the real one (right). Under papermill the widget has no frontend; the figures above stay.

# %%
from satgan.gallery.figures import viewer

viewer(g)
