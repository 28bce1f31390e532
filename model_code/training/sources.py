"""Training data sources: each data set's records and how a batch of them is drawn.

Every source draws a whole batch from its own records (stochastic specialization picks the source).
Sources read prepared tables (or their synthetic look-alikes for tests), never files of their own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from model_code.config import ConfigError
from model_code.data.catalogue import caption_of, drawing_of, movielens_items, openclipart_items
from model_code.items import Item, TrainingPair
from model_code.training.stages import DatasetConfig, StageConfig


@dataclass
class TrainingData:
    """What the sources read: prepared tables, mined sequences and the ID teacher."""

    openclipart: pd.DataFrame | None = None
    movielens: dict[str, pd.DataFrame] | None = None
    sequences: list[tuple[list[str], str]] | None = None  # (context item ids, target item id)
    teacher_ids: list[str] | None = None
    teacher_vectors: np.ndarray | None = None


@dataclass
class PairBatch:
    dataset: DatasetConfig
    pairs: list[TrainingPair]
    negatives: list[list[Item]] = field(default_factory=list)
    anchors: torch.Tensor | None = None  # [B, 2, D] query and target as the start model embeds them


@dataclass
class SequenceBatch:
    dataset: DatasetConfig
    contexts: list[list[Item]]
    targets: list[Item]


@dataclass
class DistillBatch:
    """Items and the teacher's whole catalogue: `rows` are the items' rows in `catalogue`."""

    dataset: DatasetConfig
    items: list[Item]
    catalogue: torch.Tensor
    rows: torch.Tensor


class OpenclipartSource:
    """Caption/drawing records as self-pairs: patterns pick the text and the vision view."""

    def __init__(self, config: DatasetConfig, data: TrainingData):
        frame = _required(data.openclipart, config, "openclipart pairs")
        frame = frame[frame["split"] == config.split]
        min_keywords = config.options.get("min_keywords", 0)
        frame = frame[frame["keywords"].map(len) >= min_keywords]
        self.config = config
        self.items = _non_empty(openclipart_items(frame), config)
        self.negatives: dict[str, list[Item]] = {}
        self.anchors: torch.Tensor | None = None  # [items, 2, D] caption, drawing: anchor targets

    def anchor_views(self) -> tuple[list[Item], list[Item]]:
        """What the anchor loss holds: each record's caption (query) and drawing (target)."""
        return [caption_of(i) for i in self.items], [drawing_of(i) for i in self.items]

    def batch(self, rng: random.Random, size: int) -> PairBatch:
        rows = rng.sample(range(len(self.items)), min(size, len(self.items)))
        chosen = [self.items[row] for row in rows]
        pairs = [TrainingPair(self.config.name, item, item) for item in chosen]
        negatives = [self.negatives.get(item.id, []) for item in chosen] if self.negatives else []
        anchors = None if self.anchors is None else self.anchors[rows]
        return PairBatch(self.config, pairs, negatives, anchors)


class OpenclipartGroupsSource:
    """Two drawings of one title group (near-duplicates) as an omni->omni pair."""

    def __init__(self, config: DatasetConfig, data: TrainingData):
        frame = _required(data.openclipart, config, "openclipart pairs")
        frame = frame[frame["split"] == config.split]
        items = dict(zip(frame["id"], openclipart_items(frame), strict=True))
        groups = frame.groupby("group")["id"].apply(list)
        self.config = config
        self.groups = _non_empty(
            [[items[i] for i in ids] for ids in groups if len(ids) > 1], config
        )

    def batch(self, rng: random.Random, size: int) -> PairBatch:
        chosen = rng.sample(self.groups, min(size, len(self.groups)))
        pairs = [TrainingPair(self.config.name, *rng.sample(group, 2)) for group in chosen]
        return PairBatch(self.config, pairs)


