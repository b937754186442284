"""One training step of :class:`satgan.training.trainer.Trainer`: D's update then G's (and the style
encoder's), the style codes and noises drawn for it, and the stop on a non-finite loss."""

from __future__ import annotations

import torch

from satgan import SatganError
from satgan.models.encoder import sample_codes
from satgan.models.objective import Encoded, SecondDraw, discriminator_loss, generator_loss
from satgan.training.state import bare


class NonFiniteLoss(SatganError):
    pass


def _flat(*parts: torch.Tensor | None) -> torch.Tensor:
    """The given tensors, each flattened per sample, side by side: one code per sample."""
    return torch.cat([p.flatten(1) for p in parts if p is not None], dim=1)


class TrainingStep:
    """The step methods of :class:`satgan.training.trainer.Trainer`, on the networks, optimizers and
    settings its ``__init__`` builds."""

    def train_step(self, batch: dict) -> dict[str, float]:
        """One optimisation step of D (when there is one) then G; returns the loss terms."""
        mask = batch["mask"].to(self.device, non_blocking=True)
        real = batch["image"].to(self.device, non_blocking=True)
        if self.config.train.channels_last:
            mask = mask.contiguous(memory_format=torch.channels_last)
            real = real.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None)
        m = self.config.model
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
                second = SecondDraw(self.G(mask, label, other_code, other_noise), _flat(other_code, other_noise),
                                    _flat(code.detach() if code is not None else None, noise))
        if self.E is not None:  # the random code must be readable from its image: G's task, not E's
            self.E.requires_grad_(False)
            with autocast:
                read_back, _ = self.E(second.image)
            self.E.requires_grad_(True)
            encoded = Encoded(mean, log_var, read_back, other_code)
        terms: dict[str, torch.Tensor] = {}
        if self.D is not None:
            self.D.requires_grad_(True)
            judged = (mask, fake, real, label)
            if self.E is not None:  # D learns from the encoded and the random codes' images alike
                judged = (torch.cat([mask, mask]), torch.cat([fake, second.image]), torch.cat([real, real]),
                          None if label is None else torch.cat([label, label]))
            with autocast:
                loss_d, terms_d = discriminator_loss(self.D, *judged[:3], self.config, judged[3])
            self._check_finite(loss_d, "discriminator")
            self.opt_D.zero_grad(set_to_none=True)
            self.scaler.scale(loss_d).backward()
            self.procs.average_gradients(self.D)  # D runs twice per step, so it is not DDP-wrapped
            self.scaler.step(self.opt_D)
            self.D.requires_grad_(False)
            terms.update(terms_d)
        with autocast:
            loss_g, terms_g = generator_loss(self.D, self.vgg, mask, fake, real, self.config, label, second, encoded)
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
