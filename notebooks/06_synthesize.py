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
# # 06 · Synthesize
#
# Does a generator make segmentation training data worth having? Three steps, each also a
# command:
#
# 1. **Forge** new building masks (`satgan forge`): procedural layouts of the built-in
#    cities, real buildings rearranged into new layouts, or real masks edited.
# 2. **Synthesize** an image for every forged mask with a trained checkpoint
#    (`satgan synthesize`): a dataset in the Inria layout that any segmentation tool reads,
#    then pretransformed like real data.
# 3. **Measure** (`satgan segbench`): a small U-Net segmenter trained with the same budget
#    and seeds on real tiles only, real tiles mixed with a share of synthetic ones in every
#    batch, pre-training on synthetic tiles then fine-tuning on real ones, those two with
#    implausible synthetic pixels filtered out (`FILTER`), and synthetic tiles alone,
#    scored by IoU and F1 on real tiles none of them saw. It ends with the gain over real
#    only, its standard error over seeds, and whether to use the synthetic set.
#
# **No leakage.** The claim "synthetic pairs help a segmenter that has N real pairs" needs a
# generator trained on those N pairs and nothing else: train it (notebook 03) on `REAL_DIR`
# itself, forge from `REAL_DIR`'s own masks, and keep `FRACTIONS` at `[1.0]`. The report
# says which claim it makes (it compares the checkpoint's training data with `REAL_DIR`).
# With a large labelled set, `satgan subset` makes a folder of N of its pairs to run the
# whole chain on (`benchmarks/synthetic_gain.py` does that for several N).
#
# Everything goes under `OUT_DIR`: `forged/`, `synthesized/`, `pretransformed/`, `segbench/`.

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
CHECKPOINT = "training/satgan/checkpoints/last.pt"  # the generator (notebook 03)
REAL_DIR = "pretransformed/grid1-286"  # real pairs (notebook 02): segbench trains on train, scores val
SOURCE = "all"  # procedural: cities (comma-separated, or all); rearrange/edit: a dataset of masks
OUT_DIR = "synthetic"
METHOD = "procedural"  # procedural | rearrange | edit
COUNT = 20  # masks to forge
SIZE = 1000  # their side in pixels (rearrange/edit: at most the source masks' side)
OVERWRITE = False  # forge and synthesize afresh in an OUT_DIR that holds an earlier run (e.g. a new checkpoint)
# None: the synthesized images are cut like the real ones, REAL_DIR's grid and tile size
GRID = None
TILE_SIZE = None
# None: the default in satgan/config/ (ForgeConfig, SynthesizeConfig, SegbenchConfig)
SEED = None  # the forge's seed
STRENGTH = None  # edit: how much each mask changes
MODE = None  # synthesize: seamless (whole masks) or resize (one tile per mask)
VARIANTS = None  # synthesize: generations per mask
DROPOUT = None  # synthesize: dropout as noise, seeded per image
STEPS = None  # segbench: training steps per run
SEEDS = None  # segbench: seeds per arm
FRACTIONS = None  # segbench: fractions of the real training tiles
SHARES = None  # segbench: shares of synthetic tiles in every batch, one mixing arm each
PRETRAIN = None  # segbench: share of the steps pre-trained on synthetic tiles before real ones (0: no such arm)
FILTER = None  # segbench: also every synthetic arm with pixels filtered at K (e.g. 1.25; None: no filter)
SYNTHETIC_ONLY = None  # segbench: also an arm of synthetic tiles alone
SEG_CROP = None  # segbench: training crop
SEG_NGF = None  # segbench: U-Net width

# %%
from satgan.config import ForgeConfig, PretransformConfig, SegbenchConfig, SynthesizeConfig
from satgan.settings import build

out = resolve(OUT_DIR, WORKSPACE)
checkpoint, real = resolve(CHECKPOINT, WORKSPACE), resolve(REAL_DIR, WORKSPACE)
source = SOURCE if METHOD == "procedural" else str(resolve(SOURCE, WORKSPACE))
forged, synthesized, bench = out / "forged", out / "synthesized", out / "segbench"

# %% [markdown]
# ## 1 · Forge masks
#
# `forge.json` beside the masks records the method, its settings and seed, the source
# files' hashes and, per mask, its building count and fraction. For `rearrange` and `edit`
# each forged mask is shown under the source window it was made from; the histograms
# compare the source's masks with the forged ones.

# %%
import json

import matplotlib.pyplot as plt

