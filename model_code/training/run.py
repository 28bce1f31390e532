"""Running one stage end to end: data, initial weights, mined negatives / sequences, teacher.

`train_stage` is what `sail train` and the pipeline's training components call. Each stage starts
from the previous stage's exported model (`init`), or from the preset for the first stage.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model_code.config import ConfigError
from model_code.data.catalogue import caption_of, drawing_of, movielens_items, openclipart_items
from model_code.embed import Embedder
from model_code.factory import create_model, load_pretrained
from model_code.paths import cache_dir, feature_cache_dir
from model_code.training.balancing import balance_weights
from model_code.training.callbacks import TrainingCallback
from model_code.training.hard_negatives import f1_optimal_threshold, mine_hard_negatives
from model_code.training.sources import (
    OpenclipartSource,
    PairBatch,
    SequenceBatch,
    TrainingData,
    build_sources,
)
from model_code.training.stages import StageConfig, load_stage
from model_code.training.task import SailTrainingTask
from model_code.training.trainer import HEADS_FILE, Trainer, TrainResult

logger = logging.getLogger(__name__)


@dataclass
class StageInputs:
    """Optional inputs a stage can be given instead of computing them itself."""

    teacher: Path | None = None  # an IdTeacher .npz (id2item)
    data: TrainingData | None = None  # already loaded tables (tests, the pipeline)
    negatives: dict[str, dict] | None = None  # from `mine_negatives` (a pipeline step)


def train_stage(
    preset: str,
    stage_name: str,
    out_dir: Path,
    steps: int | None = None,
    init: Path | None = None,
    resume: Path | None = None,
    synthetic: bool | None = None,
    inputs: StageInputs | None = None,
    callbacks: list[TrainingCallback] | None = None,
    **overrides,
) -> TrainResult:
    """Train one stage and export its model to `out_dir/model`."""
    stage = load_stage(stage_name, steps=steps, **overrides)
    inputs = inputs or StageInputs()
    synthetic = (preset == "tiny") if synthetic is None else synthetic
    torch.manual_seed(stage.seed)
    model, processor = starting_model(preset, init)
    data = inputs.data or load_training_data(stage, synthetic)
    embedder = Embedder(model, processor)  # the stage's starting model, for mining and balancing
    used = {d.source for d in stage.datasets}
    if "movielens-sequences" in used and data.sequences is None:
        data.sequences = mine_interest_sequences(embedder, data, stage.window)
    if "movielens-id2item" in used and data.teacher_ids is None:
        attach_teacher(data, inputs.teacher, stage.seed)
    sources = build_sources(stage, data)
    if stage.closed_form_init:
        fit_closed_form(
            embedder, sources[stage.closed_form_init], stage.ridge_alpha, stage.basis_whitening
        )
    attach_anchors(embedder, sources)
    if stage.hard_negatives:
        mined = inputs.negatives or mine_negatives(embedder, sources, stage)
        attach_negatives(sources, mined)
    teacher_dim = None if data.teacher_vectors is None else data.teacher_vectors.shape[1]
    task = SailTrainingTask(model, processor, stage, teacher_dim=teacher_dim)
    if init:
        load_heads(task, Path(init))
    weights = balanced_weights(embedder, sources, data, stage.seed) if stage.balance else None
    trainer = Trainer(task, sources, out_dir, callbacks, sampling_weights=weights)
    return trainer.fit(resume=resume)


def starting_model(preset: str, init: Path | None):
    """The previous stage's model (or the preset's) with its frozen tower features cached."""
    model, processor = load_pretrained(init, preset) if init else create_model(preset)
    model.cache_tower_features(feature_cache_dir())
    return model, processor


def fit_closed_form(
    embedder: Embedder, source, ridge_alpha: float, basis_whitening: float = 0.0
) -> None:
    """Fit the model's closed-form parts on a caption/drawing source, so that step 0 starts from
    them: the vision shortcut (ridge from the drawings' mean tower features to the captions as
    the starting model embeds them) and the output basis (centre and principal directions of
    those captions, partly whitened by `basis_whitening`). A model without either part is left
    as it is."""
    model = embedder.model
    if model.vision.shortcut is None and model.output_basis is None:
        logger.info("the model has no closed-form parts; nothing to fit")
        return
    if not isinstance(source, OpenclipartSource):
        raise ConfigError(
            f"closed_form_init needs caption/drawing pairs, not {source.config.name!r}"
        )
    if model.output_basis is not None:
        model.output_basis.reset()  # the ridge maps into the space before the basis
    captions = source_queries(embedder, source)
    if model.vision.shortcut is not None:
        fit_vision_shortcut(embedder, source.items, captions, ridge_alpha)
    if model.output_basis is not None:
        model.output_basis.fit(captions, basis_whitening)
    logger.info("closed-form parts fitted on %d pairs of %s", len(captions), source.config.name)


def attach_anchors(embedder: Embedder, sources: dict) -> None:
    """Give each source whose data set has the anchor loss its records' query and target views as
    the stage's starting model embeds them (after any closed-form fit): the anchor's targets,
    [records, 2, D]."""
    for name, source in sources.items():
        if "anchor" not in source.config.losses:
            continue
        if not hasattr(source, "anchor_views"):
            raise ConfigError(
                f"the anchor loss needs records paired with themselves (openclipart, "
                f"movielens-items), not {name!r}"
            )
        _, targets = source.anchor_views()
        instruction = source.config.instructions["target"]
        sides = [
            source_queries(embedder, source),
            embedder.embed(targets, instruction=instruction, progress=False).vectors,
        ]
        source.anchors = torch.from_numpy(np.stack(sides, axis=1))


def source_queries(embedder: Embedder, source) -> np.ndarray:
    """The query view of the source's self-paired records as vectors (an openclipart source's
    captions), under the data set's query instruction."""
    instruction = source.config.instructions["query"]
    queries, _ = source.anchor_views()
    return embedder.embed(queries, side="query", instruction=instruction, progress=False).vectors


