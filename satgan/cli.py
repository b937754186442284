"""The ``satgan`` command line (also ``python -m satgan``).

Each sub-command's options are generated from its config class (:mod:`satgan.config`:
the names, types, choices, defaults and help are declared there once), the parsed
options build that config, and the command calls the same library function a notebook
calls. Every error a user can cause ends as one ``satgan: error: ...`` line and exit 2.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import satgan
from satgan import SatganError
from satgan.atomic import check_output_file
from satgan.config import (
    EvaluateConfig,
    ForgeConfig,
    GalleryConfig,
    GenerateConfig,
    PretransformConfig,
    SegbenchConfig,
    SegmenterConfig,
    SubsetConfig,
    SynthConfig,
    SynthesizeConfig,
    TrainJobConfig,
    make_config,
)
from satgan.settings import add_options, from_namespace


def _some(names, shown: int = 5) -> str:
    """The first few of many names, and how many more (the warnings above named each)."""
    names = list(names)
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _cmd_synth(args: argparse.Namespace) -> int:
    from satgan.data.synthetic import synthesize_inria

    print(f"wrote {synthesize_inria(from_namespace(SynthConfig, args))}")
    return 0


def _cmd_pretransform(args: argparse.Namespace) -> int:
    from satgan.data.pretransform import pretransform

    manifest = pretransform(from_namespace(PretransformConfig, args))
    for split, info in manifest["splits"].items():
        print(f"{split}: {info['count']} of {info['tiles_before_filter']} tiles -> {args.out}/{info['images']}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from satgan.training.trainer import train

    job = from_namespace(TrainJobConfig, args)
    cfg = make_config(job.preset, job.config or None, job.set)
    scores = train(job.data, job.run_dir, cfg, resume=job.resume, overwrite=job.overwrite)
    if scores:
        print(f"done: val PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f} -> {job.run_dir}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from satgan.generation.generate import generate

    result = generate(from_namespace(GenerateConfig, args))
    scale = f" at scale {result['scale']:g}" if result["scale"] else ""
    print(f"wrote {len(result['written'])} files{scale} to {args.out}")
    if result["failed"]:
        print(f"{len(result['failed'])} input file(s) failed: {_some(result['failed'])}", file=sys.stderr)
        return 1
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from satgan.evaluation.report import evaluate, format_rows, report_rows

    paths = list(args.paths)
    folder_mode = bool(args.generated or args.real)
    if folder_mode and paths:
        raise SatganError(f"{' '.join(paths)}: folder mode (--generated/--real) takes no checkpoints or DATA")
    if not folder_mode and not paths:
        raise SatganError("give CKPT [CKPT ...] DATA, or --generated DIR --real DIR")
    data = None if folder_mode else paths.pop()
    report = evaluate(from_namespace(EvaluateConfig, args, checkpoints=paths, data=data))
    print(format_rows(report_rows(report, cities=args.cities)))
    if not report["inception"]["available"]:
        print(f"FID/KID not computed: {report['inception']['reason']}", file=sys.stderr)
    skipped = report.get("skipped") or {}
    if skipped:
        print(f"{len(skipped)} file(s) could not be read: {', '.join(skipped)}", file=sys.stderr)
    print(f"report: {args.out}")
    return 1 if skipped else 0


def _cmd_gallery(args: argparse.Namespace) -> int:
    from satgan.gallery.files import gallery

    *checkpoints, data = args.paths
    if not checkpoints:
        raise SatganError("give CKPT [CKPT ...] DATA: at least one checkpoint, then a pretransformed folder")
    result = gallery(from_namespace(GalleryConfig, args, checkpoints=checkpoints, data=data))
    print(f"{len(result['gallery'].names)} samples, {len(result['gallery'].scenes)} scenes: {result['html']}, "
          f"{len(result['figures'])} figures, {len(result['files'])} files under {args.out}")
    return 0


def _cmd_forge(args: argparse.Namespace) -> int:
    from satgan.atomic import atomic_path
    from satgan.data.forge import forge
    from satgan.gallery.plots import plot_forge

    report = forge(from_namespace(ForgeConfig, args))
    print(f"forged {len(report['masks'])} masks ({report['method']}) -> {report['folder']}")
    for key, label in (("count", "buildings per mask"), ("fraction", "building fraction"), ("area", "building area")):
        shown = [f"{name} {d[key]['median']:g} [{d[key]['q1']:g}, {d[key]['q3']:g}]"
                 for name, d in (("source", report["source"].get("distribution")), ("forged", report["distribution"]))
                 if d and d[key].get("n")]
        if shown:
            print(f"  {label}, median [quartiles]: {'; '.join(shown)}")
    figure = Path(args.out).expanduser() / "forge.png"
    with atomic_path(figure) as tmp:
        plot_forge(report).savefig(tmp, dpi=80)
    print(f"figure: {figure}")
    return 0


def _cmd_synthesize(args: argparse.Namespace) -> int:
    from satgan.synthetic.synthesize import synthesize

    result = synthesize(from_namespace(SynthesizeConfig, args))
    print(f"{result['written']} images written, {result['kept']} kept from an earlier run"
          + (f", {result['removed']} of masks no longer there removed" if result["removed"] else "")
          + f" -> {result['root']}")
    if result["failed"]:
        print(f"{len(result['failed'])} mask(s) failed: {_some(result['failed'])}", file=sys.stderr)
        return 1
    return 0


def _cmd_segbench(args: argparse.Namespace) -> int:
    from satgan.synthetic.report import format_table
    from satgan.synthetic.segbench import segbench

    report = segbench(from_namespace(SegbenchConfig, args))
    print(format_table(report))
    print(report["recommendation"])
    if report.get("generator"):
        print(report["generator"]["sentence"])
    print(f"report: {Path(args.out).expanduser() / 'report.json'}")
    return 0


def _cmd_subset(args: argparse.Namespace) -> int:
    from satgan.data.subset import subset_folder

    cfg = from_namespace(SubsetConfig, args)
    made = subset_folder(cfg.source, cfg.out, cfg.count, cfg.seed, cfg.overwrite)
    counts = ", ".join(f"{split} {info['count']}" for split, info in made["splits"].items())
    print(f"{cfg.out}: {counts} tiles (train: {cfg.count} of {made['subset_of']['root']}, seed {cfg.seed})")
    return 0


def _cmd_segmenter(args: argparse.Namespace) -> int:
    from satgan.segmentation.segmenters import cache_folder, is_segmenter_file, reference_segmenter

    cfg = from_namespace(SegmenterConfig, args)
    if cfg.out:  # before the training, not after: never the data, an existing file only if a segmenter
        check_output_file(cfg.out, inputs=[("the data folder", cfg.data)],
                          kind=("a segmenter saved by satgan", is_segmenter_file), overwrite=cfg.overwrite)
    seg = reference_segmenter(cfg)
    info = seg.info
    trained = info["trained"]
    print(f"segmenter: width {cfg.width}, {trained['steps']} steps of {cfg.batch_size} on {info['data']['tiles']} "
          f"tiles of {info['data']['root']} ({trained['seconds']:.0f} s when trained)")
    if info.get("val"):
        print(f"real val tiles: mask IoU {info['val']['iou']:.3f}, F1 {info['val']['f1']:.3f} (the ceiling)")
    cached = cache_folder(cfg) / "segmenters" / f"{info['key'][:24]}.pt"
    if cached.is_file():
        print(f"cached: {cached}")
    if cfg.out:
        print(f"saved: {seg.save(cfg.out)}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from satgan.data.arrays import MANIFEST, PARTS, load_manifest, open_arrays

    path = Path(args.path).expanduser()
    if (path / MANIFEST).exists() or (path / PARTS).exists():
        manifest = load_manifest(path)
        for info in manifest["splits"].values():
            open_arrays(path, info)  # a damaged array is named here, not reported as fine
        summary = {split: {"count": i["count"], "shape": i["image_shape"]} for split, i in manifest["splits"].items()}
        print(json.dumps({"settings": manifest["settings"], "splits": summary}, indent=1))
    else:
        from satgan.data.sources import open_source
        from satgan.gallery.explore import count_table

        source = open_source(path, skip_unpaired=True)
        print(f"{source.kind} dataset at {source.root}")
        print(count_table(source))
        if source.test_images:
            print(f"{len(source.test_images)} test images without masks")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors look like every other error: one line, exit 2."""

    def error(self, message: str):
        _say(f"satgan: error: {self.prog.removeprefix('satgan ')}: {message}")
        self.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="satgan", description="satgan: satellite-like images from building masks")
    parser.add_argument("--version", action="version", version=f"satgan {satgan.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("synth", help="write built-in synthetic data in the Inria layout")
    add_options(p, SynthConfig)
    p.set_defaults(run=_cmd_synth)

    p = sub.add_parser("pretransform", help="cut pairs into tiles and write training arrays")
    add_options(p, PretransformConfig)
    p.set_defaults(run=_cmd_pretransform)

    p = sub.add_parser("train", help="train pix2pix on pretransformed arrays (torchrun for several GPUs)")
    add_options(p, TrainJobConfig)
    p.set_defaults(run=_cmd_train)

    p = sub.add_parser("generate", help="images from masks with a checkpoint: resize, grid or seamless")
    add_options(p, GenerateConfig)
    p.set_defaults(run=_cmd_generate)

    p = sub.add_parser("evaluate", help="PSNR, SSIM, FID and KID per city and overall, as a JSON report")
    p.add_argument("paths", nargs="*", metavar="CKPT [CKPT ...] DATA",
                   help="checkpoints (optionally NAME=PATH) then a pretransformed folder")
    add_options(p, EvaluateConfig)
    p.add_argument("--cities", action="store_true", help="print per-city rows too")
    p.set_defaults(run=_cmd_evaluate)

    p = sub.add_parser("gallery", help="mask | generated | real figures, old-style files and an HTML page")
    p.add_argument("paths", nargs="+", metavar="CKPT [CKPT ...] DATA",
                   help="checkpoints (optionally NAME=PATH, one column each) then a pretransformed folder")
    add_options(p, GalleryConfig)
    p.set_defaults(run=_cmd_gallery)

    p = sub.add_parser("forge", help="new building masks: procedural layouts, rearranged or edited real ones")
    add_options(p, ForgeConfig)
    p.set_defaults(run=_cmd_forge)

    p = sub.add_parser("synthesize", help="a generated image for every mask: a dataset of synthetic pairs")
    add_options(p, SynthesizeConfig)
    p.set_defaults(run=_cmd_synthesize)

    p = sub.add_parser("segbench", help="train a small segmenter on real, real + synthetic, synthetic; score IoU/F1")
    add_options(p, SegbenchConfig)
    p.set_defaults(run=_cmd_segbench)

    p = sub.add_parser("subset", help="a pretransformed folder with N of another's train tiles (scarce-label runs)")
    add_options(p, SubsetConfig)
    p.set_defaults(run=_cmd_subset)

    p = sub.add_parser("segmenter", help="train (or find cached) the reference building segmenter of a folder")
    add_options(p, SegmenterConfig)
    p.set_defaults(run=_cmd_segmenter)

    p = sub.add_parser("info", help="describe a data source or a pretransformed folder")
    p.add_argument("path")
    p.set_defaults(run=_cmd_info)
    return parser


class _Tolerant:
    """stderr that cannot fail: where it is closed or full, progress bars and warnings are
    dropped (a run never dies of its log) and ``failed`` says so, so that an error goes to
    stdout instead."""

    def __init__(self, stream):
        self.stream, self.failed = stream, stream is None

    def write(self, text: str) -> int:
        if not self.failed:
            try:
                return self.stream.write(text)
            except (OSError, ValueError, AttributeError):  # full, closed, or no stream at all
                self.failed = True
        return len(text)

    def flush(self) -> None:
        if not self.failed:
            try:
                self.stream.flush()
            except (OSError, ValueError, AttributeError):
                self.failed = True

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def _say(text: str) -> None:
    """``text`` on stderr; where stderr cannot be written (closed, a full device), on stdout,
    so that a failure is never silent; where neither can, the exit status still says it."""
    print(text, file=sys.stderr, flush=True)
    if getattr(sys.stderr, "failed", False):
        try:
            print(text, file=sys.stdout, flush=True)
        except (OSError, ValueError, AttributeError):
            pass


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    _say(f"warning: {message}")


def describe_os_error(exc: OSError) -> str:
    """An operating-system failure in words, with the path it concerns."""
    where = exc.filename or exc.filename2
    reasons = {errno.ENOSPC: "no space left on the disk", errno.EACCES: "permission denied (read-only?)",
               errno.EROFS: "the file system is read-only", errno.EEXIST: "exists already",
               errno.ENOTDIR: "a part of the path is a file, not a folder",
               errno.EISDIR: "is a folder where a file is needed", errno.ENOENT: "no such file or folder"}
    reason = reasons.get(exc.errno, exc.strerror or type(exc).__name__)
    return f"{where}: {reason}" if where else f"{reason} ({type(exc).__name__}: {exc})"


def main(argv: Sequence[str] | None = None) -> int:
    saved = sys.stderr
    sys.stderr = _Tolerant(saved)
    try:
        return _run(argv)
    finally:
        sys.stderr = saved


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        return args.run(args)
    except SatganError as exc:
        _say(f"satgan: error: {exc}")
        return 2
    except OSError as exc:  # read-only folders, a full disk, a file where a folder must be
        _say(f"satgan: error: {describe_os_error(exc)}")
        return 2
    except KeyboardInterrupt:
        _say("satgan: interrupted")
        return 130
