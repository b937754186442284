"""The ``satgan`` command line (also ``python -m satgan``).

Each sub-command builds the same config object a notebook builds and calls the same
library function; defaults come from :mod:`satgan.config`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from collections.abc import Sequence

import satgan
from satgan.config import PretransformConfig, SynthConfig
from satgan.errors import SatganError


def _default(cls: type, name: str):
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _cmd_synth(args: argparse.Namespace) -> int:
    from satgan.data.synthetic import synthesize_inria

    cfg = SynthConfig(
        out=args.out, cities=args.cities, per_city=args.per_city, test_per_city=args.test_per_city,
        size=args.size, seed=args.seed, workers=args.workers,
    )
    root = synthesize_inria(cfg)
    print(f"wrote {root}")
    return 0


def _cmd_pretransform(args: argparse.Namespace) -> int:
    from satgan.data.pretransform import pretransform

    cfg = PretransformConfig(
        source=args.source, out=args.out, grid=args.grid, size=args.size, min_density=args.min_density,
        val=args.val, crop=args.crop, workers=args.workers, skip_unpaired=args.skip_unpaired,
        overwrite=args.overwrite,
    )
    manifest = pretransform(cfg)
    for split, info in manifest["splits"].items():
        print(f"{split}: {info['count']} of {info['tiles_before_filter']} tiles -> {args.out}/{info['images']}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from satgan.config import make_config
    from satgan.train import train

    cfg = make_config(args.preset, args.config, args.set)
    metrics = train(args.data, args.run_dir, cfg, resume=args.resume, overwrite=args.overwrite)
    if metrics:
        print(f"done: val PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f} -> {args.run_dir}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from satgan.config import GenerateConfig
    from satgan.inference import generate

    cfg = GenerateConfig(
        checkpoint=args.checkpoint, input=args.input, out=args.out, mode=args.mode, grid=args.grid,
        scale=args.scale, overlap=args.overlap, batch_size=args.batch_size, device=args.device,
        dropout=args.dropout, seed=args.seed, split=args.split, limit=args.limit, preview_size=args.preview_size,
    )
    result = generate(cfg)
    scale = f" at scale {result['scale']:g}" if result["scale"] else ""
    print(f"wrote {len(result['written'])} files{scale} to {args.out}")
    if result["failed"]:
        print(f"{len(result['failed'])} input file(s) failed: {', '.join(result['failed'])}", file=sys.stderr)
        return 1
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from satgan.config import EvaluateConfig
    from satgan.evaluation import evaluate, format_rows, report_rows

    paths = list(args.paths)
    folder_mode = bool(args.generated or args.real)
    if not folder_mode and len(paths) < 1:
        raise SatganError("give CKPT [CKPT ...] DATA, or --generated DIR --real DIR")
    data = None if folder_mode else paths.pop()
    cfg = EvaluateConfig(
        out=args.out, checkpoints=paths, data=data, split=args.split, limit=args.limit, baselines=args.baselines,
        generated=args.generated, real=args.real, inception=args.inception, kid_subsets=args.kid_subsets,
        batch_size=args.batch_size, device=args.device,
    )
    report = evaluate(cfg)
    print(format_rows(report_rows(report, cities=args.cities)))
    if not report["inception"]["available"]:
        print(f"FID/KID not computed: {report['inception']['reason']}", file=sys.stderr)
    skipped = report.get("skipped") or {}
    if skipped:
        print(f"{len(skipped)} file(s) could not be read: {', '.join(skipped)}", file=sys.stderr)
    print(f"report: {args.out}")
    return 1 if skipped else 0


def _cmd_gallery(args: argparse.Namespace) -> int:
    from satgan.config import GalleryConfig
    from satgan.gallery import gallery

    *checkpoints, data = args.paths
    if not checkpoints:
        raise SatganError("give CKPT [CKPT ...] DATA: at least one checkpoint, then a pretransformed folder")
    cfg = GalleryConfig(
        out=args.out, data=data, checkpoints=checkpoints, split=args.split, per_city=args.per_city,
        indices=args.indices, scenes=args.scenes, seed=args.seed, batch_size=args.batch_size, device=args.device,
    )
    result = gallery(cfg)
    print(f"{len(result['gallery'].names)} samples, {len(result['gallery'].scenes)} scenes: {result['html']}, "
          f"{len(result['figures'])} figures, {len(result['files'])} files under {args.out}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from pathlib import Path

    from satgan.data.pretransform import MANIFEST, PARTS, load_manifest

    if (Path(args.path) / MANIFEST).exists() or (Path(args.path) / PARTS).exists():
        manifest = load_manifest(args.path)
        summary = {split: {"count": i["count"], "shape": i["image_shape"]} for split, i in manifest["splits"].items()}
        print(json.dumps({"settings": manifest["settings"], "splits": summary}, indent=1))
    else:
        from satgan.data.sources import open_source
        from satgan.explore import count_table

        source = open_source(args.path, skip_unpaired=True)
        print(f"{source.kind} dataset at {source.root}")
        print(count_table(source))
        if source.test_images:
            print(f"{len(source.test_images)} test images without masks")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="satgan", description="satgan: satellite-like images from building masks")
    parser.add_argument("--version", action="version", version=f"satgan {satgan.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="write built-in synthetic data in the Inria layout")
    p.add_argument("out", help="folder to write AerialImageDataset/ into")
    p.add_argument("--cities", type=_csv, default=_default(SynthConfig, "cities"), help="comma-separated")
    p.add_argument("--per-city", type=int, default=_default(SynthConfig, "per_city"),
                   help="training pairs per city (1-5 are the val split)")
    p.add_argument("--test-per-city", type=int, default=_default(SynthConfig, "test_per_city"))
    p.add_argument("--size", type=int, default=_default(SynthConfig, "size"), help="pixels per side")
    p.add_argument("--seed", type=int, default=_default(SynthConfig, "seed"))
    p.add_argument("--workers", type=int, default=_default(SynthConfig, "workers"))
    p.set_defaults(run=_cmd_synth)

    p = sub.add_parser("pretransform", help="cut pairs into tiles and write training arrays")
    p.add_argument("source", help="Inria AerialImageDataset (or its parent), or a paired folder")
    p.add_argument("out", help="output folder")
    p.add_argument("--grid", type=int, default=_default(PretransformConfig, "grid"),
                   help="NxN tiles per image: 1 low, 2 mid, 5 high")
    p.add_argument("--size", type=int, default=_default(PretransformConfig, "size"), help="tile side after resizing")
    p.add_argument("--min-density", type=float, default=_default(PretransformConfig, "min_density"),
                   help="drop tiles with a smaller building fraction (0-1)")
    p.add_argument("--val", type=_csv, default=None,
                   help="comma-separated stems or globs forming the val split (default: the layout's own)")
    p.add_argument("--crop", type=int, default=_default(PretransformConfig, "crop"),
                   help="training crop the tiles must allow")
    p.add_argument("--workers", type=int, default=_default(PretransformConfig, "workers"))
    p.add_argument("--skip-unpaired", action="store_true", help="leave out images without masks")
    p.add_argument("--overwrite", action="store_true", help="replace an output made with other settings")
    p.set_defaults(run=_cmd_pretransform)

    from satgan.config import PRESETS

    p = sub.add_parser("train", help="train pix2pix on pretransformed arrays (torchrun for several GPUs)")
    p.add_argument("data", help="a pretransformed folder (satgan pretransform)")
    p.add_argument("run_dir", help="checkpoints, samples, TensorBoard logs go here")
    p.add_argument("--preset", default="satgan", choices=list(PRESETS), help="starting settings")
    p.add_argument("--config", help="JSON file of settings by section (e.g. a run's config.json)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting, e.g. train.lr=1e-4 (repeatable)")
    p.add_argument("--resume", default="never",
                   help="never (default), auto (newest intact checkpoint in RUN_DIR), or a checkpoint path")
    p.add_argument("--overwrite", action="store_true", help="start over in a RUN_DIR that holds a run")
    p.set_defaults(run=_cmd_train)

    from satgan.config import EvaluateConfig, GenerateConfig
    from satgan.inference import MODES

    p = sub.add_parser("generate", help="images from masks with a checkpoint: resize, grid or seamless")
    p.add_argument("checkpoint", help="a checkpoint (RUN_DIR/checkpoints/last.pt)")
    p.add_argument("input", help="a mask file, a folder of masks, or a pretransformed folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--mode", default=_default(GenerateConfig, "mode"), choices=MODES)
    p.add_argument("--grid", type=int, default=_default(GenerateConfig, "grid"), help="grid mode: NxN tiles")
    p.add_argument("--scale", type=float, default=None,
                   help="seamless: mask pixels per output pixel (default: the checkpoint's training scale)")
    p.add_argument("--overlap", type=float, default=_default(GenerateConfig, "overlap"),
                   help="seamless: least overlap of neighbouring windows (0-1)")
    p.add_argument("--batch-size", type=int, default=_default(GenerateConfig, "batch_size"))
    p.add_argument("--device", default=_default(GenerateConfig, "device"))
    p.add_argument("--dropout", action="store_true", help="keep pix2pix's dropout on as noise")
    p.add_argument("--seed", type=int, default=_default(GenerateConfig, "seed"), help="with --dropout")
    p.add_argument("--split", default=_default(GenerateConfig, "split"), help="pretransformed input: split")
    p.add_argument("--limit", type=int, default=None, help="pretransformed input: at most N tiles")
    p.add_argument("--preview-size", type=int, default=_default(GenerateConfig, "preview_size"))
    p.set_defaults(run=_cmd_generate)

    p = sub.add_parser("evaluate", help="PSNR, SSIM, FID and KID per city and overall, as a JSON report")
    p.add_argument("paths", nargs="*", metavar="CKPT [CKPT ...] DATA",
                   help="checkpoints (optionally NAME=PATH) then a pretransformed folder")
    p.add_argument("--out", required=True, help="the JSON report to write")
    p.add_argument("--split", default=_default(EvaluateConfig, "split"))
    p.add_argument("--limit", type=int, default=None, help="at most N samples")
    p.add_argument("--baselines", type=_csv, default=[], help="comma-separated: flat, untrained")
    p.add_argument("--generated", help="folder mode: generated images, matched by name with --real")
    p.add_argument("--real", help="folder mode: the real images")
    p.add_argument("--inception", help="path to the FID Inception file (default_1.pt)")
    p.add_argument("--kid-subsets", type=int, default=_default(EvaluateConfig, "kid_subsets"))
    p.add_argument("--batch-size", type=int, default=_default(EvaluateConfig, "batch_size"))
    p.add_argument("--device", default=_default(EvaluateConfig, "device"))
    p.add_argument("--cities", action="store_true", help="print per-city rows too")
    p.set_defaults(run=_cmd_evaluate)

    from satgan.config import GalleryConfig

    p = sub.add_parser("gallery", help="mask | generated | real figures, old-style files and an HTML page")
    p.add_argument("paths", nargs="+", metavar="CKPT [CKPT ...] DATA",
                   help="checkpoints (optionally NAME=PATH, one column each) then a pretransformed folder")
    p.add_argument("--out", required=True, help="output folder (gallery.html, figures/, files/)")
    p.add_argument("--split", default=_default(GalleryConfig, "split"))
    p.add_argument("--per-city", type=int, default=_default(GalleryConfig, "per_city"), help="random samples per city")
    p.add_argument("--indices", type=lambda t: [int(v) for v in _csv(t)], default=None,
                   help="comma-separated sample indices instead of random ones")
    p.add_argument("--scenes", type=int, default=_default(GalleryConfig, "scenes"),
                   help="whole scenes per city, grid tiles reassembled")
    p.add_argument("--seed", type=int, default=_default(GalleryConfig, "seed"))
    p.add_argument("--batch-size", type=int, default=_default(GalleryConfig, "batch_size"))
    p.add_argument("--device", default=_default(GalleryConfig, "device"))
    p.set_defaults(run=_cmd_gallery)

    p = sub.add_parser("info", help="describe a data source or a pretransformed folder")
    p.add_argument("path")
    p.set_defaults(run=_cmd_info)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        return args.run(args)
    except SatganError as exc:
        print(f"satgan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("satgan: interrupted", file=sys.stderr)
        return 130
