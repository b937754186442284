"""Regenerate the pictures in docs/images/ (run from the repository root)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from satgan.data.synthetic import render_scene  # noqa: E402
from satgan.plots import overlay  # noqa: E402

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


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    synthetic_cities()
