"""The trainer on the DeepSpeed engine (CPU, one gloo process), tiny preset, synthetic data."""

import json
import logging
import math
import os
import re

import pytest
import torch

from model_code.config import ConfigError
from model_code.data.synthetic import synthetic_openclipart
from model_code.factory import load_pretrained
from model_code.training.callbacks import TrainingCallback
from model_code.training.lr_schedule import stage_schedule
from model_code.training.run import (
    StageInputs,
    load_training_data,
    mine_stage_negatives,
    train_stage,
)
from model_code.training.sources import TrainingData, build_sources
from model_code.training.stages import load_stage
from model_code.training.trainer import StochasticSpecializer


def _losses(out_dir):
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [row["loss"] for row in rows], rows


class StopAt(TrainingCallback):
    def __init__(self, step):
        self.step = step

    def on_checkpoint(self, path, step):
        if step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("stage", ["content1", "content3", "seq2item", "id2item"])
def test_every_stage_lowers_its_loss(stage, tmp_path):
    train_stage("tiny", stage, tmp_path, steps=40, lr=1e-3, min_lr=1e-3, batch_size=8, freeze=[])
    _, rows = _losses(tmp_path)
    main = max({r["dataset"] for r in rows}, key=[r["dataset"] for r in rows].count)
    losses = [r["loss"] for r in rows if r["dataset"] == main]
    assert len(losses) >= 16 and sum(losses[-8:]) < sum(losses[:8]), (main, losses)


def test_content_stage_learns_and_exports(tmp_path):
    result = train_stage(
        "tiny", "content2", tmp_path, steps=30, lr=1e-3, min_lr=1e-3, batch_size=8, freeze=[]
    )
    losses, rows = _losses(tmp_path)
    assert len(losses) == 30
    assert sum(losses[-6:]) / 6 < sum(losses[:6]) / 6
    assert {"step", "dataset", "loss", "infonce", "lr", "temperature/openclipart"} <= set(rows[0])
    assert all(row["samples_per_second"] > 0 and row["seconds_left"] >= 0 for row in rows)
    assert rows[-1]["seconds_left"] == 0 < rows[-2]["seconds_left"]
    elapsed = [row["elapsed_seconds"] for row in rows]
    assert elapsed[0] > 0 and elapsed == sorted(set(elapsed))
    model, _ = load_pretrained(result.model_dir, expected_preset="tiny")
    assert sum(p.numel() for p in model.parameters()) > 0
    assert (tmp_path / "checkpoints" / "latest").is_file()


def test_resumed_run_matches_an_uninterrupted_one(tmp_path, monkeypatch, capfd):
    monkeypatch.delenv("SAIL_PROGRESS", raising=False)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    settings = dict(steps=6, batch_size=4, checkpoint_every=3, warmup_steps=1, lr=1e-3)
    train_stage("tiny", "content1", tmp_path / "full", **settings)
    with pytest.raises(KeyboardInterrupt):
        train_stage("tiny", "content1", tmp_path / "cut", callbacks=[StopAt(3)], **settings)
    assert len(_losses(tmp_path / "cut")[0]) == 3
    # one process: ZeRO stage 0, the optimizer state in the model states file, no partitions
    written = tmp_path / "cut" / "checkpoints" / "step3"
    assert (written / "mp_rank_00_model_states.pt").is_file()
    assert not list(written.glob("zero_pp_rank_*"))
    capfd.readouterr()
    train_stage("tiny", "content1", tmp_path / "cut", resume=tmp_path / "cut", **settings)
    bar = capfd.readouterr().err
    assert "| 3/6 [" in bar and "| 6/6 [" in bar and "| 0/6 [" not in bar  # starts at the resume
    full, full_rows = _losses(tmp_path / "full")
    resumed, resumed_rows = _losses(tmp_path / "cut")
    assert [r["dataset"] for r in resumed_rows] == [r["dataset"] for r in full_rows]
    assert resumed == pytest.approx(full, abs=1e-4)


