"""Training: pix2pix with checkpoints that resume exactly, AMP, TensorBoard and DDP.

``train(data_dir, run_dir, config)`` is the whole job; ``Trainer.fit`` is the loop, read
top to bottom. One process trains on one device; under ``torchrun`` each process takes
its share of every batch, gradients are averaged, and rank 0 alone logs and saves.
What the run folder holds is described in :mod:`satgan.runs`; what the losses are, in
:mod:`satgan.models.objective`.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import replace

import torch
from torch import nn
from torch.utils.data import DataLoader

from satgan import metrics
from satgan.atomic import write_json
from satgan.checkpoint import (
    Checkpoint,
    architecture_differences,
    changed_settings,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from satgan.config import Config
from satgan.data.dataset import PairDataset
from satgan.data.labels import label_indices
from satgan.data.sampling import EpochSampler
from satgan.data.writers import write_image
from satgan.errors import SatganError, SatganWarning
from satgan.images import control_grid, model_to_unit_range
from satgan.models.conditioning import StyledGenerator
from satgan.models.ema import EMA
from satgan.models.encoder import sample_codes
from satgan.models.factory import build_discriminator, build_encoder, build_generator, build_vgg_loss
from satgan.models.objective import HEALTH_TERMS, discriminator_loss, generator_loss
from satgan.optim import adam, scheduler, step_schedulers
from satgan.progress import progress_bar
from satgan.runs import RunDir
from satgan.runtime import Processes, amp_dtype, seed_all, use_deterministic_kernels
from satgan.validation import ValidationKID, generate_samples, validation_set


def bare(net: nn.Module | None) -> nn.Module | None:
    """``net`` without its torch.compile and DDP wrappers (whose state_dict keys differ)."""
    net = getattr(net, "_orig_mod", net)  # torch.compile
    return getattr(net, "module", net)  # DDP


def psnr(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of model images in [-1, 1], computed on [0, 1] (peak 1), per image."""
    return metrics.psnr(model_to_unit_range(fake), model_to_unit_range(real))


class NonFiniteLoss(SatganError):
    pass


def _flat(*parts: torch.Tensor | None) -> torch.Tensor:
    """The given tensors, each flattened per sample, side by side: one code per sample."""
    return torch.cat([p.flatten(1) for p in parts if p is not None], dim=1)


def with_city_labels(config: Config, cities: list[str]) -> Config:
    """``config`` with ``model.labels`` set to the training cities (sorted), where not given;
    given labels must include every training city."""
    if not config.model.labels:
        return replace(config, model=replace(config.model, labels=sorted(set(cities))))
    label_indices(cities, config.model.labels, "model.labels: the training split has ")
    return config