from satgan.data.forge import FORGE_JSON, forge
from satgan.gallery.plots import plot_forge

forge_config = build(ForgeConfig, source=source, out=str(forged), method=METHOD, count=COUNT, size=SIZE, seed=SEED,
                     strength=STRENGTH, overwrite=True)
if OVERWRITE or not (forged / FORGE_JSON).exists():
    report = forge(forge_config)
else:
    report = json.loads((forged / FORGE_JSON).read_text())
    report["folder"] = str(forged / "AerialImageDataset" / "train" / "gt")
    print(f"{forged}: kept the earlier forge (OVERWRITE = True to forge again)")
print(f"{len(report['masks'])} masks, building fraction {report['distribution']['fraction']['mean']:.1%} on average")
plot_forge(report)
plt.show()

# %% [markdown]
# ## 2 · Synthesize images
#
# One image per forged mask (per variant), written beside a copy of the mask at the
# image's size. Rerunning with the same settings keeps what is done: an interrupted run
# picks up where it stopped (`OVERWRITE` starts it afresh, e.g. for a new checkpoint).

# %%
import shutil

from satgan.gallery.plots import plot_synthesized
from satgan.synthetic.synthesize import MANIFEST, synthesize

synth_config = build(SynthesizeConfig, checkpoint=str(checkpoint), masks=str(forged), out=str(synthesized),
                     mode=MODE, variants=VARIANTS, dropout=DROPOUT)
if OVERWRITE and (synthesized / MANIFEST).exists():  # only a folder synthesize wrote
    shutil.rmtree(synthesized)
result = synthesize(synth_config)
print(f"{result['written']} images written, {result['kept']} kept from before, {result['removed']} removed, "
      f"{len(result['failed'])} failed")
plot_synthesized(synthesized)
plt.show()

# %% [markdown]
# Several variants of one mask (`VARIANTS` >= 2 with `DROPOUT`, or a model with a style
# code or noise) differ where the mask says nothing; how much, in pixels (mean absolute
# difference, images in [0, 1]):

# %%
from satgan.synthetic.synthesize import variant_diversity

if synth_config.variants > 1:
    print(variant_diversity(synthesized))
else:
    print("one variant per mask (VARIANTS = 1): no diversity to measure")

# %% [markdown]
# ## 3 · Pretransform the synthetic pairs like the real ones

# %%
from satgan.data.arrays import load_manifest
from satgan.data.pretransform import pretransform

real_settings = load_manifest(real)["settings"]
grid, size = GRID or real_settings["grid"], TILE_SIZE or real_settings["size"]
arrays = out / "pretransformed" / f"grid{grid}-{size}"
# overwrite: the synthesized set changes when the forge does; with the same inputs this is a no-op
pretransform(build(PretransformConfig, source=str(synthesized), out=str(arrays), grid=grid, size=size,
                   crop=min(256, size), overwrite=True))
print(f"synthetic tiles: {load_manifest(arrays)['splits']['train']['count']} at grid {grid}, {size} px "
      f"(as the real ones)")

# %% [markdown]
# ## 4 · Does it help? Segmentation with and without synthetic pairs
#
# Every arm trains the same network for the same steps from the same initial weights per
# seed; mixes keep their fraction's real tiles and give a share of every batch to synthetic
# ones. ΔIoU is each arm's mean IoU minus that of its real-only arm, paired by seed, ± its
# standard error: positive means the synthetic pairs helped, `*` that it is more than
# twice its standard error.

# %%
from satgan.synthetic.report import format_table, segbench_figure
from satgan.synthetic.segbench import segbench

bench_config = build(SegbenchConfig, real=str(real), out=str(bench), synthetic=str(arrays), steps=STEPS,
                     seeds=SEEDS, fractions=FRACTIONS, shares=SHARES, pretrain=PRETRAIN, filter=FILTER,
                     synthetic_only=SYNTHETIC_ONLY, crop=SEG_CROP, ngf=SEG_NGF, generator=str(checkpoint))
bench_report = segbench(bench_config)
print(format_table(bench_report))
segbench_figure(bench_report)

# %% [markdown]
# ## 5 · What to do with it
#
# The gain of the best arm, its uncertainty, whether to use the synthetic set, and which
# claim the table makes (no leakage, or a generator that saw other data). The report is in
# `segbench/report.json` (every run, every arm), `report.md` (the table and these
# sentences) and `report.png` (the figure).

# %%
print(bench_report["recommendation"])
print(bench_report["generator"]["sentence"])
