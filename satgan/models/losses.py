"""Losses: adversarial (vanilla | lsgan | hinge), discriminator feature matching, detail
energy, alignment to the mask by a frozen segmenter, and the VGG19 perceptual loss.
Images are in [-1, 1]."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from satgan import SatganError
from satgan.models.layers import gaussian_blur
from satgan.models.weights_files import check_finite, read_torch_file, state_dict_of

GAN_MODES = ("vanilla", "lsgan", "hinge")


def alignment_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A frozen segmenter's building ``logits`` (N, 1, H, W) for generated images against
    their ``mask`` (N, C, H, W in [-1, 1]; a building where the channels' mean is > 0):
    binary cross-entropy on the pixels it misreads only, averaged over every pixel (as
    CRFM's). Pixels it already reads right cost nothing, so the generator is not pushed
    toward one network's idea of a perfect building, and the term fades as images align."""
    target = (mask.float().mean(1, keepdim=True) > 0).float()
    wrong = ((logits.detach() > 0).float() != target).float()
    return (F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none") * wrong).mean()


def gan_loss(logits: list[list[torch.Tensor]], real: bool, mode: str, for_discriminator: bool = True) -> torch.Tensor:
    """Adversarial loss over a (multi-scale) discriminator's output, averaged over scales.

    ``logits`` is the discriminator output: per scale, features with the logits last.
    vanilla: binary cross-entropy on logits; lsgan: least squares to 1/0; hinge:
    ``relu(1 - D)`` / ``relu(1 + D)`` for the discriminator, ``-D`` for the generator.
    """
    if mode not in GAN_MODES:
        raise SatganError(f"unknown gan_mode {mode!r}; choose from {', '.join(GAN_MODES)}")
    total = 0.0
    for scale in logits:
        x = scale[-1]
        if mode == "vanilla":
            target = torch.ones_like(x) if real else torch.zeros_like(x)
            total = total + F.binary_cross_entropy_with_logits(x, target)
        elif mode == "lsgan":
            total = total + F.mse_loss(x, torch.full_like(x, 1.0 if real else 0.0))
        elif for_discriminator:
            total = total + (F.relu(1 - x) if real else F.relu(1 + x)).mean()
        else:  # the generator's hinge loss: raise the critic's score of its images
            total = total - x.mean()
    return total / len(logits)


def feature_matching_loss(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between the discriminator's intermediate features of fake and real pairs (pix2pixHD),
    averaged over layers and scales; the real features are constants."""
    total, count = 0.0, 0
    for fake_scale, real_scale in zip(fake, real, strict=True):
        for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True):
            total = total + F.l1_loss(f, r.detach())
            count += 1
    return total / max(count, 1)


# -- VGG19 perceptual loss ----------------------------------------------------------------
VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILE}"
# Index in torchvision's vgg19().features of each ReLU output.
VGG19_LAYERS = {
    "relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8,
    "relu3_1": 11, "relu3_2": 13, "relu3_3": 15, "relu3_4": 17,
    "relu4_1": 20, "relu4_2": 22, "relu4_3": 24, "relu4_4": 26,
    "relu5_1": 29, "relu5_2": 31, "relu5_3": 33, "relu5_4": 35,
}
VGG19_KEYS = "features.0.weight, features.0.bias, features.2.weight"  # torchvision's naming
DEFAULT_VGG_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # pix2pixHD's


def local_detail(x: torch.Tensor, band: float = 2.0, window: float = 4.0) -> torch.Tensor:
    """How much detail each neighbourhood holds: the magnitude of what a blur of ``band``
    pixels removes, averaged over a Gaussian ``window``."""
    return gaussian_blur((x - gaussian_blur(x, band)).abs(), window)


def near_edges(mask: torch.Tensor, reach: int = 4) -> torch.Tensor:
    """Where a mask (N, C, H, W) changes within ``reach`` pixels: (N, 1, H, W) booleans."""
    m = mask.mean(1, keepdim=True)
    size = 2 * reach + 1
    return F.max_pool2d(m, size, 1, reach) != -F.max_pool2d(-m, size, 1, reach)


def detail_loss(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor | None = None,
                share: float | None = None) -> torch.Tensor:
    """How far the local detail energy of ``fake``'s brightness falls from ``real``'s
    (near the ``mask``'s edges only, when given). L1 to the image itself pays for detail
    drawn a pixel off (roofs offset from footprints, shadows), so under that uncertainty
    it learns none; this term pays for detail that is missing, wherever exactly it falls.
    With ``share``, only a shortfall below that share of the real detail costs: asked for
    all of it, the generator drew echoes around every edge (docs/RESULTS.md). Brightness
    only: per colour channel it drew rainbow fringes."""
    have, want = local_detail(fake.mean(1, keepdim=True)), local_detail(real.mean(1, keepdim=True))
    gap = (have - want).abs() if share is None else F.relu(share * want - have)
    if mask is None:
        return gap.mean()
    near = near_edges(mask)
    return (gap * near).sum() / near.sum().clamp(min=1)


def hub_checkpoint_dir() -> Path:
    """Where torch.hub keeps downloaded weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_vgg19_weights(path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The VGG19 ImageNet weights file: ``path`` if given, else the torch hub cache, else a
    download into that cache (where there is a network, as on Colab).

    Never falls back to random weights: without the file, a :class:`SatganError` says
    which file to put where.
    """
    if path:
        path = Path(path).expanduser()
        if path.is_dir():
            raise SatganError(f"{path}: is a folder, not a weights file (loss.vgg_weights: give {VGG19_FILE})")
        if not path.is_file():
            raise SatganError(f"VGG19 weights not found at {path} (vgg_weights setting)")
        return path
    cached = hub_checkpoint_dir() / VGG19_FILE
    if cached.is_file():
        return cached
    if download:
        try:
            torch.hub.download_url_to_file(VGG19_URL, str(cached), progress=True)
            return cached
        except Exception as exc:  # offline: the message below says what to do
            cached.unlink(missing_ok=True)
            reason = f" (download failed: {type(exc).__name__})"
    else:
        reason = ""
    raise SatganError(
        f"the VGG loss needs the ImageNet VGG19 weights {VGG19_FILE}, not found{reason}; "
        f"download {VGG19_URL} and put it in {cached.parent}/, or pass its path as vgg_weights"
    )


def load_vgg19_features(path: Path, features: nn.Module) -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors of torchvision's VGG19 weights file at ``path``, checked
    against ``features`` (names and shapes) and for NaN: anything else is one clear error."""
    expected = f"torchvision VGG19 weights ({VGG19_FILE}, loss.vgg_weights)"
    state = state_dict_of(read_torch_file(path, "weights file", expected), path, expected, VGG19_KEYS)
    mine = features.state_dict()
    theirs = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    missing = [f"features.{k}" for k in mine if k not in theirs]
    if missing:
        raise SatganError(f"{path}: not {expected}: no {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} "
                          f"(keys like {VGG19_KEYS})")
    for name, tensor in mine.items():
        if theirs[name].shape != tensor.shape:
            raise SatganError(f"{path}: not {expected}: features.{name} has shape {tuple(theirs[name].shape)} "
                              f"where VGG19 has {tuple(tensor.shape)}")
    used = {k: theirs[k] for k in mine}
    check_finite(used, path, "tensor", f"the file is damaged; download {VGG19_URL} again")
    return used


class VGGLoss(nn.Module):
    """Weighted L1 between VGG19 features of generated and real images.

    ``layers``: names from :data:`VGG19_LAYERS`; ``weights``: one per layer (default
    1/32 ... 1 over five layers, as pix2pixHD; equal otherwise). The network is frozen.
    """

    def __init__(self, layers=DEFAULT_VGG_LAYERS, weights=None, weights_path=None, download: bool = True):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        unknown = [name for name in layers if name not in VGG19_LAYERS]
        if unknown or not layers:
            raise SatganError(f"unknown VGG layers {unknown or layers}; choose from {', '.join(VGG19_LAYERS)}")
        if weights is None:
            weights = [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0] if len(layers) == 5 else [1.0] * len(layers)
        if len(weights) != len(layers):
            raise SatganError(f"{len(layers)} VGG layers but {len(weights)} weights")
        features = make_layers(cfgs["E"])  # VGG19's convolutional part; the classifier is not needed
        features.load_state_dict(load_vgg19_features(find_vgg19_weights(weights_path, download), features))
        order = sorted(range(len(layers)), key=lambda i: VGG19_LAYERS[layers[i]])
        self.cuts = [VGG19_LAYERS[layers[i]] for i in order]
        self.layer_weights = [float(weights[i]) for i in order]
        self.features = features[: self.cuts[-1] + 1].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> VGGLoss:
        super().train(mode)
        self.features.eval()  # always frozen
        return self

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) / 2 - self.mean) / self.std
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.cuts:
                taps.append(x)
        return taps

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            real_taps = self._taps(real)
        fake_taps = self._taps(fake)
        return sum(w * F.l1_loss(f, r) for w, f, r in zip(self.layer_weights, fake_taps, real_taps, strict=True))
