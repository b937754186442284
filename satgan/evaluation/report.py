"""``satgan evaluate``: how close generated images are to the real ones, per city and
overall, written as a JSON report and shown as a table.

Two ways in. With checkpoints and a pretransformed split, every model (plus optional
baselines: ``flat``, building pixels one mean colour and the rest another; ``untrained``,
the first checkpoint's architecture freshly initialized) generates each tile of the
split, and is scored against the real tile (:mod:`satgan.evaluation.scoring`). With ``generated``
and ``real`` folders, images made elsewhere are matched by name and scored with the same
code (:mod:`satgan.evaluation.folder_scoring`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from pathlib import Path

from satgan.atomic import check_output_file, write_json
from satgan.config import EvaluateConfig, model_spec
from satgan.evaluation.baselines import FlatFill
from satgan.evaluation.folder_scoring import evaluate_folders
from satgan.evaluation.scoring import evaluate_models
from satgan.generation.loading import Model, generator_from_config, load_generators
from satgan.segmentation.segmenters import judge

REPORT_KEYS = ("satgan_version", "inception", "models")  # what every report this command writes holds


def is_report(path: str | Path) -> bool:
    """Whether ``path`` holds a report :func:`evaluate` wrote (read by its content, not its name)."""
    path = Path(path)
    with open(path, "rb") as f:
        if not f.read(64).lstrip().startswith(b"{"):  # a checkpoint or an image is not read whole
            return False
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(report, dict) and all(k in report for k in REPORT_KEYS) and isinstance(report["models"], dict)


def evaluate_inputs(cfg: EvaluateConfig) -> list[tuple[str, str | None]]:
    """Every file and folder ``cfg`` reads, labelled: what ``--out`` must never be."""
    return [*(("the checkpoint", model_spec(spec)[1]) for spec in cfg.checkpoints), ("the data folder", cfg.data),
            ("the generated folder", cfg.generated), ("the real folder", cfg.real),
            ("the segmenter", cfg.segmenter), ("the second segmenter", cfg.segmenter_2),
            ("the Inception file", cfg.inception)]


def evaluate(cfg: EvaluateConfig) -> dict:
    """Run the evaluation ``cfg`` describes and write its JSON report to ``cfg.out``: never
    one of its inputs; an existing file only where it is an earlier report, or with ``cfg.overwrite``."""
    out = check_output_file(cfg.out, inputs=evaluate_inputs(cfg), kind=("a report of satgan evaluate", is_report),
                            overwrite=cfg.overwrite)  # before the scoring, not after
    if cfg.generated:
        report = evaluate_folders(cfg)
    else:
        models: dict[str, Model] = load_generators(cfg.checkpoints, cfg.device)
        if "untrained" in cfg.baselines:
            models["untrained"] = generator_from_config(next(iter(models.values())).config, cfg.device)
        if cfg.sharpen is not None:  # every generator, the untrained one too, draws with the same mask
            models = {name: replace(m, sharpen=cfg.sharpen) for name, m in models.items()}
        if "flat" in cfg.baselines:
            models["flat"] = FlatFill.from_split(cfg.data, cfg.split, cfg.limit)
        specs = {"mask_iou": cfg.segmenter, "mask_iou_2": cfg.segmenter_2} if cfg.mask_iou else {}
        judges = {name: partial(judge, name, spec, cfg.data, cfg.device) for name, spec in specs.items()}
        report = evaluate_models(models, cfg.data, cfg, judges)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, report)
    return report


# -- presenting -------------------------------------------------------------------------------
COLUMNS = ("psnr", "ssim", "fid", "kid", "mask_iou", "mask_f1", "mask_iou_2", "mask_f1_2")


def report_rows(*reports: dict, cities: bool = False) -> list[dict]:
    """Flat rows (model, city, count, psnr, ssim, fid, kid) of one or more reports: the
    table several checkpoints on the same data make together."""
    rows = []
    for report in reports:
        for name, entry in report["models"].items():
            parts = [("overall", entry["overall"])] + (sorted(entry["cities"].items()) if cities else [])
            for city, values in parts:
                rows.append({"model": name, "city": city, "count": values["count"],
                             **{k: values.get(k) for k in COLUMNS}})
    return rows


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of :func:`report_rows`."""
    head = (f"{'model':<16} {'city':<10} {'n':>5} {'PSNR dB':>8} {'SSIM':>6} {'FID':>8} {'KID':>8} "
            f"{'mask IoU':>8} {'mask F1':>7} {'IoU 2nd':>7}")

    def num(v, fmt):
        return format(v, fmt) if v is not None else "-"

    lines = [head] + [
        f"{r['model'][:16]:<16} {r['city'][:10]:<10} {r['count']:>5} {num(r['psnr'], '8.2f')} "
        f"{num(r['ssim'], '6.3f')} {num(r['fid'], '8.1f')} {num(r['kid'], '8.4f')} "
        f"{num(r.get('mask_iou'), '8.3f')} {num(r.get('mask_f1'), '7.3f')} {num(r.get('mask_iou_2'), '7.3f')}"
        for r in rows
    ]
    return "\n".join(lines)
