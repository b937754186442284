"""Training throughput: satgan's Trainer against a plain eager fp32 pix2pix loop.

The baseline is the reference implementation's approach written out: the same networks
(built by the same factory, same seed), the same PairDataset and DataLoader, Adam, one
discriminator step (fake and real in separate passes) then one generator step, fp32,
no AMP, no channels_last, no compile. Ours is ``Trainer.fit`` for one epoch with the
settings given (``--set``), its checkpoint at the epoch end included. Rounds alternate
the two; the reported ratio is the median of per-round ratios.

    python benchmarks/bench_train.py [--preset quick] [--set train.channels_last=true] [--rounds 3]
        [--baseline loop|preset]

``--baseline preset``: the baseline is ``Trainer.fit`` with the preset's own settings
(plus ``--baseline-set``) instead of the plain loop, so the two sides measure what a
change of recipe costs. The ``quick`` of before the projected discriminator, against
today's::

    python benchmarks/bench_train.py --baseline preset --baseline-set model.discriminator=patch \
        --baseline-set model.noise=0 --baseline-set loss.gan_mode=vanilla --baseline-set loss.l1_weight=100 \
        --baseline-set loss.r1_weight=1 --baseline-set train.lr_d=5e-5 --baseline-set model.sharpen=2

On a GPU, pass e.g. ``--set train.amp=auto --set train.channels_last=true --set
train.compile=true``; the script then also reports model FLOP utilisation.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from satgan.config import PretransformConfig, SynthConfig, make_config
from satgan.data.dataset import PairDataset
from satgan.data.pretransform import pretransform
from satgan.data.synthetic import synthesize_inria
from satgan.models.factory import build_discriminator, build_generator
from satgan.models.losses import gan_loss
from satgan.training.trainer import Trainer


def baseline_epoch(data: Path, cfg, device: torch.device, steps: int) -> float:
    """Samples/s of a plain eager fp32 loop over ``steps`` batches."""
    torch.manual_seed(cfg.train.seed)
    G = build_generator(cfg).to(device)
    D = build_discriminator(cfg).to(device)
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.train.lr, betas=(cfg.train.beta1, cfg.train.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.train.lr, betas=(cfg.train.beta1, cfg.train.beta2))
    ds = PairDataset(data, "train", cfg.data)
    loader = DataLoader(ds, batch_size=cfg.train.batch_size, shuffle=True, drop_last=True,
                        num_workers=cfg.train.workers)
    done, start = 0, time.perf_counter()
    for batch in loader:
        mask, real = batch["mask"].to(device), batch["image"].to(device)
        fake = G(mask)
        D.requires_grad_(True)
        loss_d = 0.5 * (gan_loss(D(mask, fake.detach()), False, cfg.loss.gan_mode)
                        + gan_loss(D(mask, real), True, cfg.loss.gan_mode))
        opt_D.zero_grad()
        loss_d.backward()
        opt_D.step()
        D.requires_grad_(False)
        loss_g = gan_loss(D(mask, fake), True, cfg.loss.gan_mode, for_discriminator=False) \
            + cfg.loss.l1_weight * F.l1_loss(fake, real)
        opt_G.zero_grad()
        loss_g.backward()
        opt_G.step()
        done += 1
        if done == steps:
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return done * cfg.train.batch_size / (time.perf_counter() - start)


def ours_epoch(data: Path, run: Path, cfg) -> float:
    """Samples/s of Trainer.fit over one epoch (validation excluded, checkpoint included)."""
    shutil.rmtree(run, ignore_errors=True)
    trainer = Trainer(data, run, cfg)
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start - trainer.validation_seconds
    return trainer.steps_per_epoch * cfg.train.batch_size / seconds


def generator_flops(cfg, device) -> float:
    """FLOPs of one training sample: forward + backward of G and D passes (counted by torch)."""
    from torch.utils.flop_counter import FlopCounterMode

    G = build_generator(cfg).to(device)
    D = build_discriminator(cfg).to(device)
    c = cfg.data.crop
    mask = torch.zeros(1, cfg.data.mask_channels, c, c, device=device)
    real = torch.zeros(1, 3, c, c, device=device)
    with FlopCounterMode(display=False) as counter:
        fake = G(mask)
        (gan_loss(D(mask, fake.detach()), False, "vanilla") + gan_loss(D(mask, real), True, "vanilla")).backward()
        (gan_loss(D(mask, fake), True, "vanilla") + F.l1_loss(fake, real)).backward()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--set", action="append", default=[], help="settings for ours (the baseline ignores them)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", default="runs/bench-train")
    parser.add_argument("--baseline", choices=("loop", "preset"), default="loop",
                        help="loop: a plain eager pix2pix loop; preset: Trainer.fit with the preset's settings")
    parser.add_argument("--baseline-set", action="append", default=[],
                        help="with --baseline preset: settings for the baseline")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="device peak, for utilisation")
    args = parser.parse_args()

    work = Path(args.work)
    data = work / "arrays"
    if not (data / "manifest.json").exists():
        synthesize_inria(SynthConfig(out=str(work / "synth"), per_city=15, size=1000, test_per_city=0, workers=2))
        pretransform(PretransformConfig(source=str(work / "synth"), out=str(data), grid=2, size=143, crop=128))
    # one epoch is measured, so no loss term may wait for a later one (the alignment loss's warm-up)
    steady = ["train.epochs=1", "train.keep_every=0", "loss.seg_warmup=0"]
    base_cfg = make_config(args.preset, overrides=[*steady, *(args.baseline_set if args.baseline == "preset" else [])])
    ours_cfg = make_config(args.preset, overrides=[*steady, *args.set])
    device = torch.device(ours_cfg.train.device if ours_cfg.train.device != "auto"
                          else ("cuda" if torch.cuda.is_available() else "cpu"))
    steps = len(PairDataset(data, "train", base_cfg.data)) // base_cfg.train.batch_size

    def baseline() -> float:
        if args.baseline == "preset":
            return ours_epoch(data, work / "run-preset", base_cfg)
        return baseline_epoch(data, base_cfg, device, steps)

    ours, base = [], []
    for i in range(args.rounds):  # alternate which goes first, so neither gains from going second
        if i % 2:
            base.append(baseline())
            ours.append(ours_epoch(data, work / "run", ours_cfg))
        else:
            ours.append(ours_epoch(data, work / "run", ours_cfg))
            base.append(baseline())
        print(f"ours {ours[-1]:.1f} samples/s, baseline {base[-1]:.1f} samples/s", file=sys.stderr)
    ratio = statistics.median(o / b for o, b in zip(ours, base))
    print(f"\npreset {args.preset}, ours with {args.set or 'its preset settings'}, device {device}, "
          f"{steps} steps of batch {base_cfg.train.batch_size} per epoch, {args.rounds} rounds\n")
    print("| trainer | samples/s (median) |")
    print("|---|---|")
    print(f"| satgan Trainer | {statistics.median(ours):.1f} |")
    name = (f"satgan Trainer, preset {args.preset} with {args.baseline_set or 'its settings'}"
            if args.baseline == "preset" else "plain eager fp32 loop")
    print(f"| {name} | {statistics.median(base):.1f} |")
    print(f"| ratio (median of rounds) | {ratio:.2f}x |")
    if args.peak_tflops:
        flops = generator_flops(ours_cfg, device)
        mfu = statistics.median(ours) * flops / (args.peak_tflops * 1e12)
        print(f"\nmodel FLOPs per sample {flops / 1e9:.1f} GFLOP; utilisation {100 * mfu:.1f}% "
              f"of {args.peak_tflops} TFLOP/s")


if __name__ == "__main__":
    main()
