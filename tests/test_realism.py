"""The small-data GAN mechanisms: EMA generator, DiffAugment, R1, two learning rates."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from PIL import Image
from torch import nn

from satgan.checkpoint import load_checkpoint
from satgan.config import Config, EvaluateConfig, GenerateConfig, LossConfig, ModelConfig
from satgan.data.dataset import PairDataset
from satgan.evaluation.report import evaluate
from satgan.generation.generate import generate
from satgan.generation.loading import load_generator
from satgan.models.augment import augment_pairs
from satgan.models.discriminators.patch import MultiscaleDiscriminator
from satgan.models.layers import unsharp_mask
from satgan.models.objective import discriminator_loss
from satgan.training.optim import EMA
from satgan.training.trainer import Trainer, train
from satgan.training.validation import generate_samples
from tests.test_train import tiny, tiny_data  # noqa: F401  (fixture)


def test_ema_follows_with_warmup_and_restores():
    net = nn.Linear(2, 2)
    ema = EMA(net, decay=0.99)
    start = ema.net.weight.clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)  # decay warms up: min(0.99, 2 / 11)
    d = 2 / 11
    assert torch.allclose(ema.net.weight, d * start + (1 - d) * net.weight)
    assert not ema.net.weight.requires_grad
    other = EMA(nn.Linear(2, 2), decay=0.99)
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.net.weight, ema.net.weight) and other.updates == 1


def test_augmentation_is_shared_by_the_pair_and_the_mask():
    torch.manual_seed(0)
    mask = (torch.rand(4, 1, 32, 32) > 0.5).float() * 2 - 1
    image = mask.expand(-1, 3, -1, -1).clone()
    out_mask, (a, b) = augment_pairs(mask, [image, image.clone()], ["translation", "cutout"])
    assert torch.equal(a, b), "the real and the generated pair of a sample must see the same transform"
    assert torch.equal(out_mask[:, 0], a[:, 0]), "mask and image move together"
    assert not torch.equal(out_mask, mask), "something was transformed"
    per_sample = [(out_mask[i] != mask[i]).any() for i in range(4)]
    assert all(per_sample)
    _, (c, d) = augment_pairs(mask, [image, image.clone()], ["color"])
    assert torch.equal(c, d) and not torch.equal(c, image)
    x = torch.zeros(2, 3, 8, 8, requires_grad=True)
    _, (y,) = augment_pairs(torch.zeros(2, 1, 8, 8), [x], ["translation", "cutout", "color"])
    y.sum().backward()
    assert x.grad is not None, "augmentations are differentiable"
    same_mask, same = augment_pairs(mask, [image], [])
    assert same_mask is mask and same[0] is image


def test_r1_is_the_squared_gradient_on_real_pairs():
    torch.manual_seed(0)
    D = MultiscaleDiscriminator(4, 1, ndf=4, n_layers=2, norm="none")
    mask, fake, real = torch.rand(2, 1, 32, 32), torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    total, terms = discriminator_loss(D, mask, fake, real,
                                      Config(model=ModelConfig(norm="none"), loss=LossConfig(r1_weight=10.0)))
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(mask, x)[0][-1].sum(), x)
    assert torch.allclose(terms["D_R1"], grad.pow(2).flatten(1).sum(1).mean(), rtol=1e-4)
    plain = 0.5 * (terms["D_fake"] + terms["D_real"])
    assert torch.allclose(total, plain + 5.0 * terms["D_R1"])
    total.backward()  # the penalty's own gradient reaches D's weights
    assert all(p.grad is not None for p in D.parameters())


def test_ema_generator_is_what_checkpoints_generate_with(tiny_data, tmp_path):  # noqa: F811
    cfg = tiny("train.epochs=1", "train.ema=0.9", "train.lr_d=1e-3", "loss.d_augment=translation,color",
               "loss.r1_weight=1")
    trainer = Trainer(tiny_data, tmp_path / "x", cfg)
    opt_D, opt_G = trainer.nets["discriminator"].opt, trainer.nets["generator"].opt
    assert opt_D.param_groups[0]["lr"] == 1e-3 and opt_G.param_groups[0]["lr"] == cfg.train.lr
    metrics = train(tiny_data, tmp_path / "run", cfg)
    assert "D_R1" in metrics
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    ema, raw = ckpt.training["generator_ema"]["weights"], ckpt.training["generator"]
    assert all(torch.equal(ckpt.generator[k], ema[k]) for k in ema)
    assert any(not torch.equal(raw[k], ema[k]) for k in raw if raw[k].is_floating_point())


def test_unsharp_mask_steepens_edges_and_leaves_flat_ground():
    x = torch.full((1, 3, 32, 32), -0.2)
    x[..., 16:] = 0.4  # one vertical edge
    assert unsharp_mask(x, 0.0) is x
    once, twice = unsharp_mask(x, 1.0), unsharp_mask(x, 2.0)
    assert torch.allclose(once[..., :4], x[..., :4], atol=1e-6), "ground far from the edge is untouched"
    assert bool((once[..., 15] < x[..., 15]).all() and (once[..., 16] > x[..., 16]).all()), "both sides overshoot"
    assert torch.allclose(twice - x, 2 * (once - x), atol=1e-6), "the change is proportional to the amount"
    assert abs(float(once.mean() - x.mean())) < 1e-3, "the mean colour stays"


def test_sharpen_is_what_generation_and_validation_draw(tiny_data, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    train(tiny_data, run, tiny("train.epochs=1", "model.sharpen=1.5", "train.val_kid=false"))
    gen = load_generator(run / "checkpoints" / "last.pt", "cpu")
    assert gen.sharpen == 1.5
    masks = np.zeros((2, 32, 32), np.uint8)
    masks[:, 8:20, 10:24] = 255
    with torch.no_grad():
        raw_net = gen.net(torch.from_numpy(masks).float()[:, None] / 127.5 - 1)
    expected = ((unsharp_mask(raw_net, 1.5).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    sharp, plain = gen(masks), replace(gen, sharpen=0.0)(masks)
    assert np.array_equal(sharp, expected.permute(0, 2, 3, 1).numpy())
    assert not np.array_equal(sharp, plain)
    # generate --sharpen overrides the checkpoint's amount (0: the network's own output)
    written = generate(GenerateConfig(checkpoint=str(run / "checkpoints" / "last.pt"), input=str(tiny_data),
                                      out=str(tmp_path / "raw"), mode="resize", sharpen=0.0, limit=2))["written"]
    first = np.asarray(Image.open(written[0]).convert("RGB"))
    val = PairDataset(tiny_data, "val", gen.config.data, augment=False)
    item = val[0]
    assert np.array_equal(first, replace(gen, sharpen=0.0)(item["mask"][None, 0].add(1).mul(127.5).round()
                                                           .to(torch.uint8).numpy())[0])
    # evaluate --sharpen overrides every generator's amount, the untrained baseline's too
    ckpt = f"m={run / 'checkpoints' / 'last.pt'}"
    reports = [evaluate(EvaluateConfig(out=str(tmp_path / f"r{a}.json"), data=str(tiny_data), checkpoints=[ckpt],
                                       baselines=["untrained"], sharpen=a, mask_iou=False))["models"]
               for a in (0.0, 3.0)]
    for name in ("m", "untrained"):
        assert reports[0][name]["overall"]["psnr"] != reports[1][name]["overall"]["psnr"], name
    # validation scores what generation draws: the same net, with and without the unsharp mask
    _, fake_sharp, _ = generate_samples(gen.net, val, 1, torch.device("cpu"), None, sharpen=1.5)
    _, fake_plain, _ = generate_samples(gen.net, val, 1, torch.device("cpu"), None)
    assert torch.allclose(fake_sharp, unsharp_mask(fake_plain, 1.5).clamp(-1, 1), atol=1e-6)
