"""Regenerate the pictures in docs/images/ (run from the repository root).

    python docs/make_figures.py                       # the synthetic cities
    python docs/make_figures.py runs/real/quick-geocompass quick_geocompass   # a training run
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from satgan.data.synthetic import render_scene  # noqa: E402
from satgan.plots import overlay, plot_training  # noqa: E402

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


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    if len(sys.argv) == 3:
        training_run(Path(sys.argv[1]), sys.argv[2])
    else:
        synthetic_cities()
