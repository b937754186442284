"""Buildings a segmenter finds (issue 36): the segmenter builds, the alignment loss, the two
judges, and the rule that a network taking part in training never scores it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from satgan import SatganError
from satgan.checkpoint import load_checkpoint
from satgan.config import EvaluateConfig, SegmenterConfig, apply_overrides, preset
from satgan.evaluation.report import evaluate
from satgan.models.losses import alignment_loss
from satgan.models.segmenter import NETWORKS, segmenter_network
from satgan.segmentation.segmenters import (
    ALIGNMENT,
    ALIGNMENT_ROLE,
    JUDGES,
    alignment_segmenter,
    judge,
    load_segmenter,
    train_segmenter,
)
from satgan.training.trainer import train

TINY_SEG = dict(width=4, steps=2, batch_size=2, crop=32, device="cpu")


# -- the alignment loss -----------------------------------------------------------------------------
def _mask(pattern: list[list[int]]) -> torch.Tensor:
    """A (1, 1, H, W) mask in [-1, 1] from 0/1 rows."""
    return torch.tensor(pattern, dtype=torch.float32)[None, None] * 2 - 1


def test_the_alignment_loss_counts_only_the_pixels_the_segmenter_misreads():
    mask = _mask([[1, 1], [0, 0]])
    right = torch.tensor([[[[4.0, 4.0], [-4.0, -4.0]]]])  # every pixel read as the mask says
    assert alignment_loss(right, mask).item() == 0.0
    # one building pixel read as ground: its cross-entropy, averaged over all four pixels
    one_wrong = torch.tensor([[[[-2.0, 4.0], [-4.0, -4.0]]]])
    expected = torch.nn.functional.softplus(torch.tensor(2.0)).item() / 4  # -log(sigmoid(-2))
    assert alignment_loss(one_wrong, mask).item() == pytest.approx(expected, rel=1e-6)
    # a pixel read right but barely (logit 0.1) costs nothing: no push toward one network's ideal
    barely = torch.tensor([[[[0.1, 4.0], [-4.0, -0.1]]]])
    assert alignment_loss(barely, mask).item() == 0.0
    # a ground pixel read as building costs too
    ground_wrong = torch.tensor([[[[4.0, 4.0], [3.0, -4.0]]]])
    assert alignment_loss(ground_wrong, mask).item() == pytest.approx(
        torch.nn.functional.softplus(torch.tensor(3.0)).item() / 4, rel=1e-6)


def test_the_alignment_loss_gives_gradient_only_where_misread():
    mask = _mask([[1, 0], [1, 0]])
    logits = torch.tensor([[[[-1.0, -3.0], [2.0, 0.5]]]], requires_grad=True)  # (0,0) and (1,1) wrong
    alignment_loss(logits, mask).backward()
    grad = logits.grad[0, 0]
    assert grad[0, 0] < 0 and grad[1, 1] > 0  # toward building and toward ground
    assert grad[0, 1] == 0 and grad[1, 0] == 0


# -- the segmenter builds ------------------------------------------------------------------------------
@pytest.mark.parametrize("architecture", sorted(NETWORKS))
def test_each_segmenter_build_trains_saves_and_loads(inria_arrays, tmp_path, architecture):
    cfg = SegmenterConfig(data=str(inria_arrays), architecture=architecture, **TINY_SEG)
    seg = train_segmenter(cfg, progress=False)
    path = seg.save(tmp_path / "seg.pt")
    again = load_segmenter(path, "cpu")
    assert again.info["settings"]["architecture"] == architecture
    images = np.asarray(np.load(inria_arrays / "val" / "images.npy", mmap_mode="r")[:2])
    assert np.array_equal(seg(images), again(images))
    logits = again.net(torch.zeros(1, 3, 48, 80))
    assert logits.shape == (1, 1, 48, 80)


def test_the_lite1_segmenter_trains_its_decoder_only():
    net = segmenter_network("lite1", 8)
    before = {k: v.clone() for k, v in net.encoder.state_dict().items()}
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert trainable and not any(n.startswith("encoder.") for n in trainable)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    net.train()
    assert not net.encoder.training  # ImageNet batch-norm statistics stay
    net(torch.randn(2, 3, 64, 64)).mean().backward()
    opt.step()
    assert all(torch.equal(before[k], v) for k, v in net.encoder.state_dict().items())


def test_the_three_roles_are_three_builds_and_seeds():
    """The judges and the alignment segmenter differ in build and seed (not only in data)."""
    defaults = {"architecture": SegmenterConfig(data="").architecture, "seed": SegmenterConfig(data="").seed}
    roles = [{**defaults, **JUDGES["mask_iou"]}, {**defaults, **JUDGES["mask_iou_2"]}, {**defaults, **ALIGNMENT}]
    assert len({r["architecture"] for r in roles}) == 3 and len({r["seed"] for r in roles}) == 3


# -- training with the alignment loss; its segmenter never judges -------------------------------------
@pytest.fixture(scope="module")
def aligned(inria_arrays, tmp_path_factory):
    """A tiny run with loss.seg_weight, its alignment segmenter a tiny lite1 saved as a file."""
    root = tmp_path_factory.mktemp("aligned")
    cfg = SegmenterConfig(data=str(inria_arrays), **{**ALIGNMENT, **TINY_SEG})
    seg_path = train_segmenter(cfg, progress=False).save(root / "lite1.pt")
    config = apply_overrides(preset("quick"), [
        "data.crop=64", "model.ngf=8", "model.ndf=4", "train.epochs=2", "train.val_samples=2", "train.workers=0",
        "model.noise=0", "loss.seg_weight=2", "loss.seg_warmup=1", f"loss.segmenter={seg_path}"])
    train(inria_arrays, root / "run", config)
    return {"root": root, "segmenter": seg_path, "checkpoint": root / "run" / "checkpoints" / "last.pt"}


def test_the_alignment_loss_starts_after_its_warm_up_and_is_recorded(aligned):
    history = json.loads((aligned["root"] / "run" / "history.json").read_text())
    assert "G_seg" not in history[0] and history[1]["G_seg"] >= 0
    ckpt = load_checkpoint(aligned["checkpoint"])
    used = ckpt.trained_with[ALIGNMENT_ROLE]
    assert used["architecture"] == "lite1" and used["key"] == load_segmenter(aligned["segmenter"]).info["key"]


def test_a_segmenter_that_took_part_in_training_is_refused_as_a_judge(aligned, inria_arrays, tiny_segmenter,
                                                                      tiny_judge_2, tmp_path):
    base = dict(checkpoints=[f"aligned={aligned['checkpoint']}"], data=str(inria_arrays), limit=4, kid_subsets=2)
    for spec in (dict(segmenter=str(aligned["segmenter"]), segmenter_2=str(tiny_judge_2)),
                 dict(segmenter=str(tiny_segmenter), segmenter_2=str(aligned["segmenter"]))):
        name = "mask_iou" if spec["segmenter"] == str(aligned["segmenter"]) else "mask_iou_2"
        with pytest.raises(SatganError, match=rf"{name}: its segmenter \(lite1, .*took part in training aligned"):
            evaluate(EvaluateConfig(out=str(tmp_path / "r.json"), **base, **spec))
    assert not (tmp_path / "r.json").exists()
    report = evaluate(EvaluateConfig(out=str(tmp_path / "r.json"), **base, segmenter=str(tiny_segmenter),
                                     segmenter_2=str(tiny_judge_2)))
    assert report["trained_with"]["aligned"][ALIGNMENT_ROLE]["architecture"] == "lite1"
    assert {report["segmenter"]["key"], report["segmenter_2"]["key"]}.isdisjoint(
        {report["trained_with"]["aligned"][ALIGNMENT_ROLE]["key"][:24]})


def test_the_default_judges_and_alignment_segmenter_are_trained_with_their_own_builds(inria_arrays, monkeypatch):
    import satgan.segmentation.segmenters as segmenters

    asked = []
    monkeypatch.setattr(segmenters, "reference_segmenter", lambda cfg, progress=True: asked.append(cfg) or cfg)
    judge("mask_iou", None, str(inria_arrays), "cpu")
    judge("mask_iou_2", None, str(inria_arrays), "cpu")
    alignment_segmenter(None, str(inria_arrays), "cpu")
    assert [(c.architecture, c.seed) for c in asked] == [("unet", 0), ("dilated", 1), ("lite1", 7)]


def test_a_bad_alignment_segmenter_is_one_clear_error(inria_arrays, tmp_path):
    config = apply_overrides(preset("quick"), ["data.crop=64", "model.ngf=8", "model.ndf=4", "train.epochs=1",
                                               "train.workers=0", "loss.seg_weight=1",
                                               f"loss.segmenter={tmp_path / 'nowhere.pt'}"])
    with pytest.raises(SatganError, match=r"loss.segmenter \S*nowhere.pt: no such file or folder"):
        train(inria_arrays, tmp_path / "run", config)
    assert not (tmp_path / "run").exists()
