"""Training: pix2pix with checkpoints that resume exactly, AMP, TensorBoard and DDP.

``train(data_dir, run_dir, config)`` is the whole job; :class:`Trainer` reads top to bottom:
building, the loop (``fit``), one step of D then G, validation, logging and saving, the
checkpoint state, resuming and the wrappers. One process trains on one device; under
``torchrun`` each process takes its share of every batch, gradients are averaged, and rank 0
alone logs and saves. The run folder: :mod:`satgan.training.runs`; the losses:
:mod:`satgan.models.objective`.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.utils.data import DataLoader

from satgan import SatganError, SatganWarning
from satgan.atomic import write_json
from satgan.checkpoint import Checkpoint, architecture_differences, changed_settings, rng_state, set_rng_state
from satgan.config import Config
from satgan.data.dataset import EpochSampler, PairDataset, with_city_labels
from satgan.data.writers import write_image
from satgan.models.conditioning import StyledGenerator
from satgan.models.encoder import sample_codes
from satgan.models.factory import build_discriminator, build_encoder, build_generator, build_vgg_loss
from satgan.models.objective import HEALTH_TERMS, Encoded, SecondDraw, discriminator_loss, generator_loss
from satgan.progress import progress_bar
from satgan.runtime import Processes, amp_dtype, bare, seed_all, use_deterministic_kernels, wrapped
from satgan.segmentation.segmenters import ALIGNMENT_ROLE, alignment_segmenter, identity
from satgan.training.optim import EMA, adam, scheduler, step_schedulers
from satgan.training.runs import RunDir
from satgan.training.validation import ValidationKID, control_grid, generate_samples, image_scores, validation_set


class NonFiniteLoss(SatganError):
    pass


@dataclass
class Trained:
    """A network the run trains, with its optimiser and learning-rate schedule."""

    net: nn.Module  # wrapped for DDP and torch.compile once Trainer.wrap has run
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler

    def parts(self) -> tuple:
        """What a checkpoint keeps, in the order of :data:`STATE_KEYS`."""
        return bare(self.net), self.opt, self.sched


# The keys of each network's weights, optimiser and schedule in a checkpoint's training state;
# a network this config lacks is saved as None under its keys.
STATE_KEYS = {"generator": ("generator", "opt_G", "sched_G"),
              "discriminator": ("discriminator", "opt_D", "sched_D"),
              "encoder": ("encoder", "opt_E", "sched_E")}


class Draw(NamedTuple):
    """The randomness of a generation besides its mask: a style code per sample and per-pixel
    noise, each None where the generator takes none."""

    code: torch.Tensor | None
    noise: torch.Tensor | None


def _flat(*parts: torch.Tensor | None) -> torch.Tensor:
    """The given tensors, each flattened per sample, side by side: one code per sample."""
    return torch.cat([p.flatten(1) for p in parts if p is not None], dim=1)


def _twice(x: torch.Tensor | None) -> torch.Tensor | None:
    return None if x is None else torch.cat([x, x])


class Trainer:
    """Everything a run needs, built from a :class:`Config`; :meth:`fit` trains.

    Building checks every setting and input and writes nothing: the run folder is touched
    only by :func:`train`, once a Trainer exists. ``nets`` holds the trained networks by name
    (``generator``; ``discriminator`` and ``encoder`` where the config has them), ``G``, ``D``
    and ``E`` their networks as they run (None when absent).
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

        seed_all(t.seed)  # the same networks on every rank (each draws its initial weights in turn)
        built = {"generator": build_generator(config), "discriminator": build_discriminator(config),
                 "encoder": build_encoder(config)}  # the encoder: BicycleGAN's, for training only
        vgg = build_vgg_loss(config.loss)  # the perceptual loss's fixed network: not trained
        self.vgg = vgg.to(self.device) if vgg is not None else None
        self.aligner, self.trained_with = None, {}  # the alignment loss's frozen segmenter, never a judge
        if config.loss.seg_weight > 0:
            with self.procs.main_first():  # rank 0 trains and caches it, the others read it
                seg = alignment_segmenter(config.loss.segmenter or None, data_dir, str(self.device),
                                          self.procs.is_main)
            self.aligner = seg.net.to(self.device).eval().requires_grad_(False)
            self.trained_with = {ALIGNMENT_ROLE: identity(seg)}
        self.nets: dict[str, Trained] = {}
        for name, net in built.items():
            if net is None:
                continue
            net = net.to(self.device)
            if t.channels_last and name != "encoder":
                net = net.to(memory_format=torch.channels_last)
            opt = adam(net, t, t.lr_d if name == "discriminator" else None)
            self.nets[name] = Trained(net, opt, scheduler(opt, t))
        self.styled = isinstance(self.G, StyledGenerator)  # called with labels and codes
        self.ema = EMA(self.G, t.ema) if t.ema else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        seed_all(t.seed + self.procs.rank)  # training randomness (dropout) differs per rank

        self.epoch, self.step, self.batch_in_epoch = 0, 0, 0
        self.partial = {"sums": {}, "seen": 0, "seconds": 0.0}  # the epoch so far (mid-epoch resume)
        self.history: list[dict] = []
        self.validation_seconds = 0.0  # time spent validating, for throughput figures
        self.writer = None
        self.realism = ValidationKID(t.val_kid, self.device)

    @property
    def G(self) -> nn.Module:
        return self.nets["generator"].net

    @property
    def D(self) -> nn.Module | None:
        return self.nets["discriminator"].net if "discriminator" in self.nets else None

    @property
    def E(self) -> nn.Module | None:
        return self.nets["encoder"].net if "encoder" in self.nets else None

    # -- the loop ---------------------------------------------------------------------------
    def fit(self, on_epoch_end=None) -> dict:
        """Train until ``train.epochs``; return the last history entry with validation metrics.

        ``on_epoch_end(trainer)``, if given, runs after each epoch (notebook 03's live plot).
        """
        t = self.config.train
        if self.procs.is_main:
            from satgan.progress import EventLog

            self.writer = EventLog(self.run.tb)  # a full disk: one warning naming the folder, training goes on
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
            entry = {"epoch": self.epoch, "step": self.step, "lr": self.nets["generator"].opt.param_groups[0]["lr"],
                     "seconds": round(elapsed, 3), **{k: v / steps for k, v in sums.items()}}
            if self.epoch % t.val_every == 0 or self.epoch == t.epochs:
                entry.update(self.validate(self._health(entry)))
            self.history.append(entry)
            step_schedulers([n.sched for n in self.nets.values()], entry.get("psnr"))
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

    # -- one step -----------------------------------------------------------------------------
    def train_step(self, batch: dict) -> dict[str, float]:
        """One optimisation step of D (when there is one) then G (and E); returns the loss terms."""
        config, G, D, E = self.config, self.G, self.D, self.E
        mask = batch["mask"].to(self.device, non_blocking=True)
        real = batch["image"].to(self.device, non_blocking=True)
        if config.train.channels_last:
            mask = mask.contiguous(memory_format=torch.channels_last)
            real = real.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None)
        label = batch["label"].to(self.device) if config.model.condition == "city" else None
        if config.loss.nearest_of > 1:
            draw = self._nearest_randomness(mask, label, real, config.loss.nearest_of, autocast)
        else:
            draw = self._randomness(mask)
        code, second, encoded = draw.code, None, None
        with autocast:
            if E is not None:  # each mask drawn with its own real image's code (BicycleGAN)
                mean, log_var = E(real)
                code = sample_codes(mean, log_var)
            fake = G(mask, label, code, draw.noise) if self.styled else G(mask)
            if config.loss.mode_seeking > 0 or E is not None:  # the same masks, another code and noise
                other = self._randomness(mask)
                second = SecondDraw(G(mask, label, other.code, other.noise), _flat(other.code, other.noise),
                                    _flat(code.detach() if code is not None else None, draw.noise))
        if E is not None:  # the random code must be readable from its image: G's task, not E's
            E.requires_grad_(False)
            with autocast:
                read_back, _ = E(second.image)
            E.requires_grad_(True)
            encoded = Encoded(mean, log_var, read_back, other.code)

        terms: dict[str, torch.Tensor] = {}
        if D is not None:
            D.requires_grad_(True)
            judged_mask, judged_fake, judged_real, judged_label = mask, fake, real, label
            if E is not None:  # D learns from the encoded and the random codes' images alike
                judged_mask, judged_real, judged_label = _twice(mask), _twice(real), _twice(label)
                judged_fake = torch.cat([fake, second.image])
            with autocast:
                loss_d, terms_d = discriminator_loss(D, judged_mask, judged_fake, judged_real, config, judged_label)
            self._check_finite(loss_d, "discriminator")
            self.nets["discriminator"].opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss_d).backward()
            self.procs.average_gradients(D)  # D runs twice per step, so it is not DDP-wrapped
            self.scaler.step(self.nets["discriminator"].opt)
            D.requires_grad_(False)
            terms.update(terms_d)

        with autocast:
            aligner = self.aligner if self.epoch >= config.loss.seg_warmup else None
            loss_g, terms_g = generator_loss(D, self.vgg, mask, fake, real, config, label, second, encoded, aligner)
        self._check_finite(loss_g, "generator")
        learners = [self.nets[name] for name in ("generator", "encoder") if name in self.nets]  # G's loss trains E
        for learner in learners:
            learner.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.nets["generator"].opt)
        if E is not None:  # like D, E is not DDP-wrapped: its gradients are averaged by hand
            self.procs.average_gradients(E)
            self.scaler.step(self.nets["encoder"].opt)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(bare(G))
        terms.update(terms_g)
        return {k: float(v.detach()) for k, v in terms.items()}

    def _randomness(self, mask: torch.Tensor) -> Draw:
        """A style code per sample and per-pixel noise, where the generator takes them."""
        m, n = self.config.model, len(mask)
        code = torch.randn(n, m.latent, device=self.device) if m.latent else None
        noise = torch.randn(n, m.noise, *mask.shape[2:], device=self.device) if m.noise else None
        return Draw(code, noise)

    def _nearest_randomness(self, mask: torch.Tensor, label: torch.Tensor | None, real: torch.Tensor, draws: int,
                            autocast) -> Draw:
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
        return Draw(best_code, best_noise)

    def _check_finite(self, loss: torch.Tensor, which: str) -> None:
        if not self.procs.all_true(bool(torch.isfinite(loss.detach())), self.device):  # every rank stops together
            saved = self.run.newest_saved()
            kept = f"the last good checkpoint is {saved}" if saved else f"{self.run.root} holds no checkpoint yet"
            raise NonFiniteLoss(
                f"the {which} loss became {float(loss.detach())} at epoch {self.epoch + 1}, step {self.step + 1}; "
                f"training stopped, {kept} (try a lower train.lr, or train.amp=off)"
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
        scores = {**image_scores(fake, real), **self.realism(fake, real)}
        if self.procs.is_main:
            shown = self.config.train.control_images
            grid = control_grid(masks[:shown], fake[:shown], real[:shown])
            for name, value in scores.items():
                self.writer.add_scalar(f"val/{name}", value, self.epoch)
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
        for name, net in self.nets.items():
            self.writer.add_scalar(f"lr/{name}", net.opt.param_groups[0]["lr"], self.epoch)
        write_json(self.run.history, self.history)

    def save(self, name: str) -> None:
        state = self.state_dict()  # on every rank: gathering the RNG states takes them all
        if self.procs.is_main:
            self.run.save(name, self.config, state, self.train_set, self.trained_with)

    # -- the run's state: what a checkpoint keeps, and restoring it ------------------------------
    def state_dict(self) -> dict:
        """What a checkpoint keeps to continue this run exactly (:meth:`load_state_dict` mirrors it)."""
        rng = self.procs.gather(rng_state())  # every rank's, so each resumes its own stream
        state = {key: None for keys in STATE_KEYS.values() for key in keys}
        for name, net in self.nets.items():
            state.update({key: part.state_dict() for key, part in zip(STATE_KEYS[name], net.parts(), strict=True)})
        return {**state, "generator_ema": self.ema.state_dict() if self.ema is not None else None,
                "scaler": self.scaler.state_dict(), "rng": rng, "epoch": self.epoch, "step": self.step,
                "batch_in_epoch": self.batch_in_epoch, "partial": self.partial, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`. Call it before :meth:`wrap`: the bare networks' parameter
        names are those saved. Networks are architecture: :meth:`resume_from` has checked that
        the checkpoint has this config's."""
        if self.ema is not None and state.get("generator_ema") is None:
            raise SatganError("the checkpoint keeps no moving average of the generator; resume with train.ema=0")
        for name, net in self.nets.items():
            for key, part in zip(STATE_KEYS[name], net.parts(), strict=True):
                part.load_state_dict(state[key])
        if self.ema is not None:
            self.ema.load_state_dict(state["generator_ema"])
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
        """DDP and torch.compile wrappers, after any restore (see :meth:`load_state_dict`).
        Only G is under DDP: D and E run twice per step, so their gradients are averaged by
        hand in :meth:`train_step`; E is left uncompiled."""
        batch_norm = self.config.model.norm == "batch"
        if batch_norm and self.procs.distributed and self.device.type != "cuda" and self.procs.is_main:
            warnings.warn("batch norm statistics are per process on CPU (SyncBatchNorm needs GPUs)",
                          SatganWarning, stacklevel=2)
        for name in ("generator", "discriminator"):
            if name in self.nets:
                self.nets[name].net = wrapped(self.nets[name].net, self.procs, self.device, sync_batch_norm=batch_norm,
                                              ddp=name == "generator", compile=self.config.train.compile)


def train(data_dir: str | os.PathLike, run_dir: str | os.PathLike, config: Config, resume: str = "never",
          overwrite: bool = False, on_epoch_end=None) -> dict:
    """Train ``config`` on the pretransformed ``data_dir`` into ``run_dir``; return the last
    validation metrics. ``resume``: ``never`` (a run dir holding a run is refused unless
    ``overwrite``), ``auto`` (continue from the newest intact checkpoint, if any, falling
    back past unreadable ones), or a checkpoint path."""
    procs = Processes.start(config.train.device)
    try:
        trainer = Trainer(data_dir, run_dir, config, procs)  # checks everything, writes nothing
        start = trainer.run.starting_point(resume, overwrite, data_dir)
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
