"""Training: pix2pix with checkpoints that resume exactly, AMP, TensorBoard and DDP.

``train(data_dir, run_dir, config)`` is the whole job; ``Trainer.fit`` is the loop, read
top to bottom. One process trains on one device; under ``torchrun`` each process takes
its share of every batch, gradients are averaged, and rank 0 alone logs and saves.
What the run folder holds is described in :mod:`satgan.training.runs`; what the losses are, in
:mod:`satgan.models.objective`.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import torch
from torch.utils.data import DataLoader

from satgan import SatganError, metrics
from satgan.atomic import write_json
from satgan.checkpoint import Checkpoint, save_checkpoint
from satgan.config import Config
from satgan.data.dataset import EpochSampler, PairDataset, label_indices
from satgan.data.writers import write_image
from satgan.metrics import model_to_unit_range
from satgan.models.conditioning import StyledGenerator
from satgan.models.factory import build_discriminator, build_encoder, build_generator, build_vgg_loss
from satgan.models.objective import HEALTH_TERMS
from satgan.progress import progress_bar
from satgan.runtime import Processes, amp_dtype, seed_all, use_deterministic_kernels
from satgan.training.optim import EMA, adam, scheduler, step_schedulers
from satgan.training.runs import RunDir
from satgan.training.state import TrainingState, bare
from satgan.training.step import TrainingStep
from satgan.training.validation import ValidationKID, control_grid, generate_samples, validation_set


def psnr(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of model images in [-1, 1], computed on [0, 1] (peak 1), per image."""
    return metrics.psnr(model_to_unit_range(fake), model_to_unit_range(real))


def with_city_labels(config: Config, cities: list[str]) -> Config:
    """``config`` with ``model.labels`` set to the training cities (sorted), where not given;
    given labels must include every training city."""
    if not config.model.labels:
        return replace(config, model=replace(config.model, labels=sorted(set(cities))))
    label_indices(cities, config.model.labels, "model.labels: the training split has ")
    return config