class MovielensItemsSource:
    """Movies as self-pairs, for the anchor loss alone: they hold the catalogue's text where the
    stage's starting model put it while other data sets train the shared fuser."""

    def __init__(self, config: DatasetConfig, data: TrainingData):
        tables = _required(data.movielens, config, "MovieLens tables")
        self.config = config
        self.items = _non_empty(movielens_items(tables["items"]), config)
        self.anchors: torch.Tensor | None = None  # [items, 2, D] the movie as query and target

    def anchor_views(self) -> tuple[list[Item], list[Item]]:
        return self.items, self.items

    def batch(self, rng: random.Random, size: int) -> PairBatch:
        rows = rng.sample(range(len(self.items)), min(size, len(self.items)))
        pairs = [TrainingPair(self.config.name, self.items[r], self.items[r]) for r in rows]
        anchors = None if self.anchors is None else self.anchors[rows]
        return PairBatch(self.config, pairs, anchors=anchors)


class MovielensGenresSource:
    """Movie pairs graded by the Jaccard overlap of their genres (for CoSENT)."""

    def __init__(self, config: DatasetConfig, data: TrainingData):
        tables = _required(data.movielens, config, "MovieLens tables")
        self.config = config
        self.items = _non_empty([i for i in movielens_items(tables["items"]) if i.tags], config)

    def batch(self, rng: random.Random, size: int) -> PairBatch:
        anchors = rng.sample(self.items, min(size, len(self.items)))
        pairs = []
        for anchor in anchors:
            partner = rng.choice(self.items)
            overlap = len(set(anchor.tags) & set(partner.tags))
            score = overlap / len(set(anchor.tags) | set(partner.tags))
            pairs.append(TrainingPair(self.config.name, anchor, partner, score))
        return PairBatch(self.config, pairs)


class MovielensSequencesSource:
    """Mined user-interest sequences: recent positive items -> the next positive item."""

    def __init__(self, config: DatasetConfig, data: TrainingData):
        tables = _required(data.movielens, config, "MovieLens tables")
        self.config = config
        self.items = {item.id: item for item in movielens_items(tables["items"])}
        self.sequences = _non_empty(list(_required(data.sequences, config, "sequences")), config)

    def batch(self, rng: random.Random, size: int) -> SequenceBatch:
        chosen = rng.sample(self.sequences, min(size, len(self.sequences)))
        contexts = [[self.items[i] for i in context] for context, _ in chosen]
        return SequenceBatch(self.config, contexts, [self.items[t] for _, t in chosen])


class MovielensId2ItemSource:
    """Movies with the collaborative teacher's item-ID vectors (ID -> item distillation)."""

    def __init__(self, config: DatasetConfig, data: TrainingData):
        tables = _required(data.movielens, config, "MovieLens tables")
        vectors = _required(data.teacher_vectors, config, "ID teacher vectors")
        index = {item_id: row for row, item_id in enumerate(data.teacher_ids or [])}
        self.config = config
        self.items = _non_empty(
            [item for item in movielens_items(tables["items"]) if item.id in index], config
        )
        rows = [index[item.id] for item in self.items]
        self.catalogue = torch.from_numpy(np.asarray(vectors, dtype=np.float32)[rows])

    def batch(self, rng: random.Random, size: int) -> DistillBatch:
        chosen = rng.sample(range(len(self.items)), min(size, len(self.items)))
        items = [self.items[i] for i in chosen]
        return DistillBatch(self.config, items, self.catalogue, torch.tensor(chosen))


SOURCE_CLASSES = {
    "openclipart": OpenclipartSource,
    "openclipart-groups": OpenclipartGroupsSource,
    "movielens-items": MovielensItemsSource,
    "movielens-genres": MovielensGenresSource,
    "movielens-sequences": MovielensSequencesSource,
    "movielens-id2item": MovielensId2ItemSource,
}


def build_sources(stage: StageConfig, data: TrainingData) -> dict[str, object]:
    """One source per data set of the stage; raises ConfigError for missing or empty data."""
    return {d.name: SOURCE_CLASSES[d.source](d, data) for d in stage.datasets}


def _required(value, config: DatasetConfig, what: str):
    if value is None:
        raise ConfigError(f"data set {config.name!r} needs {what}, which were not loaded")
    return value


def _non_empty(records: list, config: DatasetConfig) -> list:
    if len(records) < 2:
        raise ConfigError(
            f"data set {config.name!r} has {len(records)} record(s) after filtering; "
            "a contrastive batch needs at least 2"
        )
    return records
