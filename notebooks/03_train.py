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
# # 03 · Train
#
# pix2pix on the arrays notebook 02 wrote: the generator learns to turn a building mask
# into a satellite-like image; a discriminator judges (mask, image) pairs. `DISCRIMINATOR`
# picks it: `patch` (pix2pix's PatchGAN), `projected` (small heads on frozen ImageNet
# features, with the mask at each scale), `projected_seg` (the same, and a head that labels
# every pixel ground, building or fake: the presets' choice) or `oasis` (that labelling
# alone, on a U-Net); empty keeps the preset's.
#
# The `satgan` and `quick` presets also train with the alignment loss (`loss.seg_weight`): a
# frozen building segmenter, trained once on your train split before the first epoch (a few
# minutes on a CPU, then cached), reads every generated image and the generator pays for the
# buildings it misreads. It never judges the model: notebook 04's segmenters are built
# differently. `"loss.seg_weight=0"` turns it off.
#
# Everything the old project tried is a setting, not a code edit: pick a `PRESET`
# (`pix2pix`: the reference; `satgan`: our default; `quick`: small, for CPUs) and change
# single settings with `OVERRIDES`, e.g. `"model.norm=batch"`, `"loss.vgg_weight=10"`,
# `"loss.gan_weight=0"` (generator alone), `"data.crop=512"`, `"train.scheduler=plateau"`.
#
# On Colab the run directory is on Drive and `RESUME = "auto"` continues from the last
# checkpoint after a disconnect. The same as
# `satgan train DATA_DIR RUN_DIR --preset PRESET --set ... --resume auto`.

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
DATA_DIR = "pretransformed/grid1-286"  # a folder written by notebook 02 / satgan pretransform
RUN_DIR = "training/satgan"  # checkpoints, samples and TensorBoard logs go here
PRESET = "satgan"  # pix2pix | satgan | quick
OVERRIDES = []  # settings to change, written as in the text above (section, key, value)
EPOCHS = 0  # 0: the preset's
CONDITION = "none"  # city: draw each tile as its city (its manifest label); generation then picks the city
LATENT = 0  # > 0: a random style code of this many numbers, for different images of one mask
MODE_SEEKING = 0.0  # with LATENT: how hard two codes must give different images (MSGAN; 1 is usual)
DISCRIMINATOR = ""  # patch | projected | projected_seg | oasis; empty: the preset's
RESUME = "auto"  # auto: continue from the newest intact checkpoint in RUN_DIR; never: start fresh
OVERWRITE = False  # start over in a RUN_DIR that holds another run
TENSORBOARD = True  # show TensorBoard inline (off for headless runs)

# %%
from satgan.config import make_config, to_dict

# the parameters first, so that OVERRIDES can still say anything
overrides = [f"model.condition={CONDITION}", f"model.latent={LATENT}", f"loss.mode_seeking={MODE_SEEKING}"]
overrides += [f"model.discriminator={DISCRIMINATOR}"] if DISCRIMINATOR else []
overrides += list(OVERRIDES) + ([f"train.epochs={EPOCHS}"] if EPOCHS else [])
config = make_config(PRESET, overrides=overrides)
data_dir, run_dir = resolve(DATA_DIR, WORKSPACE), resolve(RUN_DIR, WORKSPACE)
for section, values in to_dict(config).items():
    print(f"{section:6s} {values}")

# %% [markdown]
# ## TensorBoard
# Every loss term, learning rates, validation PSNR/SSIM, samples/s and control images.

# %% tags=["tensorboard"]
if TENSORBOARD:
    # %load_ext tensorboard
    # %tensorboard --logdir {run_dir}/tb
    pass

# %% [markdown]
# ## Train
# The plot below updates after every epoch: mean losses; the discriminator's health (the
# share of real pairs it calls real and of generated ones it calls fake: both near 0.5
# for the whole run means a discriminator at chance that teaches the generator nothing);
# validation PSNR (on [0, 1] images) and SSIM on a fixed validation subset, and, where
# the FID Inception file is installed, the subset's KID: realism, which pixel errors do
# not show (a blurry image can score a good PSNR). With a dozen images KID is noisy:
# watch its trend, and score finished models with notebook 04.

# %%
from satgan.gallery.plots import LiveTrainingPlot
from satgan.training.trainer import train

metrics = train(data_dir, run_dir, config, resume=RESUME, overwrite=OVERWRITE, on_epoch_end=LiveTrainingPlot())
print(metrics)

# %% [markdown]
# ## Control images: mask | generated | real
# The fixed validation samples at the first and the last validation.

# %%
import matplotlib.pyplot as plt
from PIL import Image

samples = sorted((run_dir / "samples").glob("epoch_*.png"))
fig, axes = plt.subplots(1, min(2, len(samples)), figsize=(12, 8), squeeze=False, layout="constrained")
for ax, path in zip(axes[0], [samples[0], samples[-1]][: len(samples)]):
    ax.imshow(Image.open(path))
    ax.set_title(path.stem)
    ax.set_axis_off()
plt.show()