def test_progress_bar_on_stderr_unless_turned_off(tmp_path, monkeypatch, capfd):
    monkeypatch.delenv("SAIL_PROGRESS", raising=False)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    train_stage("tiny", "content1", tmp_path / "on", steps=2, batch_size=4)
    out, err = capfd.readouterr()
    assert re.search(r"content1: 100%\|.*\| 2/2 \[.*loss=[\d.]+, samples/s=[\d.]+\]", err)
    assert "2/2 [" not in out
    for name, value in (("SAIL_PROGRESS", "0"), ("TQDM_DISABLE", "1")):
        with monkeypatch.context() as env:
            env.setenv(name, value)
            train_stage("tiny", "content1", tmp_path / name, steps=2, batch_size=4)
        assert "2/2 [" not in capfd.readouterr().err, name


def test_activation_checkpointing_leaves_the_losses_unchanged(tmp_path):
    settings = dict(steps=3, batch_size=4, warmup_steps=1, lr=1e-3)
    train_stage("tiny", "content2", tmp_path / "plain", gradient_checkpointing=False, **settings)
    train_stage("tiny", "content2", tmp_path / "ckpt", gradient_checkpointing=True, **settings)
    assert _losses(tmp_path / "ckpt")[0] == pytest.approx(_losses(tmp_path / "plain")[0], abs=1e-5)


def test_stage_starts_from_the_previous_stage(tmp_path):
    first = train_stage("tiny", "content1", tmp_path / "one", steps=2, batch_size=4)
    second = train_stage(
        "tiny", "content3", tmp_path / "three", steps=2, batch_size=4, init=first.model_dir
    )
    assert second.model_dir.is_dir()
    with pytest.raises(ConfigError, match="trained with preset 'tiny', not 'mini'"):
        train_stage("mini", "content2", tmp_path / "x", steps=1, init=first.model_dir)


def test_bad_stage_configs_fail_before_training(tmp_path):
    with pytest.raises(ConfigError, match="unknown stage 'content9'"):
        load_stage("content9")
    stage = load_stage("content1").to_dict()
    stage["datasets"][0]["losses"] = {"triplet": 1.0}
    with pytest.raises(ConfigError, match="unknown loss 'triplet'"):
        type(load_stage("content1")).from_dict(stage)
    stage["datasets"][0]["losses"] = {"infonce": 1.0}
    stage["datasets"][0]["patterns"] = ["text->smell"]
    with pytest.raises(ConfigError, match="unknown modality 'smell'"):
        type(load_stage("content1")).from_dict(stage)
    stage["datasets"][0]["patterns"] = ["text->vision"]
    stage["datasets"][0]["source"] = "imagenet"
    with pytest.raises(ConfigError, match="unknown source 'imagenet'"):
        type(load_stage("content1")).from_dict(stage)
    stage["datasets"][0]["source"] = "openclipart"
    stage["datasets"][0]["temperature"] = "0.05"
    stage["lr"], stage["shuffle"] = "5e-5", True
    with pytest.raises(ConfigError) as caught:
        type(load_stage("content1")).from_dict(stage)
    assert str(caught.value) == (
        "stage 'content1': datasets.0.temperature: input should be a valid number, got '0.05'; "
        "lr: input should be a valid number, got '5e-5'; unknown key 'shuffle'"
    )


def test_an_empty_dataset_after_filtering_is_refused(tmp_path):
    pairs = synthetic_openclipart(5, tmp_path / "media").assign(split="test")
    inputs = StageInputs(data=TrainingData(openclipart=pairs))
    with pytest.raises(ConfigError, match="'openclipart' has 0 record\\(s\\) after filtering"):
        train_stage("tiny", "content2", tmp_path / "run", steps=1, inputs=inputs)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_stochastic_specialization_follows_the_weights():
    import random

    stage = load_stage("content1")
    specializer = StochasticSpecializer(stage)
    rng = random.Random(0)
    draws = [specializer.draw(rng) for _ in range(4000)]
    for dataset in stage.datasets:
        assert draws.count(dataset.name) / 4000 == pytest.approx(dataset.weight, abs=0.03)


def test_schedule_warms_up_then_decays_to_the_floor_in_every_group():
    stage = load_stage("content1", steps=20, warmup_steps=4, lr=1.0, min_lr=0.1)
    heads = torch.nn.Parameter(torch.zeros(1))
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))]}, {"params": [heads], "lr": 10.0}]
    optimizer = torch.optim.SGD(groups, lr=1.0)
    schedule = stage_schedule(optimizer, stage)
    lrs = []
    for _ in range(20):
        lrs.append(schedule.get_last_lr())
        optimizer.step()
        schedule.step()
    base = [lr for lr, _ in lrs]
    assert base[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in zip(base[4:], base[5:], strict=False))
    assert base[-1] == pytest.approx(0.1)
    assert [lr for _, lr in lrs] == pytest.approx([10 * lr for lr in base])  # head_lr_scale kept


