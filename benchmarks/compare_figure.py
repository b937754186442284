"""Side by side for the eye: the same tiles drawn by several checkpoints, beside the mask
and the real image, each with its mask IoU under both judges (the reference segmenter, then
the second judge: "IoU 0.31 / 0.27").

    python benchmarks/compare_figure.py DATA NAME=CKPT[@SHARPEN] ... --out FIG.jpg
        [--indices 0,12,24,36,48,60] [--split val] [--seed 0]

``@SHARPEN`` overrides the checkpoint's unsharp-mask amount (``quick@2`` is today's
preset as it generates, ``@0`` the network's own output). Models fed noise draw each tile
with noise seed ``--seed``. Rows are tiles; columns: mask | each model | real.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from satgan.gallery.samples import add_mask_iou, build_gallery
from satgan.generation.loading import load_generators
from satgan.segmentation.segmenters import judge


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("models", nargs="+", help="NAME=CKPT or NAME=CKPT@SHARPEN")
    ap.add_argument("--out", required=True)
    ap.add_argument("--indices", default="0,12,24,36,48,60")
    ap.add_argument("--split", default="val")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--segmenter", default=None, help="the first judge; default: DATA's own reference segmenter")
    ap.add_argument("--segmenter-2", default=None, help="the second judge; default: DATA's own (dilated, seed 1)")
    args = ap.parse_args()

    specs, sharpen = [], {}
    for spec in args.models:
        spec, _, amount = spec.partition("@")
        specs.append(spec)
        if amount:
            sharpen[spec.split("=", 1)[0]] = float(amount)
    models = load_generators(specs)
    models = {name: replace(m, sharpen=sharpen.get(name, m.sharpen)).styled(None, args.seed)
              if m.noise or m.latent else replace(m, sharpen=sharpen.get(name, m.sharpen))
              for name, m in models.items()}
    indices = [int(i) for i in args.indices.split(",")]
    gallery = build_gallery(models, args.data, args.split, indices, scenes=0, style_masks=0, variations=0)
    first = dict(add_mask_iou(gallery, judge("mask_iou", args.segmenter, args.data)).ious)
    second = dict(add_mask_iou(gallery, judge("mask_iou_2", args.segmenter_2, args.data)).ious)

    side, pad, top = gallery.masks.shape[1], 4, 16
    columns = ["mask", *gallery.models, "real"]
    sheet = Image.new("RGB", (len(columns) * (side + pad), top + len(indices) * (side + top)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, title in enumerate(columns):
        draw.text((c * (side + pad) + 2, 2), title, fill="black")
    for r in range(len(indices)):
        y = top + r * (side + top)
        tiles = [np.repeat(gallery.masks[r][..., None], 3, 2), *(gallery.generated[m][r] for m in gallery.models),
                 gallery.reals[r]]
        for c, tile in enumerate(tiles):
            sheet.paste(Image.fromarray(tile), (c * (side + pad), y))
            name = columns[c]
            if name in first:
                draw.text((c * (side + pad) + 2, y + side + 2), f"IoU {first[name][r]:.2f} / {second[name][r]:.2f}",
                          fill="black")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
