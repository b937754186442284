"""What pix2pix minimises, composed in one place: the discriminator's and the generator's
loss terms, their weights, and their names (used by training, logging and plots).

Images are in [-1, 1]. Each function returns the weighted total to back-propagate and
the unweighted terms by name, for logging.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from satgan.config import LossConfig
from satgan.models.augment import augment_pairs
from satgan.models.encoder import kl_to_standard_normal
from satgan.models.losses import detail_loss, feature_matching_loss, gan_loss
from satgan.models.oasis import FAKE, labelmix, labelmix_loss, mask_classes, segmentation_gan_loss

# Every loss term by name: who minimises it, and what it is. Plots and logs read this.
LOSS_TERMS = {
    "D_real": ("discriminator", "real pairs judged real"),
    "D_fake": ("discriminator", "generated pairs judged fake"),
    "G_GAN": ("generator", "adversarial: generated pairs judged real"),
    "G_FM": ("generator", "discriminator feature matching"),
    "G_L1": ("generator", "L1 to the real image"),
    "G_VGG": ("generator", "VGG19 perceptual distance"),
    "G_detail": ("generator", "local detail energy against the real image's"),
    "D_R1": ("discriminator", "R1: squared gradient of D on real pairs"),
    "G_MS": ("generator", "mode seeking: 1 / (image distance per code distance) of two codes and noises"),
    "G_KL": ("generator", "KL of the encoded style codes to N(0, 1)"),
    "G_latent": ("generator", "L1 of a random code to the one the encoder reads back from its image"),
    "D_labelmix": ("discriminator", "oasis: LabelMix consistency of D's verdicts"),
}

# The discriminator's health, logged beside the losses: the share of real and of generated
# pairs (pixels, for oasis) it calls real and fake. Both near 0.5 all run long: a D at
# chance that teaches the generator nothing; both near 1: a D that has won.
HEALTH_TERMS = {
    "D_acc_real": "share of real pairs D calls real",
    "D_acc_fake": "share of generated pairs D calls fake",
}


def adversarial_loss(pred: list[list[torch.Tensor]], mask: torch.Tensor, as_real: bool, cfg: LossConfig,
                     kind: str, for_discriminator: bool = True) -> torch.Tensor:
    """The GAN loss of the discriminator ``kind``: per patch (``gan_mode``) for patch and
    projected; for oasis, (N+1)-class cross-entropy toward the mask's classes (as real) or
    toward *fake*."""
    if kind == "oasis":
        return segmentation_gan_loss(pred[0][-1], mask_classes(mask), as_real, cfg.class_balance)
    return gan_loss(pred, as_real, cfg.gan_mode, for_discriminator)


@torch.no_grad()
def discriminator_accuracy(pred: list[list[torch.Tensor]], is_real: bool, cfg: LossConfig, kind: str) -> torch.Tensor:
    """The share of ``pred``'s patches (oasis: pixels) D places on the right side: called
    real for real pairs, fake for generated ones."""
    if kind == "oasis":
        called_real = pred[0][-1].argmax(1) != FAKE
        return (called_real == is_real).float().mean()
    threshold = 0.5 if cfg.gan_mode == "lsgan" else 0.0
    return torch.stack([((scale[-1].float() > threshold) == is_real).float().mean() for scale in pred]).mean()


def mode_seeking_loss(distance: torch.Tensor, code_a: torch.Tensor, code_b: torch.Tensor,
                      eps: float = 1e-5) -> torch.Tensor:
    """MSGAN (Mao et al. 2019): the ratio of two generations' ``distance`` to their codes'
    mean distance should be large, so the loss is its inverse: a generator that ignores
    its code pays without bound."""
    ratio = distance / (code_a - code_b).abs().mean()
    return 1 / (ratio + eps)


def feature_distance(a: list[list[torch.Tensor]], b: list[list[torch.Tensor]]) -> torch.Tensor:
    """Mean absolute difference of two passes' intermediate discriminator features (the
    logits left out), averaged over layers and scales: how differently D sees two images."""
    gaps = [(fa - fb).abs().mean() for sa, sb in zip(a, b, strict=True)
            for fa, fb in zip(sa[:-1], sb[:-1], strict=True)]
    return torch.stack(gaps).mean()


def discriminate(D: nn.Module, mask: torch.Tensor, fake: torch.Tensor, real: torch.Tensor, batch_norm: bool,
                 label: torch.Tensor | None = None):
    """D's outputs for the fake and the real pairs (of the samples' ``label``, where D is
    conditioned). Without batch norm one pass over both (as SPADE does) gives the same
    values as two and runs faster; with batch norm, two passes keep the reference's
    separate fake/real statistics."""
    if batch_norm:
        return D(mask, fake, label), D(mask, real, label)
    both = D(torch.cat([mask, mask]), torch.cat([fake, real]), None if label is None else torch.cat([label, label]))
    n = mask.shape[0]
    return [[f[:n] for f in scale] for scale in both], [[f[n:] for f in scale] for scale in both]


def discriminator_loss(D: nn.Module, mask: torch.Tensor, fake: torch.Tensor, real: torch.Tensor,
                       cfg: LossConfig, batch_norm: bool, label: torch.Tensor | None = None,
                       kind: str = "patch") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Real pairs up, generated pairs down (``fake`` detached: D's step leaves G alone);
    D sees both pairs of a sample through the same augmentation; R1 penalises its
    gradient on the real pairs it sees. ``kind``: ``model.discriminator`` (oasis: the two
    cross-entropies summed, as OASIS, plus LabelMix). The terms include D's accuracy
    (:data:`HEALTH_TERMS`)."""
    mask, (fake, real) = augment_pairs(mask, [fake.detach(), real], cfg.d_augment)
    if cfg.r1_weight > 0:
        real = real.detach().requires_grad_(True)
    pred_fake, pred_real = discriminate(D, mask, fake, real, batch_norm, label)
    terms = {"D_fake": adversarial_loss(pred_fake, mask, False, cfg, kind),
             "D_real": adversarial_loss(pred_real, mask, True, cfg, kind),
             "D_acc_real": discriminator_accuracy(pred_real, True, cfg, kind),
             "D_acc_fake": discriminator_accuracy(pred_fake, False, cfg, kind)}
    total = terms["D_fake"] + terms["D_real"]
    if kind != "oasis":
        total = 0.5 * total
    elif cfg.labelmix_weight > 0:
        mixed, choose = labelmix(mask_classes(mask), real.detach(), fake)
        pred_mixed = D(mask, mixed, label)
        terms["D_labelmix"] = labelmix_loss(pred_mixed[0][-1], pred_real[0][-1], pred_fake[0][-1], choose)
        total = total + cfg.labelmix_weight * terms["D_labelmix"]
    if cfg.r1_weight > 0:
        logits = sum(scale[-1].float().sum() for scale in pred_real)
        (grad,) = torch.autograd.grad(logits, real, create_graph=True)
        terms["D_R1"] = grad.float().pow(2).flatten(1).sum(1).mean()
        total = total + 0.5 * cfg.r1_weight * terms["D_R1"]
    return total, terms


