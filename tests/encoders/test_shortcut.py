"""The vision shortcut: ridge-initialised, gated against the fused path, trained from there."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import Ridge

from model_code.config import ConfigError
from model_code.data.synthetic import synthetic_openclipart
from model_code.embed import Embedder
from model_code.encoders.shortcut import VisionShortcut
from model_code.evaluation.suite import (
    RIDGE_ALPHA,
    fit_ridge,
    openclipart_retrieval,
    ridge_report,
)
from model_code.factory import create_model
from model_code.training.run import fit_vision_shortcut, source_queries
from model_code.training.sources import TrainingData, build_sources
from model_code.training.stages import load_stage
from model_code.training.task import SailTrainingTask
from model_code.training.trainer import Trainer


def _unit(x):
    return F.normalize(x, dim=-1)


def test_closed_gate_gives_image_only_items_the_shortcut_alone():
    shortcut = VisionShortcut(6, 4)
    fused, features = torch.randn(3, 4), torch.randn(3, 6)
    has_frames = torch.tensor([True, True, False])
    has_text = torch.tensor([False, True, True])
    out = shortcut(fused, features, has_frames, has_text)
    mapped = _unit(shortcut.linear(features))
    assert torch.allclose(out[0], mapped[0], atol=1e-6)  # image only: the map, gate shut
    assert torch.allclose(out[1], _unit(_unit(fused[1]) + mapped[1]), atol=1e-6)  # text kept
    assert torch.allclose(out[2], _unit(fused[2]), atol=1e-6)  # no frames: the fuser alone


def test_the_gate_learns_from_zero_and_then_lets_the_fused_path_in():
    shortcut = VisionShortcut(6, 4)
    fused = torch.randn(2, 4, requires_grad=True)
    out = shortcut(fused, torch.randn(2, 6), torch.tensor([True, True]), torch.tensor([False] * 2))
    (out * torch.randn(2, 4)).sum().backward()
    assert shortcut.gate.grad.abs() > 0  # it can open
    assert fused.grad.abs().max() == 0  # while shut, the fused path gets nothing
    with torch.no_grad():
        shortcut.gate.fill_(0.5)
    out = shortcut(fused, torch.randn(2, 6), torch.tensor([True, True]), torch.tensor([False] * 2))
    out.sum().backward()
    assert fused.grad.abs().max() > 0


def test_set_ridge_is_sklearns_ridge_with_an_intercept():
    rng = np.random.default_rng(0)
    features, targets = rng.normal(size=(50, 6)), rng.normal(size=(50, 4))
    shortcut = VisionShortcut(6, 4)
    with torch.no_grad():
        shortcut.gate.fill_(1.0)
    shortcut.set_ridge(features, targets, alpha=3.0)
    reference = Ridge(alpha=3.0).fit(features, targets)
    assert np.allclose(shortcut.linear.weight.detach().numpy(), reference.coef_, atol=1e-5)
    assert np.allclose(shortcut.linear.bias.detach().numpy(), reference.intercept_, atol=1e-5)
    assert float(shortcut.gate.detach()) == 0.0


@pytest.mark.numeric_paths
def test_at_step_0_the_ridge_initialised_model_retrieves_as_the_ridge_baseline(tmp_path):
    pairs = synthetic_openclipart(60, tmp_path, distinct=True)  # two paths: no ties to break
    stage = load_stage("content1")
    source = build_sources(stage, TrainingData(openclipart=pairs))[stage.closed_form_init]
    embedder = Embedder(*create_model("tiny"))
    embedder.model.eval()
    captions = source_queries(embedder, source)
    fit_vision_shortcut(embedder, source.items, captions, RIDGE_ALPHA)
    train, test = pairs[pairs["split"] == "train"], pairs[pairs["split"] != "train"]
    baseline = ridge_report(embedder, fit_ridge(embedder, train), test)
    assert openclipart_retrieval(embedder, test) == pytest.approx(baseline, abs=1e-9)


def test_the_fitted_shortcut_trains_at_the_stage_lr_and_its_gate_with_the_new_parts(tmp_path):
    stage = load_stage("content1", lr=1e-4, head_lr_scale=10.0, freeze=["vision", "fuser"])
    data = TrainingData(openclipart=synthetic_openclipart(40, tmp_path))
    model, processor = create_model("tiny")
    trainer = Trainer(
        SailTrainingTask(model, processor, stage), build_sources(stage, data), tmp_path
    )
    lr_of = {id(p): group["lr"] for group in trainer.parameter_groups() for p in group["params"]}
    shortcut = model.vision.shortcut
    assert lr_of[id(shortcut.linear.weight)] == pytest.approx(1e-4)
    assert lr_of[id(shortcut.gate)] == pytest.approx(1e-3)


def test_closed_form_init_must_name_one_of_the_stages_data_sets():
    with pytest.raises(ConfigError, match="closed_form_init names 'captions'"):
        load_stage("content1", closed_form_init="captions")
    with pytest.raises(ConfigError, match="ridge_alpha must be > 0"):
        load_stage("content1", ridge_alpha=0.0)
    with pytest.raises(ConfigError, match="basis_whitening must be within"):
        load_stage("content1", basis_whitening=-0.5)


def test_the_stages_keep_the_fitted_map_frozen_and_train_the_gate(tmp_path):
    stage = load_stage("content2")
    assert "shortcut" in stage.freeze
    model, processor = create_model("tiny")
    SailTrainingTask(model, processor, stage)
    assert not model.vision.shortcut.linear.weight.requires_grad
    assert model.vision.shortcut.gate.requires_grad
