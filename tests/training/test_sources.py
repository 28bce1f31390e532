"""Training sources: what a batch carries for the ID-to-item and anchor losses."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from model_code.config import ConfigError
from model_code.cre.teacher import train_catalogue_teacher
from model_code.data.catalogue import caption_of, drawing_of
from model_code.embed import Embedder
from model_code.factory import create_model
from model_code.training.run import attach_anchors, attach_teacher, load_training_data
from model_code.training.sources import MovielensId2ItemSource, build_sources
from model_code.training.stages import load_stage
from model_code.training.task import SailTrainingTask


def test_id2item_batch_points_at_its_items_in_the_whole_catalogue():
    stage = load_stage("id2item")
    data = load_training_data(stage, synthetic=True)
    attach_teacher(data, None, seed=0)
    config = next(d for d in stage.datasets if d.source == "movielens-id2item")
    source = MovielensId2ItemSource(config, data)
    batch = source.batch(random.Random(0), 4)
    teacher = dict(zip(data.teacher_ids, data.teacher_vectors, strict=True))
    assert batch.catalogue.shape == (len(source.items), data.teacher_vectors.shape[1])
    for item, row in zip(batch.items, batch.rows.tolist(), strict=True):
        np.testing.assert_array_equal(batch.catalogue[row].numpy(), teacher[item.id])


def test_a_stage_on_its_own_fits_the_pipelines_teacher():
    stage = load_stage("id2item")
    data = load_training_data(stage, synthetic=True)
    attach_teacher(data, None, seed=0)
    teacher = train_catalogue_teacher(data.movielens)
    assert data.teacher_ids == list(data.movielens["items"]["item_id"]) == teacher.item_ids
    # two BPR fits in one process differ in the last float digits (about 3e-8 here)
    np.testing.assert_allclose(data.teacher_vectors, teacher.item_vectors, atol=1e-5)


def test_anchors_are_the_starting_models_captions_and_drawings():
    stage = load_stage("content2")
    stage.datasets[0].losses["anchor"] = 1.0
    sources = build_sources(stage, load_training_data(stage, synthetic=True))
    embedder = Embedder(*create_model("tiny"))
    attach_anchors(embedder, sources)
    source = sources["openclipart"]
    batch = source.batch(random.Random(1), 3)
    instructions = source.config.instructions
    captions = [caption_of(pair.query) for pair in batch.pairs]
    drawings = [drawing_of(pair.target) for pair in batch.pairs]
    queries = embedder.embed(captions, side="query", instruction=instructions["query"])
    targets = embedder.embed(drawings, instruction=instructions["target"])
    assert batch.anchors.shape == (3, 2, queries.vectors.shape[1])
    torch.testing.assert_close(batch.anchors[:, 0], torch.from_numpy(queries.vectors))
    torch.testing.assert_close(batch.anchors[:, 1], torch.from_numpy(targets.vectors))


def test_anchor_loss_needs_captions():
    stage = load_stage("id2item")
    stage.datasets[0].losses["anchor"] = 1.0  # movielens-id2item: movies, no captions
    data = load_training_data(stage, synthetic=True)
    attach_teacher(data, None, seed=0)
    with pytest.raises(ConfigError, match="anchor loss needs records paired with themselves"):
        attach_anchors(Embedder(*create_model("tiny")), build_sources(stage, data))


MOVIE_ANCHOR = {
    "name": "movielens-items",
    "source": "movielens-items",
    "weight": 1.0,
    "instructions": {"query": "Represent the movie.", "target": "Represent the movie."},
    "temperature": 0.05,
    "losses": {"anchor": 1.0},
    "patterns": ["text->text"],
}


def test_movie_anchors_are_the_starting_models_movies():
    stage = load_stage("content2", datasets=[MOVIE_ANCHOR])
    sources = build_sources(stage, load_training_data(stage, synthetic=True))
    embedder = Embedder(*create_model("tiny"))
    attach_anchors(embedder, sources)
    source = sources["movielens-items"]
    batch = source.batch(random.Random(2), 4)
    assert all(pair.query is pair.target and pair.query.title for pair in batch.pairs)
    movies = [pair.query for pair in batch.pairs]
    expected = embedder.embed(movies, side="query", instruction=source.config.instructions["query"])
    torch.testing.assert_close(batch.anchors[:, 0], torch.from_numpy(expected.vectors))
    torch.testing.assert_close(batch.anchors[:, 1], batch.anchors[:, 0])


def test_the_anchor_term_holds_the_query_and_the_target_alike():
    stage = load_stage("content2")
    stage.datasets[0].losses = {"anchor": 1.0}
    sources = build_sources(stage, load_training_data(stage, synthetic=True))
    model, processor = create_model("tiny")
    attach_anchors(Embedder(model, processor), sources)
    task = SailTrainingTask(model, processor, stage).eval()
    batch = sources["openclipart"].batch(random.Random(3), 4)
    with torch.no_grad():
        assert task(batch)[1]["anchor"].item() == pytest.approx(0.0, abs=1e-5)
        batch.anchors[:, 1] = -batch.anchors[:, 1]  # the drawings' anchors turned around
        assert task(batch)[1]["anchor"].item() == pytest.approx(1.0, abs=1e-5)


def test_synthetic_drawings_reuse_one_folder_under_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SAIL_CACHE_DIR", str(tmp_path))
    stage = load_stage("content1")
    first = load_training_data(stage, synthetic=True).openclipart["image"]
    again = load_training_data(stage, synthetic=True).openclipart["image"]
    assert list(first) == list(again)
    assert {Path(p).parent for p in first} == {tmp_path / "synthetic-openclipart"}
    assert not list(tmp_path.glob("synthetic-openclipart/.*"))  # no partial writes left behind
