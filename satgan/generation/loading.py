"""A checkpoint's generator, rebuilt and ready to turn masks into images.

:class:`Generator` wraps the network with what drawing needs (its input sizes, city,
style code, noise); :func:`in_batches` and :func:`run_model` run it, or a baseline, over
masks (``bool``, or uint8 coverage 0-255) into ``uint8`` RGB images.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from satgan import SatganError
from satgan.checkpoint import load_checkpoint
from satgan.config import Config, model_spec
from satgan.data.dataset import label_indices
from satgan.data.sources import inria_city
from satgan.models.conditioning import StyledGenerator, noise_fields, random_codes
from satgan.models.factory import build_generator, input_multiple
from satgan.models.layers import unsharp_mask
from satgan.runtime import resolve_device

Model = Callable[[np.ndarray], np.ndarray]  # (N, H, W) uint8 masks -> (N, H, W, 3) uint8 images


@dataclass
class Generator:
    """A generator rebuilt from a checkpoint, ready to turn masks into images."""

    net: nn.Module
    config: Config
    device: torch.device
    window: int  # the training crop: the input side generation uses by default
    multiple: int  # input sides must be multiples of this (2^depth for a U-Net)
    pixel_scale: float | None  # source pixels per training pixel, when the checkpoint knows
    labels: tuple[str, ...] = ()  # the cities a conditioned generator draws (empty: not conditioned)
    latent: int = 0  # length of its style code (0: none)
    city: str | None = None  # the city every image is drawn as, unless a call gives one per image
    code: torch.Tensor | None = None  # the style code of every image (None: zeros, the average style)
    noise_seed: int = 0  # a generator fed noise: where its noise comes from (the same seed, the same images)
    sharpen: float = 0.0  # unsharp-mask amount of every output (model.sharpen; 0: the network's own)
    # the style code scaled by this (StyleGAN's truncation): 1 its full variety, 0 the average style; the
    # noise stays at the strength training saw (scaled noise is an input the generator never met)
    truncation: float = 1.0
    trained_with: dict = field(default_factory=dict)  # networks that took part in its training (never its judges)

    def styled(self, city: str | None = None, seed: int | None = None) -> Generator:
        """This generator drawing every image as ``city``, with the style code and the noise
        drawn from ``seed`` (the same seed, the same images; ``None``: the average code and
        noise seed 0). One style for every image and window: a seamless scene stays one city."""
        if city is not None:
            if not self.labels:
                raise SatganError(f"this model is not conditioned on a city (asked for {city!r}); "
                                  "train with model.condition=city")
            label_indices([city], self.labels, "city: ")
        if seed is not None and not (self.latent or self.noise):
            raise SatganError("this model has no style code or noise to draw (train with model.latent or model.noise)")
        code = random_codes(1, self.latent, seed)[0] if seed is not None and self.latent else None
        return replace(self, city=city, code=code, noise_seed=seed or 0)

    @property
    def noise(self) -> int:
        """Channels of per-pixel noise the generator takes beside the mask (0: none)."""
        return getattr(self.net, "noise", 0)

    def noise_field(self, height: int, width: int) -> torch.Tensor | None:
        """The noise of a whole ``height`` x ``width`` scene ``(channels, H, W)``, from
        :attr:`noise_seed`; windows cut theirs from it, so overlapping windows see the same
        noise where they overlap. ``None`` for a generator without noise."""
        return noise_fields(1, self.noise, height, width, self.noise_seed)[0] if self.noise else None

    @torch.inference_mode()
    def __call__(self, masks: np.ndarray, cities: list[str] | None = None,
                 noise: torch.Tensor | None = None) -> np.ndarray:
        """``(N, H, W)`` masks (bool, or uint8 coverage 0-255) to ``(N, H, W, 3) uint8`` images;
        a conditioned generator draws each as its city in ``cities`` (default: :attr:`city`);
        a generator fed noise takes ``noise`` ``(N, channels, H, W)`` (default: each image's
        drawn from :attr:`noise_seed` and its mask's bytes, so it does not depend on the
        batch)."""
        if masks.dtype == bool:
            masks = masks.view(np.uint8) * np.uint8(255)
        x = torch.from_numpy(np.require(masks, requirements=['C', 'W'])).to(self.device, torch.float32)[:, None]
        x = x / 127.5 - 1
        if self.config.data.mask_channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if isinstance(self.net, StyledGenerator):
            if self.noise and noise is None:  # each image's own, from its mask: batching changes nothing
                noise = torch.cat([noise_fields(1, self.noise, *m.shape, self.noise_seed * 1_000_003 + zlib.crc32(m))
                                   for m in np.ascontiguousarray(masks)])
            y = self.net(x, self._labels(len(x), cities), self._codes(len(x)), noise)
        else:
            y = self.net(x)
        y = unsharp_mask(y.float(), self.sharpen).clamp(-1, 1)
        return ((y + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    def _labels(self, n: int, cities: list[str] | None) -> torch.Tensor | None:
        if not self.labels:
            return None
        if cities is None:
            if self.city is None:
                raise SatganError(f"this model draws a chosen city: give one of {', '.join(self.labels)} "
                                  "(--city NAME, or --city all)")
            cities = [self.city] * n
        return torch.tensor(label_indices(cities, self.labels, "city: "), device=self.device)

    def _codes(self, n: int) -> torch.Tensor | None:
        if not self.latent or self.code is None:
            return None
        return (self.code * self.truncation).to(self.device).expand(n, self.latent)


def as_city(model, city: str):
    """``model`` drawing ``city`` where it is a conditioned generator that was given none
    (an unknown city is an error naming the known ones); any other model as it is."""
    if not getattr(model, "labels", ()) or model.city is not None:
        return model
    label_indices([city], model.labels, "city: ")
    return replace(model, city=city)


def run_model(model, masks: np.ndarray, cities: list[str] | None = None,
              noise: torch.Tensor | None = None) -> np.ndarray:
    """``model`` over ``masks``; a conditioned generator draws each mask as its city in
    ``cities``, unless it was given one city for all (:meth:`Generator.styled`); a
    generator fed noise takes ``noise``; baselines ignore both."""
    if noise is not None:
        return model(masks, cities if getattr(model, "city", None) is None else None, noise)
    if getattr(model, "labels", ()) and getattr(model, "city", None) is None:
        return model(masks, cities)
    return model(masks)


def generator_from_config(config: Config, device: str = "auto", seed: int = 0) -> Generator:
    """An untrained generator of ``config``'s architecture (initialized from ``seed``):
    the baseline a trained one must beat."""
    torch.manual_seed(seed)
    return _ready(build_generator(config), config, device, None, False)


def load_generator(path: str | os.PathLike, device: str = "auto", dropout: bool = False) -> Generator:
    """The generator of checkpoint ``path``, in eval mode (deterministic). ``dropout``
    keeps pix2pix's dropout active as a noise source (normalization stays in eval mode)."""
    ckpt = load_checkpoint(path)
    net = build_generator(ckpt.config)
    try:
        net.load_state_dict(ckpt.generator)
    except (RuntimeError, TypeError, AttributeError) as exc:
        weights = ckpt.generator if isinstance(ckpt.generator, dict) else {}
        missing = [k for k in net.state_dict() if k not in weights]
        detail = f"missing {', '.join(missing[:5])}" if missing else str(exc).splitlines()[0]
        raise SatganError(f"{ckpt.path}: the generator weights do not fit the checkpoint's own config "
                          f"({detail})") from None
    return replace(_ready(net, config=ckpt.config, device=device, pixel_scale=ckpt.pixel_scale, dropout=dropout),
                   trained_with=ckpt.trained_with)


