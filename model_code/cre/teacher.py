"""The collaborative teacher for ID-to-item: BPR matrix factorisation on train positives only.

Each item gets ONE learned ID embedding (the report allows "one or several per item"; several are
not implemented). Only rows with `split == "train"` and a rating at or above the positive threshold
are fitted; validation and test rows are never read for training or for negative sampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from model_code.data.movielens import POSITIVE_RATING


@dataclass(frozen=True)
class TeacherConfig:
    """BPR hyper-parameters (defaults tuned on MovieLens-100K validation HR@10)."""

    dim: int = 64
    epochs: int = 15
    lr: float = 0.02
    reg: float = 0.01  # L2 weight on the embeddings of each batch, per example
    negatives: int = 4  # sampled negatives per positive
    batch_size: int = 4096
    init_std: float = 0.1
    seed: int = 0


@dataclass
class IdTeacher:
    """Learned user and item ID embeddings; a user's score for an item is their dot product."""

    item_ids: list[str]
    item_vectors: np.ndarray  # [m, dim]
    user_ids: list[str]
    user_vectors: np.ndarray  # [u, dim]
    config: TeacherConfig = field(default_factory=TeacherConfig)

    @cached_property
    def item_index(self) -> dict[str, int]:
        """Row of each item id in `item_vectors`."""
        return {item: i for i, item in enumerate(self.item_ids)}

    @cached_property
    def user_index(self) -> dict[str, int]:
        """Row of each user id in `user_vectors`."""
        return {user: i for i, user in enumerate(self.user_ids)}

    def scores(self, user_index: int | np.ndarray) -> np.ndarray:
        """Scores of every item for one user ([m]) or for an array of user rows ([k, m])."""
        return self.user_vectors[user_index] @ self.item_vectors.T

    def score_matrix(self) -> np.ndarray:
        """Scores of every item for every user, [u, m]."""
        return self.user_vectors @ self.item_vectors.T

    def save(self, path: Path) -> None:
        """Write ids and vectors in `.npz` format to exactly `path` (no pickling)."""
        with Path(path).open("wb") as handle:  # a file object: numpy adds no suffix
            np.savez(
                handle,
                item_ids=np.array(self.item_ids, dtype=str),
                item_vectors=self.item_vectors,
                user_ids=np.array(self.user_ids, dtype=str),
                user_vectors=self.user_vectors,
            )

    @classmethod
    def load(cls, path: Path) -> IdTeacher:
        """Read a teacher written by `save` (the training config is not stored)."""
        with np.load(path, allow_pickle=False) as data:
            return cls(
                item_ids=data["item_ids"].tolist(),
                item_vectors=data["item_vectors"],
                user_ids=data["user_ids"].tolist(),
                user_vectors=data["user_vectors"],
            )


def train_positive_pairs(
    interactions: pd.DataFrame, positive_threshold: int = POSITIVE_RATING
) -> pd.DataFrame:
    """The (user_id, item_id) train positives; raises if any is also a held-out pair."""
    train = interactions[interactions["split"] == "train"]
    positives = train.loc[train["rating"] >= positive_threshold, ["user_id", "item_id"]]
    held_out = interactions.loc[interactions["split"] != "train", ["user_id", "item_id"]]
    leaked = positives.merge(held_out, on=["user_id", "item_id"])
    if not leaked.empty:
        raise ValueError(f"{len(leaked)} train positives are also validation/test pairs")
    return positives.drop_duplicates()


def train_bpr(
    interactions: pd.DataFrame,
    config: TeacherConfig | None = None,
    positive_threshold: int = POSITIVE_RATING,
    item_ids: list[str] | None = None,
) -> IdTeacher:
    """Fit BPR on train positives; negatives are uniform over items the user has no train row for.

    `item_ids` fixes the catalogue and its order (default: every item in `interactions`, sorted);
    rows for other items are ignored. Users are every user in `interactions`, sorted. Deterministic
    under `config.seed` for a given torch thread count; the global torch RNG and thread settings
    are left alone.
    """
    config = config or TeacherConfig()
    item_ids = list(item_ids) if item_ids is not None else sorted(interactions["item_id"].unique())
    user_ids = sorted(interactions["user_id"].unique())
    pairs, seen = _training_arrays(interactions, user_ids, item_ids, positive_threshold)
    user_emb, item_emb = _fit(pairs, seen, config)
    return IdTeacher(
        item_ids=item_ids,
        item_vectors=item_emb.detach().numpy().copy(),
        user_ids=user_ids,
        user_vectors=user_emb.detach().numpy().copy(),
        config=config,
    )