def generator_loss(D: nn.Module | None, vgg: nn.Module | None, mask: torch.Tensor, fake: torch.Tensor,
                   real: torch.Tensor, cfg: LossConfig, label: torch.Tensor | None = None,
                   second: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
                   encoded: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
                   kind: str = "patch") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Fool D (when there is one), match the real image (L1, VGG); with ``second`` =
    (another generation of the same masks, its code, ``fake``'s code), seek modes.

    With a style encoder, ``fake`` was drawn with the real image's encoded code and
    ``second`` with a random one; ``encoded`` = (the codes' mean, log-variance, the code
    read back from ``second``'s image, the random code): L1 goes to ``fake`` only, D
    judges both, and the KL and read-back terms join."""
    terms: dict[str, torch.Tensor] = {}
    weighted: list[torch.Tensor] = []
    variety = second is not None and cfg.variety_l1
    judge_both = second is not None and (variety or encoded is not None)
    seek_in_d = second is not None and cfg.mode_seeking > 0 and cfg.mode_seeking_space == "discriminator"
    pred_other = None
    if D is not None:
        if seek_in_d:  # both generations through one augmentation: D's features differ by the images alone
            seen_mask, (seen_fake, seen_real, seen_other) = augment_pairs(mask, [fake, real, second[0]],
                                                                          cfg.d_augment)
            pred_other = D(seen_mask, seen_other, label)
        else:
            seen_mask, (seen_fake, seen_real) = augment_pairs(mask, [fake, real], cfg.d_augment)
        pred_fake = D(seen_mask, seen_fake, label)
        terms["G_GAN"] = adversarial_loss(pred_fake, seen_mask, True, cfg, kind, for_discriminator=False)
        if judge_both:  # the generation L1 leaves alone must still look real
            if pred_other is None:
                seen_mask2, (seen_other,) = augment_pairs(mask, [second[0]], cfg.d_augment)
                pred_other = D(seen_mask2, seen_other, label)
            else:
                seen_mask2 = seen_mask
            other_gan = adversarial_loss(pred_other, seen_mask2, True, cfg, kind, for_discriminator=False)
            terms["G_GAN"] = 0.5 * (terms["G_GAN"] + other_gan)
        weighted.append(cfg.gan_weight * terms["G_GAN"])
        if cfg.fm_weight > 0:
            with torch.no_grad():
                pred_real = D(seen_mask, seen_real, label)
            terms["G_FM"] = feature_matching_loss(pred_fake, pred_real)
            weighted.append(cfg.fm_weight * terms["G_FM"])
    if cfg.l1_weight > 0:
        if variety:  # the closer of the two generations per sample: the other is free to differ
            distances = torch.stack([(f - real).abs().flatten(1).mean(1) for f in (fake, second[0])])
            terms["G_L1"] = distances.min(0).values.mean()
        else:
            terms["G_L1"] = F.l1_loss(fake, real)
        weighted.append(cfg.l1_weight * terms["G_L1"])
    if cfg.detail_weight > 0:
        terms["G_detail"] = detail_loss(fake.float(), real.float(), mask if cfg.detail_region == "edges" else None,
                                        cfg.detail_share or None)
        weighted.append(cfg.detail_weight * terms["G_detail"])
    if vgg is not None:
        with torch.autocast(fake.device.type, enabled=False):  # VGG features overflow in fp16
            terms["G_VGG"] = vgg(fake.float(), real.float())
        weighted.append(cfg.vgg_weight * terms["G_VGG"])
    if encoded is not None:
        mean, log_var, read_back, random_code = encoded
        terms["G_KL"] = kl_to_standard_normal(mean.float(), log_var.float())
        terms["G_latent"] = (read_back.float() - random_code.float()).abs().mean()
        weighted += [cfg.kl_weight * terms["G_KL"], cfg.latent_weight * terms["G_latent"]]
    if second is not None and cfg.mode_seeking > 0:
        other, other_code, code = second
        distance = feature_distance(pred_fake, pred_other) if seek_in_d else (fake - other).abs().mean()
        terms["G_MS"] = mode_seeking_loss(distance, code, other_code)
        weighted.append(cfg.mode_seeking * terms["G_MS"])
    total = weighted[0]  # the config guarantees at least one term
    for w in weighted[1:]:
        total = total + w
    return total, terms