def _ready(net: nn.Module, config: Config, device: str, pixel_scale: float | None, dropout: bool) -> Generator:
    dev = resolve_device(device)
    net = net.to(dev).eval()
    if dropout:
        for m in net.modules():
            if isinstance(m, nn.Dropout):
                m.train()
    m = config.model
    labels = tuple(m.labels) if m.condition == "city" else ()
    return Generator(net, config, dev, config.data.crop, input_multiple(config), pixel_scale, labels, m.latent,
                     sharpen=m.sharpen)


def load_generators(specs: list[str], device: str = "auto") -> dict[str, Model]:
    """The generators of checkpoints given as ``path`` or ``name=path``, by name."""
    models: dict[str, Model] = {}
    for spec in specs:
        name, path = model_spec(spec)
        if name in models:
            raise SatganError(f"two models named {name!r}; name them with NAME=PATH")
        models[name] = load_generator(path, device)
    return models


def in_batches(model, masks: list[np.ndarray] | np.ndarray, batch_size: int,
               cities: list[str] | None = None, noise: list[torch.Tensor] | None = None) -> np.ndarray:
    """``model`` (masks to images, a :class:`Generator` or a baseline) over ``masks`` in
    batches (each drawn as its city in ``cities``, for a conditioned generator, and with
    its ``noise``, for a generator fed noise)."""
    return np.concatenate([run_model(model, np.stack(masks[i : i + batch_size]),
                                     cities[i : i + batch_size] if cities is not None else None,
                                     torch.stack(noise[i : i + batch_size]) if noise is not None else None)
                           for i in range(0, len(masks), batch_size)])


def named_city(gen: Generator, path: Path) -> str | None:
    """The city an Inria-style mask name says (``austin12``), if this generator knows it."""
    city = inria_city(path.stem)
    return city if city in gen.labels else None


def file_style(gen: Generator, path: str | os.PathLike) -> Generator:
    """``gen`` drawing the mask file ``path`` as the city its Inria-style name says
    (``austin12``), where it is conditioned and was given no city."""
    path = Path(path)
    if not gen.labels or gen.city is not None:
        return gen
    city = named_city(gen, path)
    if city is None:
        raise SatganError(f"{path}: which city to draw? The name says none this model knows; "
                          f"give --city one of {', '.join(gen.labels)}, or --city all")
    return as_city(gen, city)