def train_catalogue_teacher(tables: dict, config: TeacherConfig | None = None) -> IdTeacher:
    """BPR over the whole MovieLens catalogue in the items table's order: the one teacher the
    pipeline step, the schedule and a stage trained on its own all fit."""
    return train_bpr(tables["interactions"], config, item_ids=list(tables["items"]["item_id"]))


def _training_arrays(
    interactions: pd.DataFrame, user_ids: list[str], item_ids: list[str], positive_threshold: int
) -> tuple[np.ndarray, np.ndarray]:
    """[n, 2] (user row, item row) train positives and the [u, m] bool mask of train rows."""
    users = {user: u for u, user in enumerate(user_ids)}
    items = {item: i for i, item in enumerate(item_ids)}
    positives = train_positive_pairs(interactions, positive_threshold)
    positives = positives[positives["item_id"].isin(items)]
    pairs = np.stack(
        [positives["user_id"].map(users).to_numpy(), positives["item_id"].map(items).to_numpy()], 1
    )
    train = interactions[(interactions["split"] == "train") & interactions["item_id"].isin(items)]
    seen = np.zeros((len(user_ids), len(item_ids)), dtype=bool)
    seen[train["user_id"].map(users).to_numpy(), train["item_id"].map(items).to_numpy()] = True
    if seen.all(axis=1).any():
        raise ValueError("a user has a train row for every item: no negative can be sampled")
    return pairs, seen


def _fit(
    pairs: np.ndarray, seen: np.ndarray, config: TeacherConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adam on the BPR loss over shuffled mini-batches of positive pairs; returns the two tables."""
    generator = torch.Generator().manual_seed(config.seed)
    user_emb = _embedding(seen.shape[0], config, generator)
    item_emb = _embedding(seen.shape[1], config, generator)
    optimizer = torch.optim.Adam([user_emb, item_emb], lr=config.lr)
    rng = np.random.default_rng(config.seed)
    for _ in range(config.epochs):
        shuffled = pairs[rng.permutation(len(pairs))]
        for batch in np.array_split(shuffled, max(1, math.ceil(len(pairs) / config.batch_size))):
            negatives = _sample_negatives(batch[:, 0], seen, config.negatives, rng)
            loss = _bpr_loss(user_emb, item_emb, batch[:, 0], batch[:, 1], negatives, config)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return user_emb, item_emb


def _embedding(rows: int, config: TeacherConfig, generator: torch.Generator) -> torch.Tensor:
    """A [rows, dim] trainable table drawn from N(0, init_std^2) with the given generator."""
    table = torch.empty(rows, config.dim)
    torch.nn.init.normal_(table, std=config.init_std, generator=generator)
    return table.requires_grad_()


def _sample_negatives(
    users: np.ndarray, seen: np.ndarray, count: int, rng: np.random.Generator
) -> np.ndarray:
    """[len(users), count] uniform item rows, resampled until none is one the user has seen."""
    users = np.repeat(users[:, None], count, axis=1)
    negatives = rng.integers(seen.shape[1], size=users.shape)
    clash = seen[users, negatives]
    while clash.any():
        negatives[clash] = rng.integers(seen.shape[1], size=int(clash.sum()))
        clash = seen[users, negatives]
    return negatives


def _bpr_loss(
    user_emb: torch.Tensor,
    item_emb: torch.Tensor,
    users: np.ndarray,
    positives: np.ndarray,
    negatives: np.ndarray,
    config: TeacherConfig,
) -> torch.Tensor:
    """Mean -log sigmoid(x_ui - x_uj) over sampled negatives, plus L2 on the batch embeddings."""
    u = user_emb[torch.from_numpy(users)]
    i = item_emb[torch.from_numpy(positives)]
    j = item_emb[torch.from_numpy(negatives)]
    margin = (u * i).sum(-1, keepdim=True) - torch.einsum("bd,bkd->bk", u, j)
    penalty = u.pow(2).sum(-1) + i.pow(2).sum(-1) + j.pow(2).sum(-1).mean(-1)
    return -F.logsigmoid(margin).mean() + config.reg * penalty.mean()
