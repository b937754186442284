"""Training: a real run, exact resume after kill -9, DDP equivalence, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from satgan import SatganError
from satgan.checkpoint import load_checkpoint
from satgan.config import PretransformConfig, apply_overrides, preset
from satgan.data.dataset import EpochSampler
from satgan.data.pretransform import pretransform
from satgan.training.trainer import train
from satgan.training.validation import psnr
from tests.conftest import REPO, write_pair_folder

TINY = ["data.crop=32", "model.ngf=4", "model.ndf=4", "train.batch_size=2", "train.workers=0",
        "train.val_samples=2", "train.log_every=1",
        "model.discriminator=patch", "model.noise=0",  # projected needs 64 px crops; noise where a test asks
        "loss.seg_weight=0"]  # the alignment loss where a test asks (its segmenter takes minutes)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    write_pair_folder(root / "src" / "train", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], size=(40, 40))
    write_pair_folder(root / "src" / "val", [0.3, 0.5], size=(40, 40))
    pretransform(PretransformConfig(source=str(root / "src"), out=str(root / "arrays"), size=36, crop=32))
    return root / "arrays"


def tiny(*extra: str):
    return apply_overrides(preset("quick"), TINY + list(extra))


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / "last.pt").generator


def test_training_run_writes_checkpoints_samples_and_metrics(tiny_data, tmp_path):
    metrics = train(tiny_data, tmp_path / "run", tiny("train.epochs=2", "train.keep_every=1"))
    assert {"epoch", "step", "psnr", "ssim", "G_L1", "G_GAN", "D_real", "D_fake", "lr"} <= set(metrics)
    assert metrics["epoch"] == 2 and metrics["step"] == 8
    assert 0 < metrics["psnr"] < 60 and -1 <= metrics["ssim"] <= 1
    for name in ("checkpoints/last.pt", "checkpoints/epoch_0001.pt", "checkpoints/epoch_0002.pt",
                 "samples/epoch_0002.png", "history.json", "config.json"):
        assert (tmp_path / "run" / name).exists(), name
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt.config.model.ngf == 4 and ckpt.epoch == 2 and ckpt.training["discriminator"] is not None
    assert ckpt.manifest_hash == json.loads((tiny_data / "manifest.json").read_text())["content_hash"]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and all("psnr" in h for h in history)
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))


def test_generator_alone_builds_no_discriminator(tiny_data, tmp_path):
    train(tiny_data, tmp_path / "run", tiny("train.epochs=1", "loss.gan_weight=0"))
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt.training["discriminator"] is None and ckpt.training["opt_D"] is None


def _script(data: Path, run: Path, resume: str, slow: float) -> str:
    args = ["train", str(data), str(run), "--preset", "quick", "--resume", resume]
    for item in TINY + ["train.epochs=4", "train.deterministic=true", "train.checkpoint_every=1",
                        "train.scheduler=linear", "train.decay_epochs=2", "train.ema=0.9",
                        "loss.d_augment=translation,cutout,color", "loss.r1_weight=1",
                        "model.condition=city", "model.latent=2", "loss.mode_seeking=1", "model.noise=1",
                        "model.encoder=true"]:
        args += ["--set", item]
    return (
        "import time, satgan.training.trainer as t\n"
        "step = t.Trainer.train_step\n"
        f"t.Trainer.train_step = lambda self, b: (time.sleep({slow}), step(self, b))[1]\n"
        "from satgan.cli import main\n"
        f"raise SystemExit(main({args!r}))\n"
    )


def test_resume_after_kill_is_bitwise_exact(tiny_data, tmp_path):
    """4 epochs straight == 2 epochs + kill -9 mid-epoch + resume: the same weights, bit for bit."""
    straight = subprocess.run([sys.executable, "-c", _script(tiny_data, tmp_path / "a", "never", 0)],
                              cwd=REPO, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr[-2000:]

    run = tmp_path / "b"
    proc = subprocess.Popen([sys.executable, "-c", _script(tiny_data, run, "never", 0.3)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    last = run / "checkpoints" / "last.pt"
    while time.time() < deadline:  # kill once a checkpoint from inside epoch 3 is on disk
        if last.exists():
            try:
                at = load_checkpoint(last)
            except SatganError:
                at = None  # being replaced right now
            if at and at.epoch == 2 and at.training["batch_in_epoch"] >= 1:
                break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(last)
    assert killed_at.epoch == 2 and killed_at.training["batch_in_epoch"] > 0, "the kill should land mid-epoch 3"

    resumed = subprocess.run([sys.executable, "-c", _script(tiny_data, run, "auto", 0)], cwd=REPO,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout
    a, b = weights(tmp_path / "a"), weights(run)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    da = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")
    db = load_checkpoint(run / "checkpoints" / "last.pt")
    ea, eb = da.training["generator_ema"], db.training["generator_ema"]
    assert ea["updates"] == eb["updates"] and all(torch.equal(ea["weights"][k], eb["weights"][k]) for k in a)
    dd, ddb = da.training["discriminator"], db.training["discriminator"]
    assert all(torch.equal(dd[k], ddb[k]) for k in dd)
    ea, eb = da.training["encoder"], db.training["encoder"]
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
    assert da.training["history"][-1]["G_L1"] == db.training["history"][-1]["G_L1"]


def test_auto_resume_falls_back_past_a_truncated_checkpoint(tiny_data, tmp_path):
    run = tmp_path / "run"
    train(tiny_data, run, tiny("train.epochs=2", "train.keep_every=1"))
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(SatganError, match="last.pt: not a readable checkpoint"):
        load_checkpoint(last)
    with pytest.warns(UserWarning, match="trying an older checkpoint"):
        train(tiny_data, run, tiny("train.epochs=3", "train.keep_every=1"), resume="auto")
    assert load_checkpoint(last).epoch == 3


def test_run_dir_of_another_run_is_refused(tiny_data, tmp_path):
    run = tmp_path / "run"
    train(tiny_data, run, tiny("train.epochs=1"))
    with pytest.raises(SatganError, match="already holds a run.*--resume auto.*--overwrite"):
        train(tiny_data, run, tiny("train.epochs=1", "train.lr=1e-3"))
    with pytest.raises(SatganError, match=r"another architecture \(model.ngf: 4 vs 8"):
        train(tiny_data, run, tiny("train.epochs=2", "model.ngf=8"), resume="auto")
    train(tiny_data, run, tiny("train.epochs=1", "model.ngf=8"), overwrite=True)
    assert load_checkpoint(run / "checkpoints" / "last.pt").config.model.ngf == 8


def test_bad_training_input(tiny_data, tmp_path):
    with pytest.raises(SatganError, match="not a pretransformed folder.*satgan pretransform"):
        train(tmp_path, tmp_path / "run", tiny())
    with pytest.raises(SatganError, match="batch_size 64 is larger than the train split"):
        train(tiny_data, tmp_path / "run", tiny("train.batch_size=64"))
    if not torch.cuda.is_available():
        with pytest.raises(SatganError, match="device=cuda but no CUDA GPU"):
            train(tiny_data, tmp_path / "run", tiny("train.device=cuda"))
    with pytest.raises(SatganError, match="patch discriminator with scales=2 and layers=3 needs crops of at least 48"):
        train(tiny_data, tmp_path / "run", tiny("discriminator.scales=2"))
    with pytest.raises(SatganError, match="train.scheduler='exp': choose from linear"):
        train(tiny_data, tmp_path / "run", tiny("train.scheduler=exp"))


def test_nan_loss_stops_with_the_last_good_checkpoint(tiny_data, tmp_path):
    run = tmp_path / "run"
    train(tiny_data, run, tiny("train.epochs=1"))
    good = (run / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(SatganError, match="loss became (nan|inf).*last good checkpoint"):
        train(tiny_data, run, tiny("train.epochs=2", "loss.l1_weight=1e39"), resume="auto")
    assert (run / "checkpoints" / "last.pt").read_bytes() == good


def test_epoch_sampler_shards_and_skips():
    full = EpochSampler(10, seed=1)
    full.set_epoch(3)
    order = list(full)
    assert sorted(order) == list(range(10)) and order != list(EpochSampler(10, seed=1))
    ranks = [EpochSampler(10, seed=1, rank=r, world=2) for r in range(2)]
    for r in ranks:
        r.set_epoch(3)
    assert sorted(list(ranks[0]) + list(ranks[1])) == sorted(order)
    full.set_epoch(3, start=4)
    assert list(full) == order[4:]
    for r in ranks:
        r.set_epoch(3, start=4)
    assert sorted(list(ranks[0]) + list(ranks[1])) == sorted(order[4:])


def test_psnr_is_on_unit_range():
    a = torch.zeros(1, 3, 8, 8)
    b = torch.full((1, 3, 8, 8), 0.2)  # 0.1 apart on [0, 1]
    assert psnr(a, b).item() == pytest.approx(20.0, abs=1e-4)


def test_ddp_step_equals_single_process_double_batch(tiny_data, tmp_path):
    """2 gloo processes with batch 2 each == 1 process with batch 4, after one step.

    No normalization: a conv bias before instance norm has a gradient of zero up to
    rounding, whose sign Adam's first step would turn into a full +-lr update."""
    common = TINY[1:] + ["data.crop=32", "train.epochs=1", "train.batch_size=4", "model.dropout=false",
                         "model.norm=none", "train.scheduler=constant", "loss.d_augment="]
    single = tmp_path / "single"
    data4 = tmp_path / "four"
    write_pair_folder(data4 / "src" / "train", [0.2, 0.4, 0.6, 0.8], size=(40, 40))
    write_pair_folder(data4 / "src" / "val", [0.5], size=(40, 40))
    pretransform(PretransformConfig(source=str(data4 / "src"), out=str(data4 / "arrays"), size=36, crop=32))
    train(data4 / "arrays", single, apply_overrides(preset("quick"), common))
    sets = [x for item in common for x in ("--set", item)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "satgan", "train", str(data4 / "arrays"), str(tmp_path / "ddp"), "--preset", "quick", *sets]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = weights(single), weights(tmp_path / "ddp")
    assert load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt").step == 1
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    da = load_checkpoint(single / "checkpoints" / "last.pt").training["discriminator"]
    db = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt").training["discriminator"]
    for k in da:  # D's gradients are averaged by hand: the same check
        assert torch.allclose(da[k], db[k], atol=1e-6), k
    # and a distributed run resumes from its checkpoint
    more = [x for item in common + ["train.epochs=2"] for x in ("--set", item)]
    cmd2 = cmd[:cmd.index("--preset")] + ["--preset", "quick", *more, "--resume", "auto"]
    done = subprocess.run(cmd2, cwd=REPO, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed from" in done.stdout
    assert load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt").epoch == 2


def test_amp_modes():
    from satgan.runtime import amp_dtype

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert amp_dtype("auto", cpu) is None and amp_dtype("bf16", cpu) is None  # never on CPU
    assert amp_dtype("bf16", gpu) == torch.bfloat16 and amp_dtype("fp16", gpu) == torch.float16
    assert amp_dtype("off", gpu) is None
    with pytest.raises(SatganError, match="unknown amp 'fp8'"):
        amp_dtype("fp8", cpu)


def test_channels_last_and_other_variants_train(tiny_data, tmp_path):
    """The settings the old project tried, each for a step: they build and run."""
    variants = [
        ["train.channels_last=true", "model.norm=batch"],
        ["model.generator=resnet", "model.resnet_blocks=2", "loss.gan_mode=lsgan"],
        ["loss.gan_mode=hinge", "discriminator.scales=2", "discriminator.layers=2",
         "discriminator.spectral_norm=true",
         "loss.fm_weight=10"],
        ["data.mask_channels=3", "train.scheduler=plateau"],
        ["train.scheduler=cosine", "model.upsample=deconv", "data.rot90=true"],
        ["loss.detail_weight=100", "loss.detail_region=edges", "model.input_skip=true", "model.noise=1"],
    ]
    for i, extra in enumerate(variants):
        metrics = train(tiny_data, tmp_path / f"run{i}", tiny("train.epochs=1", *extra))
        assert metrics["epoch"] == 1 and metrics["psnr"] > 0, extra
    history = json.loads((tmp_path / "run5" / "history.json").read_text())
    assert history[-1]["G_detail"] > 0  # the detail term is computed and logged
