import pytest
import torch
from torch import nn

from satgan import SatganError
from satgan.config import Config, DataConfig, LossConfig, ModelConfig, apply_overrides, preset
from satgan.models.discriminators.patch import PatchDiscriminator, PatchSettings
from satgan.models.factory import build_discriminator, build_generator, build_vgg_loss
from satgan.models.layers import gaussian_blur, init_weights
from satgan.models.losses import (
    VGG19_FILE,
    VGGLoss,
    detail_loss,
    feature_matching_loss,
    gan_loss,
    local_detail,
    near_edges,
)
from satgan.models.objective import discriminator_loss, generator_loss


def params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def cfg(model: ModelConfig, crop: int = 256, data: DataConfig | None = None, loss: LossConfig | None = None):
    data = data or DataConfig()
    data.crop = crop
    return Config(data=DataConfig(**{**data.__dict__}), model=model, loss=loss or LossConfig())


def test_parameter_counts_match_the_pix2pix_reference():
    # The reference reports 54.414 M (unet_256, batch norm), 11.378 M (resnet_9blocks,
    # instance norm), 2.769 M (basic PatchGAN, batch norm, 6 input channels).
    rgb = DataConfig(mask_channels=3)
    assert round(params(build_generator(cfg(ModelConfig(norm="batch"), 256, rgb))) / 1e6, 3) == 54.414
    assert round(params(build_generator(cfg(ModelConfig(generator="resnet", norm="instance"), 256, rgb))) / 1e6,
                 3) == 11.378
    assert round(params(PatchDiscriminator(6, 64, 3, "batch")) / 1e6, 3) == 2.769


@pytest.mark.parametrize("generator,crop,extra", [
    ("unet", 256, {}), ("unet", 128, {"upsample": "resize"}), ("unet", 64, {"norm": "batch"}),
    ("resnet", 64, {"resnet_blocks": 6, "upsample": "resize", "norm": "none"}),
])
def test_generators_map_masks_to_images(generator, crop, extra):
    net = build_generator(cfg(ModelConfig(generator=generator, ngf=4, **extra), crop))
    out = net(torch.rand(2, 1, crop, crop) * 2 - 1)
    assert out.shape == (2, 3, crop, crop) and out.abs().max() <= 1
    if extra.get("upsample") == "resize":
        assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())


def test_unet_dropout_is_the_only_noise():
    assert sum(isinstance(m, nn.Dropout) for m in build_generator(cfg(ModelConfig(ngf=4), 256)).modules()) == 3
    net = build_generator(cfg(ModelConfig(ngf=4, norm="instance"), 128))
    x = torch.rand(1, 1, 128, 128)
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 2
    net.train()
    assert not torch.equal(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


def test_patchgan_sees_70x70_patches():
    disc = PatchDiscriminator(4, ndf=4, n_layers=3, norm="none")
    x = torch.zeros(1, 4, 128, 128, requires_grad=True)
    out = disc(x)[-1]
    assert out.shape[-2:] == (14, 14)
    out[0, 0, 7, 7].backward()
    cols = torch.nonzero(x.grad[0].abs().sum(dim=(0, 1)))
    assert int(cols.max() - cols.min() + 1) == 70


def test_multiscale_spectral_discriminator_and_no_discriminator():
    disc = build_discriminator(Config(data=DataConfig(crop=128), model=ModelConfig(ndf=4),
                                      discriminator=PatchSettings(scales=3, spectral_norm=True)))
    out = disc(torch.rand(2, 1, 128, 128), torch.rand(2, 3, 128, 128))
    assert [o[-1].shape[-1] for o in out] == [14, 6, 2]
    assert all(hasattr(m, "parametrizations") for m in disc.modules() if isinstance(m, nn.Conv2d))
    assert build_discriminator(cfg(ModelConfig(), loss=LossConfig(gan_weight=0))) is None


@pytest.mark.parametrize("kind", ["normal", "xavier", "kaiming", "orthogonal"])
def test_init_schemes(kind):
    net = init_weights(nn.Sequential(nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16)), kind, 0.02)
    w = net[0].weight
    assert net[0].bias.abs().max() == 0 and (net[1].weight - 1).abs().max() < 0.2
    if kind == "normal":
        assert abs(w.std().item() - 0.02) < 0.005
    if kind == "orthogonal":
        flat = w.reshape(16, -1)
        assert torch.allclose(flat @ flat.T, torch.eye(16) * 0.02**2, atol=1e-6)


