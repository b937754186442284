"""Training: pix2pix with checkpoints that resume exactly, AMP, TensorBoard and DDP.

``train(data_dir, run_dir, config)`` is the whole job; ``Trainer.fit`` is the loop, read
top to bottom. One process trains on one device; under ``torchrun`` each process takes
its share of every batch, gradients are averaged, and rank 0 alone logs and saves.

Run directory::

    RUN_DIR/config.json              the run's config (another run there needs --resume auto or --overwrite)
    RUN_DIR/checkpoints/last.pt      refreshed every ``checkpoint_every`` steps and each epoch
    RUN_DIR/checkpoints/epoch_NNNN.pt  kept every ``keep_every`` epochs
    RUN_DIR/samples/epoch_NNNN.png   control images: mask | generated | real
    RUN_DIR/history.json             per epoch: mean losses, lr, time; val PSNR/SSIM when validated
    RUN_DIR/tb/                      TensorBoard events
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from satgan import metrics
from satgan.atomic import write_json
from satgan.checkpoint import (
    LAST,
    architecture_differences,
    checkpoint_config,
    load_checkpoint,
    newest_intact,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from satgan.config import Config, to_dict
from satgan.data.dataset import PairDataset
from satgan.data.readers import SatganWarning
from satgan.errors import SatganError
from satgan.models.factory import build_discriminator, build_generator, build_vgg_loss
from satgan.models.losses import feature_matching_loss, gan_loss

SCHEDULERS = ("linear", "step", "cosine", "plateau", "constant")


# -- small pieces -----------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else CPU. Asking for CUDA without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SatganError(f"device={name} but no CUDA GPU is available here; use device=auto or cpu")
    return torch.device(name)


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full precision (always on CPU)."""
    if mode not in ("auto", "bf16", "fp16", "off"):
        raise SatganError(f"unknown amp {mode!r}; choose from auto, bf16, fp16, off")
    if device.type != "cuda" or mode == "off":
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if mode == "bf16" else torch.float16


