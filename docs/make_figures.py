"""Regenerate the pictures in docs/images/ (run from the repository root).

    python docs/make_figures.py                       # the synthetic cities
    python docs/make_figures.py runs/real/quick-geocompass quick_geocompass   # a training run
    python docs/make_figures.py --scene CKPT MASK_DIR   # a seamless scene of real masks mosaicked
    python docs/make_figures.py --synthetic runs/segbench geo geocompass   # forge, pairs, segbench of geo-*
    python docs/make_figures.py --compare DATA NAME quick=CKPT detail=CKPT ...   # val tiles, model by model
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from satgan.data.synthetic import render_scene  # noqa: E402
from satgan.gallery.plots import overlay, plot_training  # noqa: E402

OUT = Path(__file__).parent / "images"
CITIES = ("austin", "chicago", "kitsap", "tyrol-w", "vienna")


def synthetic_cities() -> None:
    """A 300 m square of each synthetic city: the image, and the mask laid over it."""
    fig, axes = plt.subplots(2, len(CITIES), figsize=(3 * len(CITIES), 6.2), layout="constrained")
    for col, city in enumerate(CITIES):
        image, mask = render_scene(city, 1000, seed=0, index=6)
        axes[0][col].imshow(image)
        axes[0][col].set_title(city)
        axes[1][col].imshow(overlay(image, mask > 0))
        for ax in axes[:, col]:
            ax.set_axis_off()
    fig.savefig(OUT / "synthetic_cities.jpg", dpi=80, pil_kwargs={"quality": 85})


def add_losses_from_tensorboard(run_dir: Path, history: list[dict]) -> None:
    """Epoch means of the logged loss terms, for runs whose history.json predates them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    steps = {h["epoch"]: h["step"] for h in history}
    for tag in events.Tags()["scalars"]:
        if not tag.startswith("loss/"):
            continue
        for h in history:
            start = steps.get(h["epoch"] - 1, 0)
            values = [e.value for e in events.Scalars(tag) if start < e.step <= h["step"]]
            if values:
                h[tag[5:]] = sum(values) / len(values)


def training_run(run_dir: Path, name: str) -> None:
    """The run's loss and validation curves, and its control images at the first and last validation."""
    history = json.loads((run_dir / "history.json").read_text())
    if not any("G_L1" in h for h in history):
        add_losses_from_tensorboard(run_dir, history)
    fig = plot_training(history)
    fig.savefig(OUT / f"{name}_curves.png", dpi=80)
    samples = sorted((run_dir / "samples").glob("epoch_*.png"))
    first, last = Image.open(samples[0]), Image.open(samples[-1])
    both = Image.new("RGB", (first.width * 2 + 16, first.height), "white")
    both.paste(first, (0, 0))
    both.paste(last, (first.width + 16, 0))
    both.save(OUT / f"{name}_first_last.jpg", quality=85)