class Trainer(TrainingState, TrainingStep):
    """Everything a run needs, built from a :class:`Config`; :meth:`fit` trains.

    Building checks every setting and input and writes nothing: the run folder is
    touched only by :func:`train`, once a Trainer exists. One step (``train_step``) is
    in :mod:`satgan.training.step`; the checkpoint state, resume and wrappers in
    :mod:`satgan.training.state`.
    """

    def __init__(self, data_dir: str | os.PathLike, run_dir: str | os.PathLike, config: Config,
                 procs: Processes | None = None):
        self.config, t = config, config.train
        self.run, self.procs = RunDir(run_dir), procs or Processes()
        self.device = self.procs.device(t.device)
        self.amp = amp_dtype(t.amp, self.device)
        if t.deterministic:
            use_deterministic_kernels()

        self.train_set = PairDataset(data_dir, "train", config.data, augment=True)
        if config.model.condition == "city":
            config = self.config = with_city_labels(config, self.train_set.cities)
            self.train_set.set_labels(config.model.labels)
        self.val_set = validation_set(self.train_set, config, warn=self.procs.is_main)
        if t.batch_size % self.procs.world:
            raise SatganError(f"batch_size {t.batch_size} must be a multiple of the {self.procs.world} processes")
        if t.batch_size > len(self.train_set):
            raise SatganError(f"batch_size {t.batch_size} is larger than the train split "
                              f"({len(self.train_set)} samples); lower train.batch_size")
        self.sampler = EpochSampler(len(self.train_set), t.seed, self.procs.rank, self.procs.world)
        self.loader = DataLoader(
            self.train_set, batch_size=t.batch_size // self.procs.world, sampler=self.sampler, drop_last=True,
            num_workers=t.workers, pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(t.seed),  # leaves the global RNG alone
        )
        self.steps_per_epoch = len(self.train_set) // t.batch_size

        seed_all(t.seed)  # the same networks on every rank
        self.G = build_generator(config).to(self.device)
        self.styled = isinstance(self.G, StyledGenerator)  # called with labels and codes
        self.D = build_discriminator(config)
        self.D = self.D.to(self.device) if self.D is not None else None
        self.E = build_encoder(config)  # BicycleGAN's style encoder (training only)
        self.E = self.E.to(self.device) if self.E is not None else None
        self.vgg = build_vgg_loss(config.loss)
        self.vgg = self.vgg.to(self.device) if self.vgg is not None else None
        if t.channels_last:
            self.G, self.D = (n.to(memory_format=torch.channels_last) if n is not None else None
                              for n in (self.G, self.D))
        self.ema = EMA(self.G, t.ema) if t.ema else None
        self.opt_G, self.opt_D, self.opt_E = adam(self.G, t), adam(self.D, t, t.lr_d), adam(self.E, t)
        self.sched_G, self.sched_D, self.sched_E = scheduler(self.opt_G, t), scheduler(self.opt_D, t), scheduler(
            self.opt_E, t)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        seed_all(t.seed + self.procs.rank)  # training randomness (dropout) differs per rank

        self.epoch, self.step, self.batch_in_epoch = 0, 0, 0
        self.partial = {"sums": {}, "seen": 0, "seconds": 0.0}  # the epoch so far (mid-epoch resume)
        self.history: list[dict] = []
        self.validation_seconds = 0.0  # time spent validating, for throughput figures
        self.writer = None
        self.realism = ValidationKID(t.val_kid, self.device)

    # -- the loop ---------------------------------------------------------------------------
    def fit(self, on_epoch_end=None) -> dict:
        """Train until ``train.epochs``; return the last history entry with validation metrics.

        ``on_epoch_end(trainer)``, if given, runs after each epoch (notebook 03's live plot).
        """
        t = self.config.train
        if self.procs.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run.tb))
        while self.epoch < t.epochs:
            sums, seen, before = dict(self.partial["sums"]), self.partial["seen"], self.partial["seconds"]
            self.train_set.set_epoch(self.epoch)
            self.sampler.set_epoch(self.epoch, start=self.batch_in_epoch * t.batch_size)
            started = time.perf_counter()
            bar = progress_bar(self.loader, desc=f"epoch {self.epoch + 1}/{t.epochs}", unit="batch",
                       initial=self.batch_in_epoch, total=self.steps_per_epoch, disable=not self.procs.is_main)
            for batch in bar:
                losses = self.train_step(batch)
                for name, value in losses.items():
                    sums[name] = sums.get(name, 0.0) + value
                self.step, self.batch_in_epoch, seen = self.step + 1, self.batch_in_epoch + 1, seen + t.batch_size
                self.partial = {"sums": sums, "seen": seen, "seconds": before + time.perf_counter() - started}
                if self.procs.is_main and self.step % t.log_every == 0:
                    for name, value in losses.items():
                        self.writer.add_scalar(f"{'health' if name in HEALTH_TERMS else 'loss'}/{name}", value,
                                               self.step)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
                if self.step % t.checkpoint_every == 0:
                    self.save("last.pt")
            elapsed, steps = before + time.perf_counter() - started, max(seen // t.batch_size, 1)
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            self.partial = {"sums": {}, "seen": 0, "seconds": 0.0}
            entry = {"epoch": self.epoch, "step": self.step, "lr": self.opt_G.param_groups[0]["lr"],
                     "seconds": round(elapsed, 3), **{k: v / steps for k, v in sums.items()}}
            if self.epoch % t.val_every == 0 or self.epoch == t.epochs:
                entry.update(self.validate(self._health(entry)))
            self.history.append(entry)
            step_schedulers([self.sched_G, self.sched_D, self.sched_E], entry.get("psnr"))
            self._log_epoch(elapsed, seen)
            self.save("last.pt")
            if t.keep_every and self.epoch % t.keep_every == 0:
                self.save(f"epoch_{self.epoch:04d}.pt")
            if on_epoch_end is not None and self.procs.is_main:
                on_epoch_end(self)
        if self.writer is not None:
            self.writer.close()
        validated = [h for h in self.history if "psnr" in h]
        return validated[-1] if validated else {}

    # -- validation, logging, checkpoints -----------------------------------------------------
    @torch.no_grad()
    def validate(self, health: str = "") -> dict:
        """PSNR and SSIM of the generator (eval mode) on the fixed validation subset;
        logs them (with ``health``, the epoch's discriminator accuracy) and writes the
        control image grid."""
        started = time.perf_counter()
        n = min(self.config.train.val_samples, len(self.val_set))
        G = self.ema.net if self.ema is not None else bare(self.G)  # what checkpoints will generate with
        masks, fake, real = generate_samples(G, self.val_set, n, self.device, self.amp, self.config.model.sharpen)
        scores = {"psnr": float(psnr(fake, real).mean()),
                  "ssim": float(metrics.ssim(model_to_unit_range(fake), model_to_unit_range(real))),
                  **self.realism(fake, real)}
        if self.procs.is_main:
            shown = self.config.train.control_images
            grid = control_grid(masks[:shown], fake[:shown], real[:shown])
            self.writer.add_scalar("val/psnr", scores["psnr"], self.epoch)
            self.writer.add_scalar("val/ssim", scores["ssim"], self.epoch)
            if "kid" in scores:
                self.writer.add_scalar("val/kid", scores["kid"], self.epoch)
            self.writer.add_image("val/mask_generated_real", grid, self.epoch, dataformats="HWC")
            self.run.samples.mkdir(parents=True, exist_ok=True)
            write_image(self.run.samples / f"epoch_{self.epoch:04d}.png", grid)
            kid = f", KID {scores['kid']:.3f}" if "kid" in scores else ""
            print(f"epoch {self.epoch}: val PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f}{kid}"
                  f"{health}")
        self.validation_seconds += time.perf_counter() - started
        return scores

    @staticmethod
    def _health(entry: dict) -> str:
        """An epoch's discriminator accuracy on real and generated pairs, for the epoch line
        (nothing without a discriminator)."""
        if "D_acc_real" not in entry:
            return ""
        return f"; D calls {entry['D_acc_real']:.0%} of real pairs real, {entry['D_acc_fake']:.0%} of generated fake"

    def _log_epoch(self, elapsed: float, seen: int) -> None:
        if not self.procs.is_main:
            return
        self.writer.add_scalar("time/epoch_seconds", elapsed, self.epoch)
        self.writer.add_scalar("time/samples_per_second", seen / max(elapsed, 1e-9), self.epoch)
        self.writer.add_scalar("lr/generator", self.opt_G.param_groups[0]["lr"], self.epoch)
        if self.opt_D is not None:
            self.writer.add_scalar("lr/discriminator", self.opt_D.param_groups[0]["lr"], self.epoch)
        write_json(self.run.history, self.history)

    def save(self, name: str) -> None:
        state = self.state_dict()  # on every rank: gathering the RNG states takes them all
        if self.procs.is_main:
            ckpt = Checkpoint.from_training_state(self.config, state, pixel_scale=self.train_set.pixel_scale,
                                                  manifest_hash=self.train_set.manifest.get("content_hash", ""))
            save_checkpoint(self.run.checkpoints / name, ckpt)



def train(data_dir: str | os.PathLike, run_dir: str | os.PathLike, config: Config, resume: str = "never",
          overwrite: bool = False, on_epoch_end=None) -> dict:
    """Train ``config`` on the pretransformed ``data_dir`` into ``run_dir``; return the last
    validation metrics. ``resume``: ``never`` (a run dir holding a run is refused unless
    ``overwrite``), ``auto`` (continue from the newest intact checkpoint, if any, falling
    back past unreadable ones), or a checkpoint path."""
    procs = Processes.start(config.train.device)
    try:
        trainer = Trainer(data_dir, run_dir, config, procs)  # checks everything, writes nothing
        start = trainer.run.starting_point(resume, overwrite)
        if start is not None:
            trainer.resume_from(start)
        procs.barrier()  # every rank has read the old run before rank 0 clears it
        if procs.is_main:
            trainer.run.start(trainer.config, overwrite)  # with the labels the data gave
        procs.barrier()
        trainer.wrap()
        return trainer.fit(on_epoch_end)
    finally:
        if procs.distributed:
            procs.stop()
