"""What pix2pix minimises, composed in one place: the discriminator's and the generator's
loss terms, their weights, and their names (used by training, logging and plots).

Images are in [-1, 1]. Each function returns the weighted total to back-propagate and
the unweighted terms by name, for logging.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from satgan.config import Config, discriminator_kind
from satgan.models.augment import augment_pairs
from satgan.models.encoder import kl_to_standard_normal
from satgan.models.losses import alignment_loss, detail_loss, feature_matching_loss


@dataclass
class SecondDraw:
    """Another generation of the same masks with another style code and noise (for mode
    seeking and the style encoder); codes are flattened per sample, noise included."""

    image: torch.Tensor
    code: torch.Tensor  # the code (and noise) ``image`` was drawn with
    first_code: torch.Tensor  # the code (and noise) of the first generation, ``fake``


@dataclass
class Encoded:
    """The style encoder's side of a step (BicycleGAN): the encoded codes' mean and
    log-variance, and the code read back from the image drawn with ``random_code``."""

    mean: torch.Tensor
    log_var: torch.Tensor
    read_back: torch.Tensor
    random_code: torch.Tensor


# Every loss term by name: who minimises it, and what it is. Plots and logs read this; a
# discriminator kind's extra terms are named by the kind (DiscriminatorKind.extra_loss).
LOSS_TERMS = {
    "D_real": ("discriminator", "real pairs judged real"),
    "D_fake": ("discriminator", "generated pairs judged fake"),
    "G_GAN": ("generator", "adversarial: generated pairs judged real"),
    "G_FM": ("generator", "discriminator feature matching"),
    "G_L1": ("generator", "L1 to the real image"),
    "G_VGG": ("generator", "VGG19 perceptual distance"),
    "G_detail": ("generator", "local detail energy against the real image's"),
    "G_seg": ("generator", "alignment: a frozen segmenter's cross-entropy on the pixels it misreads"),
    "D_R1": ("discriminator", "R1: squared gradient of D on real pairs"),
    "G_MS": ("generator", "mode seeking: 1 / (image distance per code distance) of two codes and noises"),
    "G_KL": ("generator", "KL of the encoded style codes to N(0, 1)"),
    "G_latent": ("generator", "L1 of a random code to the one the encoder reads back from its image"),
}

# The discriminator's health, logged beside the losses: the share of real and of generated
# pairs (pixels, for oasis) it calls real and fake. Both near 0.5 all run long: a D at
# chance that teaches the generator nothing; both near 1: a D that has won.
HEALTH_TERMS = {
    "D_acc_real": "share of real pairs D calls real",
    "D_acc_fake": "share of generated pairs D calls fake",
}


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


def discriminator_loss(D: nn.Module, mask: torch.Tensor, fake: torch.Tensor, real: torch.Tensor, config: Config,
                       label: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Real pairs up, generated pairs down (``fake`` detached: D's step leaves G alone),
    by the loss of ``model.discriminator``'s kind, plus any extra term the kind adds; D
    sees both pairs of a sample through the same augmentation; R1 penalises its gradient
    on the real pairs it sees. The terms include D's accuracy (:data:`HEALTH_TERMS`)."""
    cfg, kind = config.loss, discriminator_kind(config.model.discriminator)
    mask, (fake, real) = augment_pairs(mask, [fake.detach(), real], cfg.d_augment)
    if cfg.r1_weight > 0:
        real = real.detach().requires_grad_(True)
    pred_fake, pred_real = discriminate(D, mask, fake, real, config.model.norm == "batch", label)
    terms = {"D_fake": kind.loss(pred_fake, mask, False, config),
             "D_real": kind.loss(pred_real, mask, True, config),
             "D_acc_real": kind.accuracy(pred_real, mask, True, config),
             "D_acc_fake": kind.accuracy(pred_fake, mask, False, config)}
    total = terms["D_fake"] + terms["D_real"]
    if kind.halve_loss:
        total = 0.5 * total
    for name, (weight, term) in kind.extra_loss(D, mask, fake, real, pred_fake, pred_real, label, config).items():
        terms[name] = term
        total = total + weight * term
    if cfg.r1_weight > 0:
        logits = sum(scale[-1].float().sum() for scale in pred_real)
        (grad,) = torch.autograd.grad(logits, real, create_graph=True)
        terms["D_R1"] = grad.float().pow(2).flatten(1).sum(1).mean()
        total = total + 0.5 * cfg.r1_weight * terms["D_R1"]
    return total, terms