def fit_vision_shortcut(embedder: Embedder, items: list, captions, alpha: float) -> None:
    """Set the vision shortcut to the ridge map from the items' drawings (mean tower features)
    to their `captions` (unit vectors from the model before its output basis)."""
    from model_code.evaluation.suite import image_features

    embedder.model.vision.shortcut.set_ridge(image_features(embedder, items), captions, alpha)


def mine_stage_negatives(
    preset: str,
    stage_name: str,
    init: Path | None,
    synthetic: bool | None = None,
    data: TrainingData | None = None,
) -> dict[str, dict]:
    """The hard negatives `stage_name` trains on, mined as a step of its own (the pipeline's)."""
    stage = load_stage(stage_name)
    if not stage.hard_negatives:
        raise ConfigError(f"stage {stage_name!r} trains without hard negatives")
    synthetic = (preset == "tiny") if synthetic is None else synthetic
    embedder = Embedder(*starting_model(preset, init))
    sources = build_sources(stage, data or load_training_data(stage, synthetic))
    return mine_negatives(embedder, sources, stage)


def load_training_data(stage: StageConfig, synthetic: bool) -> TrainingData:
    """The prepared tables the stage's data sets read (synthetic look-alikes for tests)."""
    from model_code.data import synthetic as fake
    from model_code.data.movielens import load_movielens
    from model_code.data.openclipart import load_openclipart

    sources = {d.source for d in stage.datasets}
    data = TrainingData()
    if any(s.startswith("openclipart") for s in sources):
        if synthetic:
            # Deterministic drawings: one shared folder, not a new temporary one per run.
            data.openclipart = fake.synthetic_openclipart(80, cache_dir() / "synthetic-openclipart")
        else:
            data.openclipart = load_openclipart()
    if any(s.startswith("movielens") for s in sources):
        data.movielens = fake.synthetic_movielens() if synthetic else load_movielens()
    return data


def mine_interest_sequences(embedder: Embedder, data: TrainingData, window: int) -> list:
    """User-interest sequences (context items -> next item) from the training histories."""
    from model_code.cre.interest_mining import (
        build_sequences,
        co_engagement_similarity,
        train_histories,
    )
    from model_code.evaluation.suite import movie_vectors

    if data.movielens is None:
        raise ConfigError("sequence stages need the MovieLens tables")
    histories = train_histories(data.movielens["sequences"])
    item_ids, vectors = movie_vectors(embedder, data.movielens["items"])
    sequences = build_sequences(
        histories,
        item_ids,
        content_vectors=vectors,
        co_engagement=co_engagement_similarity(histories, item_ids),
        window=window,
    )
    logger.info("mined %d interest sequences", len(sequences))
    return [(list(s.context), s.target) for s in sequences]


def attach_teacher(data: TrainingData, path: Path | None, seed: int) -> None:
    """The ID teacher's item vectors: loaded from `path`, or trained now (BPR, train rows only)."""
    from model_code.cre.teacher import IdTeacher, TeacherConfig, train_catalogue_teacher

    if path is not None:
        teacher = IdTeacher.load(path)
    else:
        teacher = train_catalogue_teacher(data.movielens, TeacherConfig(seed=seed))
    data.teacher_ids, data.teacher_vectors = list(teacher.item_ids), teacher.item_vectors