def whole_scene(checkpoint: str, masks: Path) -> None:
    """A seamless scene at the checkpoint's training scale from real masks mosaicked into
    one 5000 px mask, with a zoom at full resolution where four windows meet (window
    borders dotted), and the lattice view (the same area with the windows moved)."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    from bench_generate import scene_mask  # the benchmark's mosaic: the same scene it measures

    from satgan.gallery.plots import plot_lattice
    from satgan.generation.loading import load_generator
    from satgan.generation.modes import OVERLAP, generate_seamless, seamless_window, window_starts

    gen = load_generator(checkpoint, "cpu")
    mask = scene_mask(str(masks))
    scale = gen.pixel_scale or 1.0
    scene = generate_seamless(gen, mask, scale, OVERLAP)
    win = seamless_window(gen, *scene.shape[:2])
    starts = window_starts(scene.shape[0], win, OVERLAP)
    k = len(starts) // 2  # a zoom centred where windows k-1, k overlap in both directions
    centre = (starts[k] + starts[k - 1] + win) // 2
    half = int(1.5 * gen.window)
    y0 = x0 = max(0, centre - half)
    fig, axes = plt.subplots(1, 3, figsize=(18, 6.4), layout="constrained")
    axes[0].imshow(mask[:: 4, :: 4], cmap="gray")
    axes[0].set_title(f"mask: {mask.shape[1]}x{mask.shape[0]} px of real masks ({masks.parent.parent.name})")
    axes[1].imshow(scene)
    axes[1].add_patch(plt.Rectangle((x0, y0), 2 * half, 2 * half, fill=False, edgecolor="yellow", linewidth=1.5))
    axes[1].set_title(f"seamless scene, {scene.shape[0]}x{scene.shape[1]} px (scale {scale:.2f}, {win} px windows, "
                      f"overlap {OVERLAP:g})")
    axes[2].imshow(scene[y0 : y0 + 2 * half, x0 : x0 + 2 * half])
    for s in starts:  # where each window begins, inside the zoom
        if 0 < s - y0 < 2 * half:
            axes[2].axhline(s - y0, color="white", linestyle=":", linewidth=0.8, alpha=0.6)
            axes[2].axvline(s - x0, color="white", linestyle=":", linewidth=0.8, alpha=0.6)
    axes[2].set_title("zoom at full resolution: window starts dotted")
    for ax in axes:
        ax.set_axis_off()
    fig.savefig(OUT / "whole_scene.jpg", dpi=80, pil_kwargs={"quality": 85})
    small = mask[: mask.shape[0] // 2, : mask.shape[1] // 2]
    plot_lattice(gen, small, scale, OVERLAP).savefig(OUT / "whole_scene_lattice.jpg", dpi=70,
                                                     pil_kwargs={"quality": 85})
    print(f"scene {scene.shape}, building fraction {mask.mean():.3f}, {np.mean(scene):.1f} mean grey")


def synthetic_set(folder: Path, name: str, title: str) -> None:
    """A synthetic training set's pictures, named after ``title``: ``<name>-forged/`` (its
    forge figure), ``<name>-synth/`` (synthesized pairs) and ``<name>-bench/`` (the segbench plot)."""
    from satgan.data.forge import FORGE_JSON
    from satgan.gallery.plots import plot_forge, plot_synthesized
    from satgan.synthetic.report import segbench_figure

    report = json.loads((folder / f"{name}-forged" / FORGE_JSON).read_text())
    report["folder"] = str(folder / f"{name}-forged" / "AerialImageDataset" / "train" / "gt")
    plot_forge(report).savefig(OUT / f"forge_{title}.jpg", dpi=70, pil_kwargs={"quality": 85})
    plot_synthesized(folder / f"{name}-synth", n=8).savefig(OUT / f"synthesized_{title}.jpg", dpi=70,
                                                          pil_kwargs={"quality": 85})
    bench = json.loads((folder / f"{name}-bench" / "report.json").read_text())
    segbench_figure(bench).savefig(OUT / f"segbench_{title}.png", dpi=80)


def compare_models(data: Path, name: str, checkpoints: list[str], tiles: int = 6) -> None:
    """``tiles`` validation tiles of ``data`` (spread over the split) as mask | flat fill |
    each checkpoint | real, one row per tile: ``compare_<name>.jpg``."""
    import numpy as np

    from satgan.data.arrays import split_samples
    from satgan.evaluation.baselines import FlatFill
    from satgan.generation.loading import load_generator, run_model

    models = {"flat fill": FlatFill.from_split(data, "val")}
    models.update({spec.split("=", 1)[0]: load_generator(spec.split("=", 1)[1], "cpu") for spec in checkpoints})
    batch = next(iter(split_samples(data, "val", 128, 10_000, None)))
    pick = np.linspace(0, len(batch["masks"]) - 1, tiles).round().astype(int)
    masks, cities = batch["masks"][pick], [batch["cities"][i] for i in pick]
    columns = {"mask": np.repeat(masks[..., None], 3, -1)}
    columns.update({label: run_model(model, masks, cities) for label, model in models.items()})
    columns["real"] = batch["images"][pick]
    fig, axes = plt.subplots(tiles, len(columns), figsize=(1.6 * len(columns), 1.6 * tiles), layout="constrained")
    for col, (label, images) in enumerate(columns.items()):
        axes[0, col].set_title(label, fontsize=8)
        for row in range(tiles):
            axes[row, col].imshow(images[row])
            axes[row, col].axis("off")
    fig.savefig(OUT / f"compare_{name}.jpg", dpi=80, pil_kwargs={"quality": 88})


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    if len(sys.argv) == 4 and sys.argv[1] == "--scene":
        whole_scene(sys.argv[2], Path(sys.argv[3]))
    elif len(sys.argv) == 5 and sys.argv[1] == "--synthetic":
        synthetic_set(Path(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif len(sys.argv) >= 4 and sys.argv[1] == "--compare":
        compare_models(Path(sys.argv[2]), sys.argv[3], sys.argv[4:])
    elif len(sys.argv) == 3:
        training_run(Path(sys.argv[1]), sys.argv[2])
    else:
        synthetic_cities()
