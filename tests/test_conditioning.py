"""City conditioning and style codes: labels from the manifest to the dataset, the
networks, the checkpoint and generation; unknown labels; fixed-seed determinism."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from satgan import SatganError, metrics
from satgan.checkpoint import load_checkpoint
from satgan.config import EvaluateConfig, GalleryConfig, GenerateConfig, PretransformConfig, apply_overrides, preset
from satgan.data.arrays import split_samples
from satgan.data.dataset import PairDataset
from satgan.data.pretransform import pretransform
from satgan.data.sources import open_source
from satgan.evaluation.baselines import DropoutNoise
from satgan.evaluation.report import evaluate
from satgan.evaluation.scoring import diversity
from satgan.gallery.files import gallery
from satgan.generation.generate import generate
from satgan.generation.loading import load_generator
from satgan.generation.modes import generate_seamless
from satgan.metrics import to_unit_range
from satgan.models.conditioning import StyledGenerator, noise_fields, smooth_noise
from satgan.models.encoder import kl_to_standard_normal, sample_codes
from satgan.models.factory import build_discriminator, build_encoder, build_generator
from satgan.models.objective import SecondDraw, feature_distance, generator_loss, mode_seeking_loss
from satgan.training.trainer import train
from tests.conftest import write_pair_folder

CITIES = ["austin", "chicago", "kitsap", "tyrol-w", "vienna"]
# the PatchGAN and no noise: these tests are about labels, codes and noise as each asks for them
SMALL = ["data.crop=64", "model.ngf=8", "model.ndf=4", "train.batch_size=4", "train.val_samples=2",
         "train.workers=0", "train.val_kid=false", "model.discriminator=patch", "model.noise=0", "loss.seg_weight=0"]


def with_loss(cfg, **changes):
    return replace(cfg, loss=replace(cfg.loss, **changes))


def small(*extra: str):
    return apply_overrides(preset("quick"), SMALL + list(extra))


@pytest.fixture(scope="module")
def styled_run(styled_checkpoint) -> Path:
    return styled_checkpoint


def test_dataset_gives_each_sample_its_city_label(inria_arrays):
    data = PairDataset(inria_arrays, "train", small().data)
    assert "label" not in data[0]
    data.set_labels(CITIES)
    for i in (0, len(data) // 2, len(data) - 1):
        assert CITIES[data[i]["label"]] == data.sample_info(i)["city"]
    with pytest.raises(SatganError, match="unknown labels 'kitsap', 'tyrol-w', 'vienna'; this model knows: austin"):
        data.set_labels(["austin", "chicago"])


def test_styled_networks_follow_the_label_and_the_code():
    cfg = small("model.condition=city", "model.labels=a,b,c", "model.latent=3")
    G, D = build_generator(cfg).eval(), build_discriminator(cfg)  # eval: no dropout noise
    assert isinstance(G, StyledGenerator)
    mask = torch.rand(2, 1, 64, 64) * 2 - 1
    same = torch.tensor([1, 1])
    out = G(mask, same)
    assert torch.equal(out, G(mask, same)) and torch.equal(out, G(mask, same, torch.zeros(2, 3)))
    assert (out - G(mask, torch.tensor([0, 2]))).abs().mean() > 1e-4  # another city
    assert (out - G(mask, same, torch.randn(2, 3))).abs().mean() > 1e-4  # another code
    with pytest.raises(SatganError, match="conditioned on a label"):
        G(mask)
    # the discriminator's projection starts at zero (the unconditional D), then depends on the label
    image = torch.rand(2, 3, 64, 64)
    a, b = D(mask, image, torch.tensor([0, 0]))[0][-1], D(mask, image, torch.tensor([2, 2]))[0][-1]
    assert torch.equal(a, b)
    torch.nn.init.normal_(D.scales[0].projection.embed.weight)
    a, b = D(mask, image, torch.tensor([0, 0]))[0][-1], D(mask, image, torch.tensor([2, 2]))[0][-1]
    assert a.shape == b.shape and (a - b).abs().mean() > 1e-3


def test_noise_goes_in_beside_the_mask():
    G = build_generator(small("model.noise=2")).eval()
    assert isinstance(G, StyledGenerator) and G.net.down[0][-1].in_channels == 3  # mask + 2 noise channels
    mask = torch.rand(2, 1, 64, 64) * 2 - 1
    noise = torch.randn(2, 2, 64, 64)
    assert torch.equal(G(mask, noise=noise), G(mask, noise=noise))
    assert (G(mask, noise=noise) - G(mask, noise=torch.randn(2, 2, 64, 64))).abs().mean() > 1e-4


def test_variety_l1_takes_the_closer_generation():
    cfg = small("model.latent=2", "loss.mode_seeking=1", "loss.variety_l1=true", "loss.gan_weight=0")
    real = torch.zeros(2, 3, 8, 8)
    near, far = real + 0.1, real + 0.5
    codes = (torch.ones(2, 2), torch.zeros(2, 2))
    _, terms = generator_loss(None, None, real[:, :1], far, real, cfg, second=SecondDraw(near, *codes))
    assert float(terms["G_L1"]) == pytest.approx(0.1)  # not the mean of 0.1 and 0.5, nor 0.5
    _, plain = generator_loss(None, None, real[:, :1], far, real, with_loss(cfg, variety_l1=False),
                              second=SecondDraw(near, *codes))
    assert float(plain["G_L1"]) == pytest.approx(0.5)
    with pytest.raises(SatganError, match="variety_l1 compares the two generations"):
        small("loss.variety_l1=true")


def test_mode_seeking_in_the_discriminators_features():
    cfg = small("model.latent=2", "loss.mode_seeking=1", "loss.variety_l1=true",
                "loss.mode_seeking_space=discriminator")
    D = build_discriminator(cfg)
    D.requires_grad_(False)
    mask = torch.rand(2, 1, 64, 64) * 2 - 1
    real, fake = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    other = fake.clone()
    codes = (torch.ones(2, 2), torch.zeros(2, 2))  # the second draw's code, the first's
    # the same image twice: D sees no difference, the term is at its bound
    _, same = generator_loss(D, None, mask, fake, real, with_loss(cfg, d_augment=[]), second=SecondDraw(other, *codes))
    assert float(same["G_MS"]) > 1e4
    far = fake + 0.5 * torch.randn_like(fake)
    total, terms = generator_loss(D, None, mask, fake, real, with_loss(cfg, d_augment=[]),
                                  second=SecondDraw(far, *codes))
    gap = feature_distance(D(mask, fake), D(mask, far))
    assert float(terms["G_MS"]) == pytest.approx(float(mode_seeking_loss(gap, *reversed(codes))), rel=1e-5)
    # it is D's features, not the pixels, that set the term
    _, pixel = generator_loss(D, None, mask, fake, real, with_loss(cfg, d_augment=[], mode_seeking_space="image"),
                              second=SecondDraw(far, *codes))
    assert float(pixel["G_MS"]) == pytest.approx(float(mode_seeking_loss((fake - far).abs().mean(), *reversed(codes))))
    assert float(pixel["G_MS"]) != pytest.approx(float(terms["G_MS"]), rel=1e-2)
    # the gradient reaches the second generation through D (augmented alike, so still finite)
    far.requires_grad_(True)
    total, _ = generator_loss(D, None, mask, fake, real, cfg, second=SecondDraw(far, *codes))
    total.backward()
    assert far.grad is not None and far.grad.abs().sum() > 0
    with pytest.raises(SatganError, match="measures in D's features"):
        small("model.latent=2", "loss.mode_seeking=1", "loss.mode_seeking_space=discriminator", "loss.gan_weight=0")


def test_mode_seeking_rewards_different_images_for_different_codes():
    z1, z2 = torch.zeros(2, 4), torch.ones(2, 4)
    assert mode_seeking_loss(torch.tensor(0.5), z1, z2) < mode_seeking_loss(torch.tensor(0.1), z1, z2)
    assert mode_seeking_loss(torch.tensor(0.0), z1, z2) > 1e4  # a generator ignoring its code pays without bound
    with pytest.raises(SatganError, match="needs a style code"):
        small("loss.mode_seeking=1")
    with pytest.raises(SatganError, match="model.labels are the cities of model.condition=city"):
        small("model.labels=a,b")


def test_labels_reach_the_checkpoint_and_generation(styled_run, tmp_path):
    ckpt = load_checkpoint(styled_run)
    assert ckpt.config.model.labels == CITIES and ckpt.config.model.latent == 4
    assert json.loads((styled_run.parents[1] / "config.json").read_text())["model"]["labels"] == CITIES
    gen = load_generator(styled_run, "cpu")
    assert gen.labels == tuple(CITIES) and gen.latent == 4
    mask = np.zeros((64, 64), np.uint8)
    mask[10:40, 20:50] = 255
    with pytest.raises(SatganError, match="give one of austin, chicago"):
        gen(mask[None])
    with pytest.raises(SatganError, match="unknown label 'paris'; this model knows: austin, chicago, kitsap"):
        gen.styled("paris")
    vienna, austin = gen.styled("vienna")(mask[None]), gen.styled("austin")(mask[None])
    assert np.abs(vienna.astype(int) - austin).mean() > 0.5
    # a fixed style seed gives the same image; another seed another one
    a1, a2, b = (gen.styled("vienna", s)(mask[None]) for s in (3, 3, 4))
    assert np.array_equal(a1, a2) and not np.array_equal(a1, b)
    # per-image cities in one batch: each as its own (the second image's noise is the batch's second field;
    # a batch of two may round differently from a batch of one by a grey level)
    both = gen(np.stack([mask, mask]), ["vienna", "austin"])
    assert np.abs(both[0].astype(int) - vienna[0]).max() <= 1
    assert np.array_equal(both[1], gen(np.stack([mask, mask]), ["austin", "austin"])[1])


def test_truncation_scales_the_style_code_and_leaves_the_noise(styled_run, tiny_checkpoint, inria_root, tmp_path):
    gen = load_generator(styled_run, "cpu")
    mask = np.zeros((64, 64), np.uint8)
    mask[16:40, 20:44] = 255

    def draw(seed, truncation):
        return replace(gen.styled("vienna", seed), truncation=truncation)(mask[None])[0].astype(int)

    # at 0 a seed draws the average code with its own noise
    average_code = replace(gen.styled("vienna"), noise_seed=3)(mask[None])[0].astype(int)
    assert np.array_equal(draw(3, 0.0), average_code) and not np.array_equal(draw(3, 0.0), draw(4, 0.0))
    half, full = np.abs(draw(3, 0.5) - average_code).mean(), np.abs(draw(3, 1.0) - average_code).mean()
    assert 0 < half < full
    # a seamless scene's noise field is the seed's, whatever the truncation
    assert torch.equal(replace(gen.styled("vienna", 3), truncation=0.5).noise_field(8, 8),
                       gen.styled("vienna", 3).noise_field(8, 8))
    # through generate: --truncation reaches the generator
    mask_file = next((inria_root / "train" / "gt").glob("vienna*.tif"))
    base = dict(checkpoint=str(styled_run), input=str(mask_file), mode="seamless", scale=2.0, city="vienna",
                style_seed=1)
    for name, truncation in (("t0", 0.0), ("t1", 1.0)):
        generate(GenerateConfig(out=str(tmp_path / name), truncation=truncation, **base))
    generate(GenerateConfig(out=str(tmp_path / "given"), **base), replace(gen, truncation=0.0))
    t0, t1, given = (tifffile.imread(tmp_path / n / f"{mask_file.stem}.tif") for n in ("t0", "t1", "given"))
    assert np.array_equal(t0, given) and not np.array_equal(t0, t1)
    with pytest.raises(SatganError, match="--truncation 0.5: this model has no style code"):
        generate(GenerateConfig(checkpoint=str(tiny_checkpoint), input=str(mask_file), out=str(tmp_path / "u"),
                                truncation=0.5))
    assert not (tmp_path / "u").exists()


def test_generate_one_city_or_every_city(styled_run, inria_root, tmp_path):
    mask_file = next((inria_root / "train" / "gt").glob("vienna*.tif"))
    base = dict(checkpoint=str(styled_run), input=str(mask_file), mode="seamless", scale=2.0)
    every = generate(GenerateConfig(out=str(tmp_path / "all"), city="all", **base))
    assert every["cities"] == CITIES
    scenes = {c: tifffile.imread(tmp_path / "all" / c / f"{mask_file.stem}.tif") for c in CITIES}
    assert len({s.tobytes() for s in scenes.values()}) == 5  # five different styles
    # without --city a file named vienna<n> is drawn as vienna
    generate(GenerateConfig(out=str(tmp_path / "own"), **base))
    assert np.array_equal(tifffile.imread(tmp_path / "own" / f"{mask_file.stem}.tif"), scenes["vienna"])
    with pytest.raises(SatganError, match="unknown label 'paris'"):
        generate(GenerateConfig(out=str(tmp_path / "bad"), city="paris", **base))
    assert not (tmp_path / "bad").exists()
    # a name that says no known city needs --city
    other = tmp_path / "masks" / "scene.tif"
    other.parent.mkdir()
    other.write_bytes(mask_file.read_bytes())
    with pytest.raises(SatganError, match="which city to draw"):
        generate(GenerateConfig(checkpoint=str(styled_run), input=str(other), out=str(tmp_path / "o2"), scale=2.0))
    # a folder of such masks: one error before anything is written
    (tmp_path / "masks" / "other.tif").write_bytes(mask_file.read_bytes())
    with pytest.raises(SatganError, match="2 mask name.* say none this model knows"):
        generate(GenerateConfig(checkpoint=str(styled_run), input=str(other.parent), out=str(tmp_path / "o3")))
    assert not (tmp_path / "o3").exists()
    # style seeds: the same seed the same bytes
    for name in ("s1", "s1b"):
        generate(GenerateConfig(out=str(tmp_path / name), city="kitsap", style_seed=1, **base))
    one, again = (tifffile.imread(tmp_path / n / f"{mask_file.stem}.tif") for n in ("s1", "s1b"))
    assert np.array_equal(one, again) and not np.array_equal(one, scenes["kitsap"])


def test_a_seamless_scene_keeps_one_style(styled_run):
    """Every window of a scene is drawn with the one city and code the generator was
    given (the lattice itself is measured in benchmarks/bench_generate.py)."""
    gen = load_generator(styled_run, "cpu")
    rng = np.random.default_rng(0)
    mask = np.zeros((300, 300), np.uint8)
    for _ in range(40):
        y, x = rng.integers(0, 280, 2)
        mask[y : y + 20, x : x + 15] = 255
    chicago, austin = (generate_seamless(gen.styled(c, 2), mask, 1.0, window=128) for c in ("chicago", "austin"))
    assert chicago.shape == (300, 300, 3) and np.abs(chicago.astype(int) - austin).mean() > 0.5
    chicago2 = gen.styled("chicago", 2)
    one = generate_seamless(chicago2, mask[:128, :128], 1.0, window=128)  # a single window, the scene's noise
    direct = chicago2(mask[None, :128, :128], noise=chicago2.noise_field(128, 128)[None])[0]
    assert np.abs(one.astype(int) - direct).max() <= 1
    # outside a scene an image's noise comes from its own mask: the same whatever the batch
    alone, batched = chicago2(mask[None, :64, :64]), chicago2(np.stack([mask[64:128, :64], mask[:64, :64]]))
    assert np.abs(alone[0].astype(int) - batched[1]).max() <= 1
    # the scene's noise is one field: a window sees the noise of where it is
    field = gen.styled("chicago", 2).noise_field(300, 300)
    assert field.shape == (1, 300, 300)
    corner = generate_seamless(gen.styled("chicago"), mask[:128, 100:228], 1.0, window=128,
                               noise=field[:, :128, 100:228])
    direct = gen.styled("chicago")(mask[None, :128, 100:228], noise=field[None, :, :128, 100:228])[0]
    assert np.abs(corner.astype(int) - direct).max() <= 1
    with pytest.raises(SatganError, match="give one of austin"):
        generate_seamless(gen, mask, 1.0, window=128)


def test_evaluate_and_gallery_draw_each_tile_as_its_city(styled_run, inria_arrays, tmp_path):
    report = evaluate(EvaluateConfig(out=str(tmp_path / "r.json"), data=str(inria_arrays), limit=8,
                                     checkpoints=[f"styled={styled_run}"], baselines=["flat"], mask_iou=False))
    batch = next(split_samples(inria_arrays, "val", 64, 8))
    own = load_generator(styled_run, "cpu")(batch["masks"], batch["cities"])
    expected = metrics.psnr(to_unit_range(own), to_unit_range(batch["images"])).mean()
    assert report["models"]["styled"]["overall"]["psnr"] == pytest.approx(float(expected), abs=1e-4)
    result = gallery(GalleryConfig(out=str(tmp_path / "g"), data=str(inria_arrays), checkpoints=[str(styled_run)],
                                   mask_iou=False,
                                   per_city=1, scenes=0, style_masks=2, variations=3))
    g = result["gallery"]
    assert len(g.styles) == 2 and list(g.styles[0]["cities"]) == CITIES
    assert len(g.variations) == 2 and len(g.variations[0]["samples"]) == 3
    names = [p.name for p in result["figures"]]
    assert sum(n.startswith("cities-") for n in names) == 2 and sum(n.startswith("codes-") for n in names) == 2
    assert any(not np.array_equal(a, g.variations[0]["samples"][0]) for a in g.variations[0]["samples"][1:])
    # truncated to 0, each variation is the average code with its seed's noise
    flat = gallery(GalleryConfig(out=str(tmp_path / "g0"), data=str(inria_arrays), checkpoints=[str(styled_run)],
                                 mask_iou=False,
                                 per_city=1, scenes=0, style_masks=1, variations=3, truncation=0.0))["gallery"]
    entry, gen = flat.variations[0], load_generator(styled_run, "cpu")
    for k, sample in enumerate(entry["samples"]):
        assert np.array_equal(sample, replace(gen, city=entry["city"], noise_seed=k)(entry["mask"][None])[0])


def test_gallery_truncation_needs_a_model_with_a_style_code(tiny_checkpoint, inria_arrays, tmp_path):
    with pytest.raises(SatganError, match="--truncation 0.5: none of the models has a style code"):
        gallery(GalleryConfig(out=str(tmp_path / "g"), data=str(inria_arrays), checkpoints=[str(tiny_checkpoint)],
                              mask_iou=False,
                              per_city=1, scenes=0, truncation=0.5))
    assert not (tmp_path / "g").exists()


def test_diversity_of_codes_and_of_dropout_noise(styled_run, tiny_checkpoint, inria_arrays):
    gen = load_generator(styled_run, "cpu")
    codes = diversity([gen.styled(None, k) for k in range(3)], inria_arrays, limit=6)
    assert codes["tiles"] == 6 and codes["samples"] == 3 and codes["pixels"] > 0
    same = diversity([gen.styled(None, 1), gen.styled(None, 1)], inria_arrays, limit=6)
    assert same["pixels"] == 0  # one code twice: no diversity at all
    noisy = load_generator(tiny_checkpoint, "cpu", dropout=True)
    dropout = diversity([DropoutNoise(noisy, k) for k in range(2)], inria_arrays, limit=6)
    assert dropout["pixels"] > 0
    with pytest.raises(SatganError, match="at least two samplers"):
        diversity([gen], inria_arrays)


def test_old_unconditioned_checkpoints_still_generate(tiny_checkpoint):
    gen = load_generator(tiny_checkpoint, "cpu")
    assert gen.labels == () and gen.latent == 0
    with pytest.raises(SatganError, match="not conditioned on a city"):
        gen.styled("vienna")
    with pytest.raises(SatganError, match="no style code"):
        gen.styled(None, 1)


def test_labels_for_paired_folders_from_a_pattern_or_a_csv(tmp_path):
    root = write_pair_folder(tmp_path / "pairs", [0.1, 0.2, 0.3])
    for i, name in enumerate(["north_a", "south_b", "north_c"]):
        for sub in ("images", "masks"):
            (root / sub / f"tile{i}.png").rename(root / sub / f"{name}.png")
    assert {p.city for p in open_source(root).pairs} == {"pairs"}  # the folder's name
    assert sorted(p.city for p in open_source(root, labels=r"^([a-z]+)_").pairs) == ["north", "north", "south"]
    csv = tmp_path / "labels.csv"
    csv.write_text("stem,label\nnorth_a,x\nsouth_b,y\nnorth_c,x\n")
    assert sorted(p.city for p in open_source(root, labels=str(csv)).pairs) == ["x", "x", "y"]
    csv.write_text("\ufeffnorth_a,x\nsouth_b,y\nnorth_c,x\n")  # a spreadsheet's byte-order mark
    assert sorted(p.city for p in open_source(root, labels=str(csv)).pairs) == ["x", "x", "y"]
    csv.write_text("north_a,x\nsouth_b,../y\nnorth_c,x\n")
    with pytest.raises(SatganError, match="'../y' is not a plain name"):
        open_source(root, labels=str(csv))
    csv.write_text("north_a,x\n")
    with pytest.raises(SatganError, match="no label for 2 pair"):
        open_source(root, labels=str(csv))
    with pytest.raises(SatganError, match="does not match 'south_b'"):
        open_source(root, labels="^north")
    with pytest.raises(SatganError, match="not a regular expression"):
        open_source(root, labels="([")
    out = tmp_path / "arrays"
    pretransform(PretransformConfig(source=str(root), out=str(out), size=64, crop=32, labels=r"^([a-z]+)_"))
    assert {s["city"] for s in json.loads((out / "manifest.json").read_text())["splits"]["train"]["samples"]} == {
        "north", "south"}


def test_style_encoder_codes_and_their_kl():
    mean, log_var = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.2, -0.3]])
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(mean, (0.5 * log_var).exp()),
                                                 torch.distributions.Normal(0.0, 1.0)).sum()
    assert float(kl_to_standard_normal(mean, log_var)) == pytest.approx(float(expected), rel=1e-5)
    assert float(kl_to_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4))) == 0.0
    E = build_encoder(small("model.latent=5", "model.encoder=true"))
    mean, log_var = E(torch.rand(2, 3, 64, 64))
    assert mean.shape == log_var.shape == (2, 5)
    codes = sample_codes(mean, log_var)
    assert codes.shape == (2, 5) and not torch.equal(codes, mean)  # drawn, not the mean
    with pytest.raises(SatganError, match="model.encoder learns style codes: set model.latent"):
        small("model.encoder=true")
    assert build_encoder(small("model.latent=5")) is None


def test_style_encoder_learns_from_l1_and_kl_but_not_from_the_read_back(inria_arrays, tmp_path):
    """One step twice from the same state, the read-back weight 0 and 1000: G moves
    differently, E identically (reading random codes back is the generator's task)."""
    from satgan.training.trainer import Trainer

    after = []
    for weight in (0, 1000):
        cfg = small("model.condition=city", "model.latent=4", "model.encoder=true", f"loss.latent_weight={weight}")
        trainer = Trainer(inria_arrays, tmp_path / f"run{weight}", cfg)
        E0 = {k: v.clone() for k, v in trainer.E.state_dict().items()}
        terms = trainer.train_step(next(iter(trainer.loader)))
        assert {"G_KL", "G_latent", "G_L1", "G_GAN"} <= set(terms) and terms["G_KL"] > 0
        assert any(not torch.equal(E0[k], v) for k, v in trainer.E.state_dict().items())  # E was trained
        after.append((trainer.G.state_dict(), trainer.E.state_dict()))
    (g0, e0), (g1, e1) = after
    assert all(torch.equal(e0[k], e1[k]) for k in e0)
    assert any(not torch.equal(g0[k], g1[k]) for k in g0)


def test_nearest_of_pulls_the_nearest_draw_toward_the_real_image(inria_arrays, tmp_path):
    """Of K draws per sample, the chosen code and noise give the generation nearest the real
    image: no single draw is nearer, and the chosen one is nearer than the typical draw."""
    from satgan.training.trainer import Trainer

    cfg = small("model.condition=city", "model.latent=4", "model.noise=1", "loss.nearest_of=6")
    trainer = Trainer(inria_arrays, tmp_path / "run", cfg)
    batch = next(iter(trainer.loader))
    mask, real, label = batch["mask"], batch["image"], batch["label"]
    trainer.G.eval()  # no dropout: a generation depends on its code and noise alone
    autocast = torch.autocast("cpu", enabled=False)
    torch.manual_seed(3)
    code, noise = trainer._nearest_randomness(mask, label, real, 6, autocast)
    torch.manual_seed(3)
    draws = [trainer._randomness(mask) for _ in range(6)]
    with torch.no_grad():
        gaps = torch.stack([(trainer.G(mask, label, c, n) - real).abs().flatten(1).mean(1) for c, n in draws])
        chosen = (trainer.G(mask, label, code, noise) - real).abs().flatten(1).mean(1)
    assert torch.allclose(chosen, gaps.min(0).values)
    assert (gaps.min(0).values < gaps.mean(0)).all()
    trainer.G.train()
    terms = trainer.train_step(batch)  # and a whole step runs with it
    assert terms["G_L1"] > 0
    with pytest.raises(SatganError, match="loss.nearest_of draws codes and noises"):
        small("loss.nearest_of=4")


def test_an_encoder_run_resumes_and_generates_without_its_encoder(inria_arrays, tmp_path):
    run = tmp_path / "run"
    cfg = small("train.epochs=1", "model.condition=city", "model.latent=4", "model.encoder=true")
    train(inria_arrays, run, cfg)
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert set(ckpt.training["encoder"]) >= {"mean.weight", "log_var.weight"}
    G = load_generator(run / "checkpoints" / "last.pt", "cpu")  # the generator alone, as before
    masks = np.zeros((2, 64, 64), np.uint8)
    masks[:, 16:40, 20:44] = 255
    assert G(masks, cities=["austin", "vienna"]).shape == (2, 64, 64, 3)
    train(inria_arrays, run, apply_overrides(cfg, ["train.epochs=2"]), resume="auto")
    assert load_checkpoint(run / "checkpoints" / "last.pt").epoch == 2
    with pytest.raises(SatganError, match="another architecture"):  # the encoder is part of the architecture
        train(inria_arrays, run, apply_overrides(cfg, ["train.epochs=3", "model.encoder=false"]), resume="auto")


def test_smoothed_noise_is_unit_variance_blobs_that_follow_a_shift():
    white = noise_fields(1, 1, 256, 256, seed=3)
    blobs = smooth_noise(white, 6.0)
    assert smooth_noise(white, 0.0) is white
    inner = blobs[..., 32:-32, 32:-32]
    assert 0.8 < float(inner.std()) < 1.25, "kept at unit variance"
    neighbours = torch.corrcoef(torch.stack([inner[..., :, :-1].flatten(), inner[..., :, 1:].flatten()]))[0, 1]
    assert neighbours > 0.95 > float(torch.corrcoef(torch.stack([white[..., :-1].flatten(),
                                                                  white[..., 1:].flatten()]))[0, 1])
    # a window cut from the field and smoothed alone agrees with the whole field's smoothing inside
    window = smooth_noise(white[..., 40:168, 40:168], 6.0)
    assert torch.allclose(window[..., 24:-24, 24:-24], blobs[..., 64:144, 64:144], atol=1e-5)


def test_noise_blur_reaches_the_generator_and_needs_noise():
    with pytest.raises(SatganError, match="model.noise_blur"):
        apply_overrides(preset("quick"), ["model.noise=0", "model.noise_blur=4"])
    cfg = apply_overrides(preset("quick"), ["data.crop=64", "model.ngf=8", "model.noise=1"])
    torch.manual_seed(0)
    G = build_generator(cfg).eval()
    blurred = build_generator(apply_overrides(cfg, ["model.noise_blur=4"])).eval()
    blurred.load_state_dict(G.state_dict())  # the same weights: no new parameters
    mask, noise = torch.zeros(1, 1, 64, 64), noise_fields(1, 1, 64, 64, seed=0)
    with torch.no_grad():
        assert not torch.allclose(G(mask, noise=noise), blurred(mask, noise=noise))
        assert torch.allclose(G(mask, noise=smooth_noise(noise, 4.0)), blurred(mask, noise=noise))