class Trainer:
    """Everything a run needs, built from a :class:`Config`; :meth:`fit` trains.

    Building checks every setting and input and writes nothing: the run folder is
    touched only by :func:`train`, once a Trainer exists.
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

    # -- state: what a checkpoint stores, and restoring it (each mirrors the other) -------------
    def state_dict(self) -> dict:
        rng = self.procs.gather(rng_state())  # every rank's, so each resumes its own stream
        D = bare(self.D)
        return {
            "generator": bare(self.G).state_dict(), "generator_ema": self.ema.state_dict() if self.ema else None,
            "discriminator": D.state_dict() if D is not None else None,
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict() if self.opt_D else None,
            "sched_G": self.sched_G.state_dict(), "sched_D": self.sched_D.state_dict() if self.sched_D else None,
            "encoder": self.E.state_dict() if self.E is not None else None,
            "opt_E": self.opt_E.state_dict() if self.opt_E else None,
            "sched_E": self.sched_E.state_dict() if self.sched_E else None,
            "scaler": self.scaler.state_dict(), "rng": rng, "epoch": self.epoch, "step": self.step,
            "batch_in_epoch": self.batch_in_epoch, "partial": self.partial, "history": self.history,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`. Call it before :meth:`wrap`: the bare networks'
        parameter names are those saved."""
        bare(self.G).load_state_dict(state["generator"])
        if self.ema is not None:
            if state.get("generator_ema") is None:
                raise SatganError("the checkpoint keeps no moving average of the generator; resume with train.ema=0")
            self.ema.load_state_dict(state["generator_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.sched_G.load_state_dict(state["sched_G"])
        if self.D is not None:
            bare(self.D).load_state_dict(state["discriminator"])
            self.opt_D.load_state_dict(state["opt_D"])
            self.sched_D.load_state_dict(state["sched_D"])
        if self.E is not None:  # an encoder is architecture: resume_from has checked it was there
            self.E.load_state_dict(state["encoder"])
            self.opt_E.load_state_dict(state["opt_E"])
            self.sched_E.load_state_dict(state["sched_E"])
        self.scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        set_rng_state(rng[self.procs.rank] if isinstance(rng, list) else rng)
        self.epoch, self.step, self.batch_in_epoch = state["epoch"], state["step"], state["batch_in_epoch"]
        self.partial, self.history = state["partial"], state["history"]

    def resume_from(self, ckpt: Checkpoint) -> None:
        """Continue ``ckpt``'s run: the same architecture is required; changed settings
        and other training data are named in warnings."""
        diffs = architecture_differences(ckpt.config, self.config)
        if diffs:
            raise SatganError(f"{ckpt.path}: made with another architecture ({'; '.join(diffs)})")
        changed = changed_settings(ckpt.config, self.config)
        if changed and self.procs.is_main:
            warnings.warn(f"resuming {ckpt.path} with changed settings: {'; '.join(changed)}", SatganWarning,
                          stacklevel=2)
        if ckpt.manifest_hash and ckpt.manifest_hash != self.train_set.manifest.get("content_hash"):
            warnings.warn(f"{ckpt.path}: trained on other data (manifest hash differs)", SatganWarning, stacklevel=2)
        self.load_state_dict(ckpt.training_state())
        if self.procs.is_main:
            print(f"resumed from {ckpt.path}: epoch {self.epoch}, batch {self.batch_in_epoch}, step {self.step}")

    def wrap(self) -> None:
        """DDP and torch.compile wrappers, after any restore (see :meth:`load_state_dict`)."""
        self.G, self.D = wrapped(self.G, self.D, self.config, self.procs, self.device)

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

    def train_step(self, batch: dict) -> dict[str, float]:
        """One optimisation step of D (when there is one) then G; returns the loss terms."""
        mask = batch["mask"].to(self.device, non_blocking=True)
        real = batch["image"].to(self.device, non_blocking=True)
        if self.config.train.channels_last:
            mask = mask.contiguous(memory_format=torch.channels_last)
            real = real.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None)
        m, batch_norm = self.config.model, self.config.model.norm == "batch"
        label = batch["label"].to(self.device) if m.condition == "city" else None
        if self.config.loss.nearest_of > 1:
            code, noise = self._nearest_randomness(mask, label, real, self.config.loss.nearest_of, autocast)
        else:
            code, noise = self._randomness(mask)
        second = encoded = None
        with autocast:
            if self.E is not None:  # each mask drawn with its own real image's code (BicycleGAN)
                mean, log_var = self.E(real)
                code = sample_codes(mean, log_var)
            fake = self.G(mask, label, code, noise) if self.styled else self.G(mask)
            if self.config.loss.mode_seeking > 0 or self.E is not None:  # the same masks, another code and noise
                other_code, other_noise = self._randomness(mask)
                second = (self.G(mask, label, other_code, other_noise), _flat(other_code, other_noise),
                          _flat(code.detach() if code is not None else None, noise))
        if self.E is not None:  # the random code must be readable from its image: G's task, not E's
            self.E.requires_grad_(False)
            with autocast:
                read_back, _ = self.E(second[0])
            self.E.requires_grad_(True)
            encoded = (mean, log_var, read_back, other_code)
        terms: dict[str, torch.Tensor] = {}
        if self.D is not None:
            self.D.requires_grad_(True)
            judged = (mask, fake, real, label)
            if self.E is not None:  # D learns from the encoded and the random codes' images alike
                judged = (torch.cat([mask, mask]), torch.cat([fake, second[0]]), torch.cat([real, real]),
                          None if label is None else torch.cat([label, label]))
            with autocast:
                loss_d, terms_d = discriminator_loss(self.D, *judged[:3], self.config.loss, batch_norm, judged[3],
                                                     kind=m.discriminator)
            self._check_finite(loss_d, "discriminator")
            self.opt_D.zero_grad(set_to_none=True)
            self.scaler.scale(loss_d).backward()
            self.procs.average_gradients(self.D)  # D runs twice per step, so it is not DDP-wrapped
            self.scaler.step(self.opt_D)
            self.D.requires_grad_(False)
            terms.update(terms_d)
        with autocast:
            loss_g, terms_g = generator_loss(self.D, self.vgg, mask, fake, real, self.config.loss, label, second,
                                             encoded, kind=m.discriminator)
        self._check_finite(loss_g, "generator")
        self.opt_G.zero_grad(set_to_none=True)
        if self.E is not None:
            self.opt_E.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_G)
        if self.E is not None:  # like D, E is not DDP-wrapped: its gradients are averaged by hand
            self.procs.average_gradients(self.E)
            self.scaler.step(self.opt_E)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(bare(self.G))
        terms.update(terms_g)
        return {k: float(v.detach()) for k, v in terms.items()}

    def _randomness(self, mask: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """A style code per sample and per-pixel noise, where the generator takes them."""
        m, n = self.config.model, len(mask)
        code = torch.randn(n, m.latent, device=self.device) if m.latent else None
        noise = torch.randn(n, m.noise, *mask.shape[2:], device=self.device) if m.noise else None
        return code, noise

    def _nearest_randomness(self, mask: torch.Tensor, label: torch.Tensor | None, real: torch.Tensor, draws: int,
                            autocast) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Of ``draws`` random codes and noises per sample, the one whose generation is nearest
        the real image (mean absolute difference): conditional IMLE (Li et al. 2019). L1 then
        pulls each real image's nearest generation toward it, not the average of them all.
        The trial passes run in training mode, as the step's own (with ``model.norm=batch``
        they move its running statistics as well)."""
        best = best_code = best_noise = None
        with torch.no_grad(), autocast:
            for _ in range(draws):
                code, noise = self._randomness(mask)
                gap = (self.G(mask, label, code, noise) - real).abs().flatten(1).float().mean(1)
                if best is None:
                    best, best_code, best_noise = gap, code, noise
                    continue
                nearer = gap < best
                best = torch.where(nearer, gap, best)
                if code is not None:
                    best_code = torch.where(nearer[:, None], code, best_code)
                if noise is not None:
                    best_noise = torch.where(nearer[:, None, None, None], noise, best_noise)
        return best_code, best_noise

    def _check_finite(self, loss: torch.Tensor, which: str) -> None:
        if not self.procs.all_true(bool(torch.isfinite(loss.detach())), self.device):  # every rank stops together
            raise NonFiniteLoss(
                f"the {which} loss became {float(loss.detach())} at epoch {self.epoch + 1}, step {self.step + 1}; "
                f"training stopped, the last good checkpoint is {self.run.last} "
                "(try a lower train.lr, or train.amp=off)"
            )

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


def wrapped(G: nn.Module, D: nn.Module | None, config: Config, procs: Processes, device: torch.device):
    """G under DDP (with synchronized batch norm on GPUs) and both compiled, as the config asks."""
    if procs.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        if config.model.norm == "batch" and device.type == "cuda":
            G = nn.SyncBatchNorm.convert_sync_batchnorm(G)
            D = nn.SyncBatchNorm.convert_sync_batchnorm(D) if D is not None else None
        elif config.model.norm == "batch" and procs.is_main:
            warnings.warn("batch norm statistics are per process on CPU (SyncBatchNorm needs GPUs)",
                          SatganWarning, stacklevel=3)
        G = DDP(G, device_ids=[device.index] if device.type == "cuda" else None)
    if config.train.compile:
        G = torch.compile(G)
        D = torch.compile(D) if D is not None else None
    return G, D


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