def generator_loss(D: nn.Module | None, vgg: nn.Module | None, mask: torch.Tensor, fake: torch.Tensor,
                   real: torch.Tensor, config: Config, label: torch.Tensor | None = None,
                   second: SecondDraw | None = None, encoded: Encoded | None = None,
                   segmenter: nn.Module | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Fool D (when there is one), match the real image (L1, VGG); with ``second`` (another
    generation of the same masks), seek modes; with a frozen ``segmenter``, be read as the
    mask (``loss.seg_weight``).

    With a style encoder, ``fake`` was drawn with the real image's encoded code and
    ``second`` with a random one, whose code the encoder read back (``encoded``): L1 goes
    to ``fake`` only, D judges both, and the KL and read-back terms join."""
    cfg, kind = config.loss, discriminator_kind(config.model.discriminator)
    terms: dict[str, torch.Tensor] = {}
    weighted: list[torch.Tensor] = []
    variety = second is not None and cfg.variety_l1
    judge_both = second is not None and (variety or encoded is not None)
    seek_in_d = second is not None and cfg.mode_seeking > 0 and cfg.mode_seeking_space == "discriminator"
    pred_other = None
    if D is not None:
        if seek_in_d:  # both generations through one augmentation: D's features differ by the images alone
            seen_mask, (seen_fake, seen_real, seen_other) = augment_pairs(mask, [fake, real, second.image],
                                                                          cfg.d_augment)
            pred_other = D(seen_mask, seen_other, label)
        else:
            seen_mask, (seen_fake, seen_real) = augment_pairs(mask, [fake, real], cfg.d_augment)
        pred_fake = D(seen_mask, seen_fake, label)
        terms["G_GAN"] = kind.loss(pred_fake, seen_mask, True, config, for_discriminator=False)
        if judge_both:  # the generation L1 leaves alone must still look real
            if pred_other is None:
                seen_mask2, (seen_other,) = augment_pairs(mask, [second.image], cfg.d_augment)
                pred_other = D(seen_mask2, seen_other, label)
            else:
                seen_mask2 = seen_mask
            other_gan = kind.loss(pred_other, seen_mask2, True, config, for_discriminator=False)
            terms["G_GAN"] = 0.5 * (terms["G_GAN"] + other_gan)
        weighted.append(cfg.gan_weight * terms["G_GAN"])
        if cfg.fm_weight > 0:
            with torch.no_grad():
                pred_real = D(seen_mask, seen_real, label)
            terms["G_FM"] = feature_matching_loss(pred_fake, pred_real)
            weighted.append(cfg.fm_weight * terms["G_FM"])
    if cfg.l1_weight > 0:
        if variety:  # the closer of the two generations per sample: the other is free to differ
            distances = torch.stack([(f - real).abs().flatten(1).mean(1) for f in (fake, second.image)])
            terms["G_L1"] = distances.min(0).values.mean()
        else:
            terms["G_L1"] = F.l1_loss(fake, real)
        weighted.append(cfg.l1_weight * terms["G_L1"])
    if cfg.detail_weight > 0:
        terms["G_detail"] = detail_loss(fake.float(), real.float(), mask if cfg.detail_region == "edges" else None,
                                        cfg.detail_share or None)
        weighted.append(cfg.detail_weight * terms["G_detail"])
    if segmenter is not None and cfg.seg_weight > 0:  # the images L1 sees, not D's augmented views
        terms["G_seg"] = alignment_loss(segmenter(fake), mask)
        weighted.append(cfg.seg_weight * terms["G_seg"])
    if vgg is not None:
        with torch.autocast(fake.device.type, enabled=False):  # VGG features overflow in fp16
            terms["G_VGG"] = vgg(fake.float(), real.float())
        weighted.append(cfg.vgg_weight * terms["G_VGG"])
    if encoded is not None:
        terms["G_KL"] = kl_to_standard_normal(encoded.mean.float(), encoded.log_var.float())
        terms["G_latent"] = (encoded.read_back.float() - encoded.random_code.float()).abs().mean()
        weighted += [cfg.kl_weight * terms["G_KL"], cfg.latent_weight * terms["G_latent"]]
    if second is not None and cfg.mode_seeking > 0:
        distance = feature_distance(pred_fake, pred_other) if seek_in_d else (fake - second.image).abs().mean()
        terms["G_MS"] = mode_seeking_loss(distance, second.first_code, second.code)
        weighted.append(cfg.mode_seeking * terms["G_MS"])
    total = weighted[0]  # the config guarantees at least one term
    for w in weighted[1:]:
        total = total + w
    return total, terms
