"""Validation during training: which split, the generated samples, and realism (KID)."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from satgan import SatganError, SatganWarning, metrics
from satgan.config import Config
from satgan.data.dataset import PairDataset
from satgan.metrics import model_to_unit_range
from satgan.models.conditioning import StyledGenerator, noise_fields
from satgan.models.layers import unsharp_mask


def validation_set(train_set: PairDataset, config: Config, warn: bool = True) -> PairDataset:
    """The split validation scores: ``val``, else (with a warning) the training split itself."""
    if "val" in train_set.manifest["splits"]:
        val = PairDataset(train_set.root, "val", config.data, augment=False)
    else:
        if warn:
            warnings.warn(f"{train_set.root} has no val split: validating on the first training samples, "
                          "whose scores flatter the model", SatganWarning, stacklevel=3)
        val = PairDataset(train_set.root, "train", config.data, augment=False)
    if train_set.labels:
        try:
            val.set_labels(train_set.labels)
        except SatganError as exc:
            raise SatganError(f"{exc}: a city the model never trains on cannot be validated; move its pairs to "
                              "train, or pretransform with another --val") from None
    return val


def psnr(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of model images in [-1, 1], computed on [0, 1] (peak 1), per image."""
    return metrics.psnr(model_to_unit_range(fake), model_to_unit_range(real))


def image_scores(fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """Mean PSNR and SSIM of generated against real model images."""
    return {"psnr": float(psnr(fake, real).mean()),
            "ssim": float(metrics.ssim(model_to_unit_range(fake), model_to_unit_range(real)))}


@torch.no_grad()
def generate_samples(G: nn.Module, dataset: PairDataset, n: int, device: torch.device, amp: torch.dtype | None,
                     sharpen: float = 0.0):
    """Masks, generated images (G in eval mode; each of its own city, with the average
    style code and noise fixed per sample, where G is styled; unsharp-masked by ``sharpen``
    as generation does) and real images of ``dataset``'s first ``n`` samples, as model
    tensors on the CPU."""
    styled = isinstance(G, StyledGenerator)
    channels = G.noise if styled else 0
    was_training = G.training
    G.eval()
    masks, fakes, reals = [], [], []
    for i in range(n):
        item = dataset[i]
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            mask = item["mask"][None].to(device)
            label = torch.tensor([item["label"]], device=device) if "label" in item else None
            noise = noise_fields(1, channels, *mask.shape[2:], seed=i) if channels else None  # the same each time
            fake = (G(mask, label, noise=noise) if styled else G(mask)).float()
            fakes.append(unsharp_mask(fake, sharpen).clamp(-1, 1).cpu())
        masks.append(item["mask"][None])
        reals.append(item["image"][None])
    G.train(was_training)
    return torch.cat(masks), torch.cat(fakes), torch.cat(reals)


class ValidationKID:
    """KID between the validation subset's generated and real images, on the FID Inception,
    where that file is installed: realism per epoch beside PSNR and SSIM. With a dozen
    images it is noisy; watch its trend, and score finished models with satgan evaluate."""

    def __init__(self, enabled: bool, device: torch.device):
        self.extractor, self.real = None, None
        if enabled:
            try:
                self.extractor = metrics.InceptionFeatures(device=device)
            except SatganError:
                pass  # no Inception file: validation reports PSNR and SSIM only

    def __call__(self, fake: torch.Tensor, real: torch.Tensor) -> dict:
        if self.extractor is None or len(fake) < 2:
            return {}
        if self.real is None:  # the real subset does not change
            self.real = metrics.features(self.extractor, model_to_unit_range(real))
        fake_features = metrics.features(self.extractor, model_to_unit_range(fake))
        return {"kid": metrics.kid(fake_features, self.real, subsets=50)[0]}


def control_grid(masks: torch.Tensor, fakes: torch.Tensor, reals: torch.Tensor) -> np.ndarray:
    """Rows of mask | generated | real (model tensors in [-1, 1]) as an ``(H, W, 3) uint8`` image."""
    from torchvision.utils import make_grid

    masks = masks.expand(-1, 3, -1, -1) if masks.shape[1] == 1 else masks
    rows = torch.stack([masks, fakes, reals], dim=1).flatten(0, 1)
    grid = make_grid(model_to_unit_range(rows), nrow=3, padding=2, pad_value=1.0).clamp(0, 1)
    return (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
