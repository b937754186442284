"""Every setting of satgan, as dataclasses: the one path from a notebook's parameters
cell or the command line into the library.

Each field is declared once, with :func:`~satgan.settings.setting`: its type (choices as
``Literal``), its help text and its range. Objects check themselves when made, the
command line's options are generated from these fields, and notebooks pass their
parameters straight in, so defaults, help and checks live here and nowhere else.

Import from here; each class is declared in one submodule: the training run's
:class:`Config` and its sections in :mod:`~satgan.config.training` (read from dicts and
``--set`` in :mod:`~satgan.config.reading`), the commands' settings in
:mod:`~satgan.config.data_jobs`, :mod:`~satgan.config.generation_jobs` and
:mod:`~satgan.config.synthetic_jobs`.
"""

from satgan.config.data_jobs import INRIA_CITIES, ForgeConfig, PretransformConfig, SubsetConfig, SynthConfig
from satgan.config.generation_jobs import EvaluateConfig, GalleryConfig, GenerateConfig, model_spec
from satgan.config.reading import (
    MOVED,
    PRESETS,
    RETIRED,
    SECTIONS,
    TrainJobConfig,
    apply_overrides,
    config_from_dict,
    make_config,
    preset,
)
from satgan.config.synthetic_jobs import SegbenchConfig, SegmenterConfig, SynthesizeConfig
from satgan.config.training import (
    Config,
    DataConfig,
    LossConfig,
    ModelConfig,
    TrainConfig,
    discriminator_kind,
    register_discriminator,
    unet_depth,
)
from satgan.settings import DEVICES, Device, to_dict

__all__ = [
    "DEVICES", "INRIA_CITIES", "MOVED", "PRESETS", "RETIRED", "SECTIONS", "Config", "DataConfig", "Device",
    "EvaluateConfig", "ForgeConfig", "GalleryConfig", "GenerateConfig", "LossConfig", "ModelConfig",
    "PretransformConfig", "SegbenchConfig", "SegmenterConfig", "SubsetConfig", "SynthConfig", "SynthesizeConfig",
    "TrainConfig", "TrainJobConfig", "apply_overrides", "config_from_dict", "discriminator_kind", "make_config",
    "model_spec", "preset", "register_discriminator", "to_dict", "unet_depth",
]