def psnr(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of images in [-1, 1], computed on [0, 1] (peak 1), per image."""
    return metrics.psnr((fake + 1) / 2, (real + 1) / 2)


def ssim(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of images in [-1, 1], computed on [0, 1]."""
    return metrics.ssim((fake + 1) / 2, (real + 1) / 2)


class EpochSampler(Sampler[int]):
    """A shuffled order that depends only on (seed, epoch): the same in a resumed run.

    Under DDP, rank r takes every world-th index, so the ranks' batches together are
    exactly the single-process batch. ``start`` skips the samples of batches already
    trained in this epoch (resuming mid-epoch).
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1):
        self.size, self.seed, self.rank, self.world = size, seed, rank, world
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _order(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=g).tolist()
        usable = len(order) - len(order) % self.world  # every rank gets as many samples
        return order[self.start : usable][self.rank :: self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self._order())

    def __len__(self) -> int:
        return len(self._order())


def _unwrap(net: nn.Module | None) -> nn.Module | None:
    net = getattr(net, "_orig_mod", net)  # torch.compile
    return getattr(net, "module", net)  # DDP


class NonFiniteLoss(SatganError):
    pass


# -- the trainer --------------------------------------------------------------------------
class Trainer:
    """Builds everything from a :class:`Config` and runs :meth:`fit`."""

    def __init__(self, data_dir: str | os.PathLike, run_dir: str | os.PathLike, config: Config,
                 resume: str = "never", overwrite: bool = False):
        self.config, cfg = config, config
        t = cfg.train
        self.data_dir, self.run_dir = Path(data_dir).expanduser(), Path(run_dir).expanduser()
        self.ckpt_dir = self.run_dir / "checkpoints"
        self._check_config(cfg)

        # distributed: torchrun sets RANK/WORLD_SIZE/LOCAL_RANK
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.distributed and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() and t.device != "cpu" else "gloo"
            dist.init_process_group(backend)
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.is_main = self.rank == 0
        self.device = resolve_device(t.device)
        if self.device.type == "cuda" and self.distributed:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        self.amp = amp_dtype(t.amp, self.device)

        random.seed(t.seed)
        np.random.seed(t.seed)
        torch.manual_seed(t.seed)
        if t.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=False)
            torch.backends.cudnn.benchmark = False

        # data
        self.train_set = PairDataset(self.data_dir, "train", cfg.data, augment=True)
        splits = self.train_set.manifest["splits"]
        val_split = "val" if "val" in splits else "train"
        self.val_set = PairDataset(self.data_dir, val_split, cfg.data, augment=False)
        if t.batch_size % self.world:
            raise SatganError(f"batch_size {t.batch_size} must be a multiple of the {self.world} processes")
        self.local_batch = t.batch_size // self.world
        if t.batch_size > len(self.train_set):
            raise SatganError(
                f"batch_size {t.batch_size} is larger than the train split ({len(self.train_set)} samples); "
                "lower train.batch_size"
            )
        self.sampler = EpochSampler(len(self.train_set), t.seed, self.rank, self.world)
        self.loader = DataLoader(
            self.train_set, batch_size=self.local_batch, sampler=self.sampler, drop_last=True,
            num_workers=t.workers, pin_memory=self.device.type == "cuda", persistent_workers=False,
            generator=torch.Generator().manual_seed(t.seed),  # leaves the global RNG alone
        )
        self.steps_per_epoch = len(self.train_set) // t.batch_size

        # networks, optimizers, schedulers
        self.G = build_generator(cfg.model, cfg.data.crop).to(self.device)
        self.D = build_discriminator(cfg.model, cfg.loss, cfg.data.crop)
        self.D = self.D.to(self.device) if self.D is not None else None
        self.vgg = build_vgg_loss(cfg.loss)
        self.vgg = self.vgg.to(self.device) if self.vgg is not None else None
        if t.channels_last:
            self.G = self.G.to(memory_format=torch.channels_last)
            if self.D is not None:
                self.D = self.D.to(memory_format=torch.channels_last)
        betas = (t.beta1, t.beta2)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=t.lr, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=t.lr, betas=betas) if self.D is not None else None
        self.sched_G = self._scheduler(self.opt_G)
        self.sched_D = self._scheduler(self.opt_D) if self.opt_D is not None else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)

        # Networks are built from the same seed on every rank; training randomness (dropout)
        # then differs per rank, as it would across the samples of one big batch.
        random.seed(t.seed + self.rank)
        np.random.seed(t.seed + self.rank)
        torch.manual_seed(t.seed + self.rank)
        self.epoch, self.step, self.batch_in_epoch = 0, 0, 0
        self.partial = {"sums": {}, "seen": 0, "seconds": 0.0}  # the epoch so far (mid-epoch resume)
        self.history: list[dict] = []
        self.validation_seconds = 0.0  # time spent validating, for throughput figures
        self._prepare_run_dir(resume, overwrite)

        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            if cfg.model.norm == "batch" and self.device.type == "cuda":
                self.G = nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
                if self.D is not None:
                    self.D = nn.SyncBatchNorm.convert_sync_batchnorm(self.D)
            elif cfg.model.norm == "batch" and self.is_main:
                warnings.warn("batch norm statistics are per process on CPU (SyncBatchNorm needs GPUs)",
                              SatganWarning, stacklevel=2)
            self.G = DDP(self.G, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if t.compile:
            self.G = torch.compile(self.G)
            if self.D is not None:
                self.D = torch.compile(self.D)
        self.writer = None
        if self.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tb"))

    # -- setup helpers ----------------------------------------------------------------------
    @staticmethod
    def _check_config(cfg: Config) -> None:
        t = cfg.train
        if t.scheduler not in SCHEDULERS:
            raise SatganError(f"unknown scheduler {t.scheduler!r}; choose from {', '.join(SCHEDULERS)}")
        if cfg.model.input_channels != cfg.data.mask_channels:
            raise SatganError(
                f"model.input_channels={cfg.model.input_channels} but data.mask_channels="
                f"{cfg.data.mask_channels}; set both to 1 or both to 3"
            )
        if t.epochs < 1 or t.batch_size < 1:
            raise SatganError(f"epochs and batch_size must be 1 or more (got {t.epochs}, {t.batch_size})")

    def _scheduler(self, opt: torch.optim.Optimizer):
        t = self.config.train
        if t.scheduler == "linear":  # pix2pix: constant, then linearly to 0 over decay_epochs
            keep = max(t.epochs - t.decay_epochs, 0)
            return torch.optim.lr_scheduler.LambdaLR(
                opt, lambda e: 1.0 - max(0, e + 1 - keep) / float(t.decay_epochs + 1))
        if t.scheduler == "step":
            return torch.optim.lr_scheduler.StepLR(opt, step_size=t.step_epochs, gamma=t.gamma)
        if t.scheduler == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t.epochs, eta_min=0)
        if t.scheduler == "plateau":  # on validation PSNR (higher is better), not on the losses
            return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=t.gamma,
                                                              patience=t.plateau_patience)
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)

    def _prepare_run_dir(self, resume: str, overwrite: bool) -> None:
        """Start fresh, resume, or refuse a run dir that already holds a run."""
        config_file = self.run_dir / "config.json"
        if overwrite:
            if self.is_main:
                for path in self.ckpt_dir.glob("*.pt"):
                    path.unlink()
                for name in ("samples", "tb"):
                    shutil.rmtree(self.run_dir / name, ignore_errors=True)
                (self.run_dir / "history.json").unlink(missing_ok=True)
        elif resume == "never":
            if config_file.exists() or (self.ckpt_dir / LAST).exists():
                raise SatganError(
                    f"{self.run_dir} already holds a run; pass --resume auto to continue it "
                    "(with these settings), --overwrite to start over, or choose another RUN_DIR"
                )
        elif resume == "auto":
            found = newest_intact(self.ckpt_dir)
            if found is not None:
                self._restore(*found)
        else:
            self._restore(Path(resume), load_checkpoint(resume))
        if self.distributed:
            dist.barrier()  # rank 0 has cleared the old run before anyone writes
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json(config_file, to_dict(self.config))

    def _restore(self, path: Path, ckpt: dict) -> None:
        before = checkpoint_config(ckpt)
        diffs = architecture_differences(before, self.config)
        if diffs:
            raise SatganError(f"{path}: made with another architecture ({'; '.join(diffs)})")
        old, new = to_dict(before), to_dict(self.config)
        changed = [f"{sec}.{k}: {old[sec][k]!r} -> {new[sec][k]!r}" for sec in new for k in new[sec]
                   if old[sec].get(k) != new[sec][k]]
        if changed and self.is_main:
            warnings.warn(f"resuming {path} with changed settings: {'; '.join(changed)}", SatganWarning,
                          stacklevel=3)
        if ckpt.get("manifest_hash") and ckpt["manifest_hash"] != self.train_set.manifest["content_hash"]:
            warnings.warn(f"{path}: trained on other data (manifest hash differs)", SatganWarning, stacklevel=3)
        self.G.load_state_dict(ckpt["generator"])
        self.opt_G.load_state_dict(ckpt["opt_G"])
        self.sched_G.load_state_dict(ckpt["sched_G"])
        if self.D is not None:
            self.D.load_state_dict(ckpt["discriminator"])
            self.opt_D.load_state_dict(ckpt["opt_D"])
            self.sched_D.load_state_dict(ckpt["sched_D"])
        self.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"][self.rank] if isinstance(ckpt["rng"], list) else ckpt["rng"])
        self.partial = json.loads(ckpt.get("partial", '{"sums": {}, "seen": 0, "seconds": 0.0}'))
        self.epoch, self.step, self.batch_in_epoch = ckpt["epoch"], ckpt["step"], ckpt["batch_in_epoch"]
        self.history = json.loads(ckpt.get("history", "[]"))
        if self.is_main:
            print(f"resumed from {path}: epoch {self.epoch}, batch {self.batch_in_epoch}, step {self.step}")

    # -- the loop ---------------------------------------------------------------------------
    def fit(self, on_epoch_end=None) -> dict:
        """Train until ``train.epochs``; return the last history entry with validation metrics.

        ``on_epoch_end(trainer)``, if given, runs after each epoch (notebook 03's live plot).
        """
        t = self.config.train
        while self.epoch < t.epochs:
            sums: dict[str, float] = dict(self.partial["sums"])
            self.train_set.set_epoch(self.epoch)
            self.sampler.set_epoch(self.epoch, start=self.batch_in_epoch * t.batch_size)
            seen, before = self.partial["seen"], self.partial["seconds"]
            started = time.perf_counter()
            bar = tqdm(self.loader, desc=f"epoch {self.epoch + 1}/{t.epochs}", unit="batch",
                       initial=self.batch_in_epoch, total=self.steps_per_epoch, disable=not self.is_main)
            for batch in bar:
                losses = self.train_step(batch)
                for name, value in losses.items():
                    sums[name] = sums.get(name, 0.0) + value
                self.step += 1
                self.batch_in_epoch += 1
                seen += t.batch_size
                self.partial = {"sums": sums, "seen": seen, "seconds": before + time.perf_counter() - started}
                if self.is_main and self.step % t.log_every == 0:
                    for name, value in losses.items():
                        self.writer.add_scalar(f"loss/{name}", value, self.step)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
                if self.step % t.checkpoint_every == 0:
                    self.save(LAST)
            elapsed = before + time.perf_counter() - started
            steps = max(seen // t.batch_size, 1)
            self.partial = {"sums": {}, "seen": 0, "seconds": 0.0}
            self.epoch += 1
            self.batch_in_epoch = 0
            entry = {"epoch": self.epoch, "step": self.step, "lr": self.opt_G.param_groups[0]["lr"],
                     "seconds": round(elapsed, 3), **{k: v / steps for k, v in sums.items()}}
            if self.epoch % t.val_every == 0 or self.epoch == t.epochs:
                entry.update(self.validate())
            self.history.append(entry)
            self._step_schedulers(entry if "psnr" in entry else None)
            if self.is_main:
                self.writer.add_scalar("time/epoch_seconds", elapsed, self.epoch)
                self.writer.add_scalar("time/samples_per_second", seen / max(elapsed, 1e-9), self.epoch)
                self.writer.add_scalar("lr/generator", self.opt_G.param_groups[0]["lr"], self.epoch)
                if self.opt_D is not None:
                    self.writer.add_scalar("lr/discriminator", self.opt_D.param_groups[0]["lr"], self.epoch)
            if self.is_main:
                write_json(self.run_dir / "history.json", self.history)
            self.save(LAST)
            if t.keep_every and self.epoch % t.keep_every == 0:
                self.save(f"epoch_{self.epoch:04d}.pt")
            if on_epoch_end is not None and self.is_main:
                on_epoch_end(self)
        if self.writer is not None:
            self.writer.close()
        validated = [h for h in self.history if "psnr" in h]
        return validated[-1] if validated else {}

    def train_step(self, batch: dict) -> dict[str, float]:
        """One optimisation step of D (when there is one) then G; returns the loss terms."""
        cfg = self.config
        mask = batch["mask"].to(self.device, non_blocking=True)
        real = batch["image"].to(self.device, non_blocking=True)
        if cfg.train.channels_last:
            mask, real = mask.contiguous(memory_format=torch.channels_last), real.contiguous(
                memory_format=torch.channels_last)
        autocast = torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None)
        with autocast:
            fake = self.G(mask)
        out: dict[str, torch.Tensor] = {}

        if self.D is not None:  # discriminator: real pairs up, generated pairs down
            self.D.requires_grad_(True)
            with autocast:
                pred_fake, pred_real = self._discriminate(mask, fake.detach(), real)
                out["D_fake"] = gan_loss(pred_fake, False, cfg.loss.gan_mode)
                out["D_real"] = gan_loss(pred_real, True, cfg.loss.gan_mode)
                loss_d = 0.5 * (out["D_fake"] + out["D_real"])
            self._check_finite(loss_d, "discriminator")
            self.opt_D.zero_grad(set_to_none=True)
            self.scaler.scale(loss_d).backward()
            self._average_gradients(self.D)
            self.scaler.step(self.opt_D)
            self.D.requires_grad_(False)

        with autocast:  # generator: fool D, match the real image
            loss_g = 0.0
            if self.D is not None:
                pred_fake = self.D(mask, fake)
                out["G_GAN"] = gan_loss(pred_fake, True, cfg.loss.gan_mode, for_discriminator=False)
                loss_g = loss_g + cfg.loss.gan_weight * out["G_GAN"]
                if cfg.loss.fm_weight > 0:
                    with torch.no_grad():
                        pred_real = self.D(mask, real)
                    out["G_FM"] = feature_matching_loss(pred_fake, pred_real)
                    loss_g = loss_g + cfg.loss.fm_weight * out["G_FM"]
            if cfg.loss.l1_weight > 0:
                out["G_L1"] = F.l1_loss(fake, real)
                loss_g = loss_g + cfg.loss.l1_weight * out["G_L1"]
        if self.vgg is not None:
            out["G_VGG"] = self.vgg(fake.float(), real.float())
            loss_g = loss_g + cfg.loss.vgg_weight * out["G_VGG"]
        if not torch.is_tensor(loss_g):
            raise SatganError("the generator has no loss: set loss.l1_weight, loss.vgg_weight or loss.gan_weight")
        self._check_finite(loss_g, "generator")
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_G)
        self.scaler.update()
        return {k: float(v.detach()) for k, v in out.items()}

    def _discriminate(self, mask: torch.Tensor, fake: torch.Tensor, real: torch.Tensor):
        """D's outputs for the fake and the real pairs. Without batch norm, one pass over
        both (as SPADE does) gives the same values as two and runs faster; with batch
        norm, two passes keep the reference's separate fake/real statistics."""
        if self.config.model.norm == "batch":
            return self.D(mask, fake), self.D(mask, real)
        both = self.D(torch.cat([mask, mask]), torch.cat([fake, real]))
        n = mask.shape[0]
        return ([[f[:n] for f in scale] for scale in both], [[f[n:] for f in scale] for scale in both])

    def _average_gradients(self, net: nn.Module) -> None:
        """DDP by hand for D, which runs twice per step: average its gradients over ranks."""
        if not self.distributed:
            return
        for p in net.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= self.world

    def _check_finite(self, loss: torch.Tensor, which: str) -> None:
        finite = torch.isfinite(loss.detach()).float()
        if self.distributed:  # every rank stops together, or the others would wait forever
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if not finite:
            raise NonFiniteLoss(
                f"the {which} loss became {float(loss.detach())} at epoch {self.epoch + 1}, step {self.step + 1}; "
                f"training stopped, the last good checkpoint is {self.ckpt_dir / LAST} "
                "(try a lower train.lr, or train.amp=off)"
            )

    def _step_schedulers(self, metrics: dict | None) -> None:
        for sched in (self.sched_G, self.sched_D):
            if sched is None:
                continue
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if metrics is not None:
                    sched.step(metrics["psnr"])
            else:
                sched.step()

    # -- validation and checkpoints -------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict:
        """PSNR and SSIM of the generator (eval mode) on the fixed validation subset;
        logs them and writes the control image grid."""
        started = time.perf_counter()
        n = min(self.config.train.val_samples, len(self.val_set))
        G = _unwrap(self.G)
        G.eval()
        masks, fakes, reals = [], [], []
        for i in range(n):
            item = self.val_set[i]
            mask = item["mask"][None].to(self.device)
            with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
                fakes.append(G(mask).float().cpu())
            masks.append(item["mask"][None])
            reals.append(item["image"][None])
        G.train()
        fake, real = torch.cat(fakes), torch.cat(reals)
        metrics = {"psnr": float(psnr(fake, real).mean()), "ssim": float(ssim(fake, real))}
        if self.is_main:
            self.writer.add_scalar("val/psnr", metrics["psnr"], self.epoch)
            self.writer.add_scalar("val/ssim", metrics["ssim"], self.epoch)
            grid = control_grid(torch.cat(masks)[:8], fake[:8], real[:8])
            self.writer.add_image("val/mask_generated_real", grid, self.epoch)
            save_grid(grid, self.run_dir / "samples" / f"epoch_{self.epoch:04d}.png")
            print(f"epoch {self.epoch}: val PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f}")
        self.validation_seconds += time.perf_counter() - started
        return metrics

    def save(self, name: str) -> None:
        rng = rng_state()
        if self.distributed:  # every rank's RNG, so each resumes its own stream
            states: list = [None] * self.world
            dist.all_gather_object(states, rng)
            rng = states
        if not self.is_main:
            return
        D = _unwrap(self.D)
        state = {
            "config": to_dict(self.config),
            "generator": _unwrap(self.G).state_dict(),
            "discriminator": D.state_dict() if D is not None else None,
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict() if self.opt_D is not None else None,
            "sched_G": self.sched_G.state_dict(),
            "sched_D": self.sched_D.state_dict() if self.sched_D is not None else None,
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "partial": json.dumps(self.partial),
            "epoch": self.epoch,
            "step": self.step,
            "batch_in_epoch": self.batch_in_epoch,
            "manifest_hash": self.train_set.manifest.get("content_hash", ""),
            "pixel_scale": self.train_set.pixel_scale,  # source px per training px, for generation
            "history": json.dumps(self.history),
        }
        save_checkpoint(self.ckpt_dir / name, state)


def control_grid(masks: torch.Tensor, fakes: torch.Tensor, reals: torch.Tensor) -> torch.Tensor:
    """Rows of mask | generated | real, as a (3, H, W) float image in [0, 1]."""
    from torchvision.utils import make_grid

    masks = masks.expand(-1, 3, -1, -1) if masks.shape[1] == 1 else masks
    rows = torch.stack([masks, fakes, reals], dim=1).flatten(0, 1)
    return make_grid((rows + 1) / 2, nrow=3, padding=2, pad_value=1.0).clamp(0, 1)


def save_grid(grid: torch.Tensor, path: Path) -> None:
    from PIL import Image

    from satgan.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray((grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(tmp)


def train(data_dir: str | os.PathLike, run_dir: str | os.PathLike, config: Config, resume: str = "never",
          overwrite: bool = False, on_epoch_end=None) -> dict:
    """Train ``config`` on the pretransformed ``data_dir`` into ``run_dir``; return the last
    validation metrics. ``resume``: ``never`` (a run dir holding a run is refused unless
    ``overwrite``), ``auto`` (continue from the newest intact checkpoint, if any, falling
    back past unreadable ones), or a checkpoint path."""
    try:
        trainer = Trainer(data_dir, run_dir, config, resume=resume, overwrite=overwrite)
    except BaseException:
        if dist.is_initialized():
            dist.destroy_process_group()
        raise
    try:
        return trainer.fit(on_epoch_end)
    finally:
        if trainer.distributed and dist.is_initialized():
            dist.destroy_process_group()