@pytest.mark.parametrize("stage", ["seq2item", "id2item"])
def test_cre_stages_train_on_generated_data(stage, tmp_path):
    result = train_stage("tiny", stage, tmp_path, steps=3, batch_size=4)
    _, rows = _losses(tmp_path)
    assert len(rows) == 3 and all(math.isfinite(row["loss"]) for row in rows)
    assert any(row["dataset"].startswith("movielens") for row in rows)
    assert (result.model_dir / "heads.pt").is_file()


def test_synthetic_data_has_the_real_schemas():
    drawings = load_training_data(load_stage("content1"), synthetic=True).openclipart
    assert {"id", "title", "keywords", "image", "group", "split"} <= set(drawings.columns)
    movies = load_training_data(load_stage("id2item"), synthetic=True).movielens
    assert set(movies) >= {"items", "interactions", "sequences"}


def test_negatives_mined_as_a_step_train_the_next_stage(tmp_path):
    first = train_stage("tiny", "content2", tmp_path / "two", steps=2, batch_size=4)
    mined = mine_stage_negatives("tiny", "content3", first.model_dir)
    ((name, result),) = mined.items()
    assert name == "openclipart" and 0 <= result["f1"] <= 1
    assert result["negatives"] and all(
        item not in negatives and len(negatives) <= 3
        for item, negatives in result["negatives"].items()
    )
    json.dumps(mined)  # what the mining step writes
    stage = load_stage("content3")
    split = build_sources(stage, load_training_data(stage, synthetic=True))["openclipart"].items
    assert set(result["negatives"]) == {item.id for item in split}  # content3 trains on all of it
    third = train_stage(
        "tiny",
        "content3",
        tmp_path / "three",
        steps=2,
        batch_size=4,
        init=first.model_dir,
        inputs=StageInputs(negatives=mined),
    )
    assert math.isfinite(third.final_loss)
    with pytest.raises(ConfigError, match="trains without hard negatives"):
        mine_stage_negatives("tiny", "content2", first.model_dir)


def test_a_process_that_trained_hands_no_taken_port_to_the_ones_it_starts(tmp_path, monkeypatch):
    """The process group keeps listening on its rendezvous port; a pipeline step started from
    this process inherited it and failed with EADDRINUSE."""
    monkeypatch.delenv("MASTER_PORT", raising=False)
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    train_stage("tiny", "content2", tmp_path, steps=1, batch_size=4)
    assert "MASTER_PORT" not in os.environ and "MASTER_ADDR" not in os.environ


def test_old_checkpoints_are_pruned_and_an_unreadable_newest_falls_back(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="model_code.training.trainer")
    settings = dict(steps=4, batch_size=4, checkpoint_every=1, warmup_steps=1, keep_checkpoints=3)
    train_stage("tiny", "content2", tmp_path / "run", **settings)
    checkpoints = tmp_path / "run" / "checkpoints"
    kept = ["step2", "step3", "step4"]
    assert sorted(p.name for p in checkpoints.iterdir() if p.is_dir()) == kept
    for states in (checkpoints / "step4").glob("*model_states.pt"):
        states.write_bytes(states.read_bytes()[:100])  # a write cut short
    train_stage(
        "tiny",
        "content2",
        tmp_path / "run",
        resume=tmp_path / "run",
        steps=5,
        **{k: v for k, v in settings.items() if k != "steps"},
    )
    assert "step4 unreadable" in caplog.text and "at step 3" in caplog.text
    rows = _losses(tmp_path / "run")[1]
    assert [row["step"] for row in rows][-2:] == [4, 5]  # steps 4 and 5 trained again from 3


def test_an_export_replaces_the_model_folder_whole(tmp_path):
    train_stage("tiny", "content2", tmp_path, steps=1, batch_size=4)
    (tmp_path / "model" / "stale.txt").write_text("from an earlier export")
    result = train_stage("tiny", "content2", tmp_path, steps=1, batch_size=4)
    assert not (result.model_dir / "stale.txt").exists()
    assert load_pretrained(result.model_dir)[0] is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "metrics.jsonl", "model"]