def test_gan_losses_known_values():
    ones, zeros = [[torch.zeros(1, 1, 2, 2)]], [[torch.full((1, 1, 2, 2), 3.0)]]
    assert gan_loss(ones, True, "vanilla").item() == pytest.approx(0.693147, abs=1e-5)  # log 2
    assert gan_loss(zeros, True, "lsgan").item() == pytest.approx(4.0)
    assert gan_loss(zeros, False, "lsgan").item() == pytest.approx(9.0)
    assert gan_loss(zeros, True, "hinge").item() == 0.0
    assert gan_loss(zeros, False, "hinge").item() == pytest.approx(4.0)
    assert gan_loss(zeros, True, "hinge", for_discriminator=False).item() == pytest.approx(-3.0)
    with pytest.raises(SatganError, match="unknown gan_mode"):
        gan_loss(ones, True, "wgan")


def test_feature_matching():
    a = [[torch.ones(1, 2, 4, 4), torch.zeros(1, 1, 2, 2)]]
    b = [[torch.zeros(1, 2, 4, 4), torch.ones(1, 1, 2, 2)]]
    assert feature_matching_loss(a, b).item() == 1.0  # the logits (last) are not matched
    assert feature_matching_loss(a, a).item() == 0.0


def test_detail_loss_asks_for_detail_not_for_its_exact_place():
    gen = torch.Generator().manual_seed(0)
    real = gaussian_blur(torch.rand(2, 3, 64, 64, generator=gen), 0.7) * 2 - 1  # texture a few pixels across
    squares = (torch.arange(64) // 4) % 2
    mask = ((squares[:, None] ^ squares[None, :]).float() * 2 - 1).expand(2, 1, 64, 64)  # 4 px checkerboard
    assert bool(near_edges(mask).all())  # every pixel within 4 px of an edge
    assert torch.allclose(gaussian_blur(torch.full((1, 3, 16, 16), 0.3), 2.0), torch.tensor(0.3))
    assert detail_loss(real, real, mask).item() == 0.0
    smooth, moved = gaussian_blur(real, 3.0), torch.roll(real, shifts=(2, 2), dims=(2, 3))
    # L1 finds the smooth image closer than the same texture moved by two pixels ...
    assert (smooth - real).abs().mean() < (moved - real).abs().mean()
    # ... the detail loss the other way round: the smooth one has lost its detail
    assert detail_loss(moved, real, mask) < 0.25 * detail_loss(smooth, real, mask)
    assert local_detail(smooth).mean() < 0.5 * local_detail(real).mean()
    smooth.requires_grad_(True)
    detail_loss(smooth, real, mask).backward()
    step = smooth - 0.5 * smooth.grad / smooth.grad.abs().max()  # a step down the gradient adds detail
    assert local_detail(step.detach()).mean() > local_detail(smooth.detach()).mean()
    # with a share, only a shortfall costs: more detail than asked for is free
    assert detail_loss(real * 1.5, real, share=0.5).item() == 0.0 < detail_loss(real * 1.5, real).item()
    assert detail_loss(smooth.detach(), real, share=0.5) > 0
    # far from any building edge nothing is asked: the mask does not say what is there
    empty = torch.full_like(mask, -1.0)
    assert detail_loss(smooth, real, empty).item() == 0.0 < detail_loss(smooth, real).item()  # without: everywhere
    one = empty.clone()
    one[..., 20:40, 20:40] = 1
    near = near_edges(one)
    assert near[0, 0, 30, 30] == False and near[0, 0, 20, 30] and near[0, 0, 16, 30] and near[0, 0, 15, 30] == False  # noqa: E712


def test_vgg_loss_with_a_weights_file(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    # torchvision's file layout (features.<i>.weight ...), random values: the loss's mechanics
    state = {f"features.{k}": v for k, v in make_layers(cfgs["E"]).state_dict().items()}
    torch.save(state, tmp_path / VGG19_FILE)
    loss = VGGLoss(["relu1_1", "relu2_1"], weights_path=tmp_path / VGG19_FILE)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert loss(x, x).item() == 0.0
    fake = x.clone().requires_grad_(True)
    value = loss(fake, torch.rand(1, 3, 32, 32))
    value.backward()
    assert value.item() > 0 and fake.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())


def test_vgg_weights_missing_offline_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(SatganError, match=rf"{VGG19_FILE}.*put it in {tmp_path}/hub/checkpoints/"):
        build_vgg_loss(LossConfig(vgg_weight=1.0), download=False)
    with pytest.raises(SatganError, match="VGG19 weights not found at /nowhere/vgg.pth"):
        build_vgg_loss(LossConfig(vgg_weight=1.0, vgg_weights="/nowhere/vgg.pth"))
    assert build_vgg_loss(LossConfig()) is None
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(SatganError, match="not torchvision VGG19 weights"):
        VGGLoss(weights_path=tmp_path / "other.pth")


def test_bad_model_settings():
    with pytest.raises(SatganError, match="model.generator='gan': choose from unet, resnet"):
        ModelConfig(generator="gan")
    with pytest.raises(SatganError, match="model.norm='group': choose from batch, instance, none"):
        ModelConfig(norm="group")
    with pytest.raises(SatganError, match="power-of-two crop"):
        cfg(ModelConfig(), 200)
    with pytest.raises(SatganError, match="model.ngf=0: must be at least 1"):
        ModelConfig(ngf=0)
    with pytest.raises(SatganError, match=r"model.init_gain=nan: expected a number"):
        ModelConfig(init_gain=float("nan"))


def _shift_error(antialias: int) -> float:
    """How much an untrained U-Net's output changes beyond a shift when its input shifts
    by a few pixels (mean absolute difference on the common interior)."""
    torch.manual_seed(0)  # the blur has no weights: every variant gets the same convolutions
    net = build_generator(cfg(ModelConfig(ngf=8, norm="instance", upsample="resize", padding="reflect",
                                          antialias=antialias), 64)).eval()
    x = (torch.rand(1, 1, 264, 264, generator=torch.Generator().manual_seed(1)) > 0.7).float() * 2 - 1
    errors = []
    with torch.no_grad():
        first = net(x[..., :256, :256])
        for s in (1, 2, 3, 5):
            second = net(x[..., s:256 + s, s:256 + s])
            errors.append((first[..., 64 + s:192, 64 + s:192] - second[..., 64:192 - s, 64:192 - s]).abs().mean())
    return float(torch.stack(errors).mean())


def test_antialiased_unet_follows_a_shifted_input():
    plain, blurred = _shift_error(0), _shift_error(3)
    assert blurred < 0.75 * plain  # about half at init, for any seed tried
    net = build_generator(cfg(ModelConfig(ngf=4, antialias=5, padding="reflect"), 64))
    assert net(torch.zeros(1, 1, 64, 64)).shape == (1, 3, 64, 64)  # a 5-tap blur on the 2x2 innermost stage
    assert params(net) == params(build_generator(cfg(ModelConfig(ngf=4), 64)))  # a fixed filter: no weights
    assert not any("kernel" in k for k in net.state_dict())  # old checkpoints load; the filter is rebuilt
    blur = next(m for m in net.modules() if type(m).__name__ == "Blur")
    assert torch.allclose(blur(torch.full((1, blur.channels, 9, 9), 0.3)), torch.tensor(0.3))  # keeps a constant


def _edge_error(input_skip: bool) -> float:
    """Mean error within a pixel of a building's edge after a U-Net learns to paint one
    mask as two flat colours (the flat fill: sharp edges are all there is to learn)."""
    torch.manual_seed(0)
    net = build_generator(cfg(ModelConfig(ngf=8, upsample="resize", padding="reflect", antialias=3,
                                          input_skip=input_skip), 32))
    mask = torch.full((1, 1, 32, 32), -1.0)
    mask[..., 9:24, 7:20] = 1  # edges at odd and even positions
    target = (mask * 0.6).expand(1, 3, 32, 32)
    optimizer = torch.optim.Adam(net.parameters(), 5e-3)
    for _ in range(300):
        loss = (net(mask) - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    edge = near_edges(mask, reach=1).expand_as(target)
    with torch.no_grad():
        return float((net(mask) - target).abs()[edge].mean())


def test_input_skip_draws_sharp_edges():
    # Without the skip every path from the mask to the output crosses a stride-2
    # convolution: the edge stays a few pixels soft (0.25 here), with it 0.04.
    assert _edge_error(True) < 0.4 * _edge_error(False)
    plain = build_generator(cfg(ModelConfig(ngf=4), 64)).state_dict()
    skipped = build_generator(cfg(ModelConfig(ngf=4, input_skip=True), 64)).state_dict()
    assert not any(k.startswith("head") for k in plain)  # old checkpoints keep their keys
    assert skipped["head.weight"].shape == (3, 4 + 1, 1, 1)  # per pixel: features beside the mask


def test_antialias_accepts_only_known_filter_sizes():
    with pytest.raises((SatganError, ValueError)):
        Config(model=ModelConfig(antialias=4))


# -- settings the config accepts are settings the networks take -----------------------------------
SWEEP = [(gen, kind, crop, downs, extra)
         for gen in ("unet", "resnet") for kind in ("patch", "projected", "oasis", "projected_seg")
         for crop in (8, 16, 24, 32, 40, 48, 64, 96, 100) for downs in ((0, 5, 6, 9) if gen == "unet" else (0,))
         for extra in {"patch": ([], ["discriminator.scales=2"], ["discriminator.layers=1"]), "projected": ([],),
                       "projected_seg": (["discriminator.labelmix_weight=1"],),
                       "oasis": ([], ["discriminator.levels=1"], ["discriminator.levels=5"])}[kind]]


def test_every_setting_the_config_accepts_builds_and_trains_a_step():
    """The check and the networks agree: what passes builds, and D's and G's losses run at the
    crop (the class of "a U-Net ValueError after the check passed")."""
    accepted = 0
    for gen, kind, crop, downs, extra in SWEEP:
        sets = [f"model.generator={gen}", f"model.discriminator={kind}", f"data.crop={crop}",
                f"model.unet_downs={downs}", "model.ngf=2", "model.ndf=2", "model.resnet_blocks=1", *extra]
        try:
            config = apply_overrides(preset("quick"), sets)
        except SatganError as exc:
            assert str(exc).count("\n") == 0
            continue
        accepted += 1
        G, D = build_generator(config), build_discriminator(config)
        mask, real = torch.ones(2, 1, crop, crop), torch.zeros(2, 3, crop, crop)
        fake = G(mask, None, None, torch.randn(2, config.model.noise, crop, crop))
        assert fake.shape == real.shape, sets
        discriminator_loss(D, mask, fake, real, config)
        generator_loss(D, None, mask, fake, real, config)
    assert 40 < accepted < len(SWEEP)  # both sides of the line are exercised


@pytest.mark.parametrize("sets, message", [
    (["model.discriminator=oasis", "data.crop=16"], r"a U-Net needs crops of at least 32 pixels \(got data.crop=16\)"),
    (["model.unet_downs=3"], r"model.unet_downs=3: a U-Net needs at least 5 halvings"),
    (["data.crop=100", "model.unet_downs=5"], r"model.unet_downs=5 needs a crop that is a multiple of 32"),
    (["data.crop=64", "model.unet_downs=9"], r"multiple of 512 \(got data.crop=64\)"),
    (["model.generator=resnet", "data.crop=66"], r"data.crop must be a multiple of 4 \(got 66\)"),
    (["data.crop=32"], r"a projected_seg discriminator needs crops of at least 64 pixels \(got data.crop=32\); raise"),
])
def test_settings_the_networks_refuse_fail_at_the_check(sets, message):
    with pytest.raises(SatganError, match=message):
        apply_overrides(preset("quick"), sets)