def mine_negatives(embedder: Embedder, sources: dict, stage: StageConfig) -> dict[str, dict]:
    """Each openclipart source's hard negatives, mined with the stage's starting model.

    Positives are the true caption->drawing scores; the F1-optimal threshold separates them from
    the other pairs; candidates above it are dropped as false negatives and the hardest ones at or
    below it become the negatives. Mining covers the whole training split, which content3 then
    trains on (a data set's `mining_pool` option caps it at a random sample, and the stage then
    trains on that sample). The result holds item ids only (JSON-ready), so mining can run as a
    step of its own.
    """
    mined_sources = {}
    for name, source in sources.items():
        if not isinstance(source, OpenclipartSource):
            continue
        pool_size = source.config.options.get("mining_pool") or len(source.items)
        pool = random.Random(stage.seed).sample(source.items, min(pool_size, len(source.items)))
        query = embedder.embed(
            [caption_of(item) for item in pool],
            side="query",
            instruction=source.config.instructions["query"],
        )
        target = embedder.embed(
            [drawing_of(item) for item in pool], instruction=source.config.instructions["target"]
        )
        similarity = query.vectors @ target.vectors.T
        positives = np.diag(similarity)
        negatives = similarity[~np.eye(len(pool), dtype=bool)]
        threshold, f1 = f1_optimal_threshold(positives, negatives)
        mined = mine_hard_negatives(
            similarity, np.arange(len(pool)), threshold, stage.hard_negatives
        )
        mined_sources[name] = {
            "threshold": float(threshold),
            "f1": float(f1),
            "false_negatives": int(mined.total_false_negatives),
            "negatives": {
                item.id: [pool[j].id for j, keep in zip(row, ok, strict=True) if keep]
                for item, row, ok in zip(pool, mined.indices, mined.mask, strict=True)
            },
        }
        logger.info(
            "mined %s: threshold %.3f (F1 %.3f), %d false negatives dropped",
            name,
            threshold,
            f1,
            mined.total_false_negatives,
        )
    return mined_sources


def attach_negatives(sources: dict, mined: dict[str, dict]) -> None:
    """Restrict each mined source to its mining pool and give each record its negatives."""
    for name, result in mined.items():
        if name not in sources:
            raise ConfigError(f"mined negatives name data set {name!r}, not in this stage")
        source = sources[name]
        by_id = {item.id: item for item in source.items}
        unknown = [i for i in result["negatives"] if i not in by_id]
        if unknown:
            raise ConfigError(f"mined negatives for {name!r} name unknown items, e.g. {unknown[0]}")
        source.items = [by_id[i] for i in result["negatives"]]
        source.negatives = {
            i: [drawing_of(by_id[n]) for n in negatives]
            for i, negatives in result["negatives"].items()
        }


def balanced_weights(
    embedder: Embedder, sources: dict, data: TrainingData, seed: int, sample: int = 96
) -> dict[str, float]:
    """Sampling weights by adaptive multi-source balancing: the configured weights, scaled by how
    close a sample of each training source lies to the evaluation sets (the validation splits),
    all embedded with the stage's starting model."""
    rng = random.Random(seed)
    train_sets = {
        name: embedder.embed(_source_items(source.batch(rng, sample)), progress=False).vectors
        for name, source in sources.items()
    }
    eval_sets = {
        name: embedder.embed(items, progress=False).vectors
        for name, items in _evaluation_items(data, rng, sample).items()
    }
    configured = {name: source.config.weight for name, source in sources.items()}
    result = balance_weights(train_sets, eval_sets, seed=seed, priors=configured)
    logger.info("balanced sampling weights: %s", result.weights)
    return result.weights


def _source_items(batch) -> list:
    if isinstance(batch, PairBatch):
        return [pair.target for pair in batch.pairs]
    if isinstance(batch, SequenceBatch):
        return batch.targets
    return batch.items


def _evaluation_items(data: TrainingData, rng: random.Random, sample: int) -> dict[str, list]:
    sets = {}
    if data.openclipart is not None:
        frame = data.openclipart[data.openclipart["split"] == "validation"]
        sets["openclipart-validation"] = openclipart_items(frame)
    if data.movielens is not None:
        wanted = set(data.movielens["sequences"]["validation_item"])
        items = movielens_items(data.movielens["items"])
        sets["movielens-validation"] = [item for item in items if item.id in wanted]
    return {
        name: rng.sample(items, min(sample, len(items))) for name, items in sets.items() if items
    }


def load_heads(task: SailTrainingTask, folder: Path) -> None:
    """Carry the previous stage's heads over where they fit: temperatures of data sets this
    stage shares, the late-fusion gate, and the ID projection when its shape matches."""
    path = folder / HEADS_FILE
    if not path.is_file():
        return
    heads = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data
    current = task.temperatures.state_dict()
    shared = {k: v for k, v in heads["temperatures"].items() if k in current}
    task.temperatures.load_state_dict(shared, strict=False)
    task.gate.load_state_dict(heads["gate"])
    projection, target = heads.get("teacher_projection"), task.teacher_projection
    if (
        projection is not None
        and target is not None
        and projection["weight"].shape == target.weight.shape
    ):
        target.load_state_dict(projection)
