"""The BPR teacher: train rows only, determinism, persistence, and quality on real MovieLens."""

import numpy as np
import pandas as pd
import pytest
import torch

from model_code.cre import IdTeacher, TeacherConfig, popularity_scores, train_bpr
from model_code.cre.teacher import _sample_negatives
from model_code.data.movielens import load_movielens, prepare_movielens

SMALL = TeacherConfig(dim=8, epochs=30, lr=0.05, negatives=2, batch_size=16, seed=0)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: fast on a busy 2-core machine; the caller's setting is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def two_tastes() -> pd.DataFrame:
    """Users u0-u5 like items a0-a5 and users u6-u11 like b0-b5; each user misses two of theirs.

    Every user also has a validation and a test row on an item of their own taste.
    """
    rows = []
    for u in range(12):
        taste = "a" if u < 6 else "b"
        liked = [f"{taste}{(u + k) % 6}" for k in range(4)]
        rows += [(f"u{u}", item, 5, t, "train") for t, item in enumerate(liked)]
        rows += [(f"u{u}", f"{taste}{(u + 4) % 6}", 5, 10, "validation")]
        rows += [(f"u{u}", f"{taste}{(u + 5) % 6}", 5, 11, "test")]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp", "split"])


def test_learns_the_two_tastes_for_unseen_items():
    frame = two_tastes()
    teacher = train_bpr(frame, SMALL)
    held_out = frame[frame["split"] != "train"]
    for row in held_out.itertuples():
        scores = teacher.scores(teacher.user_index[row.user_id])
        other = "b" if row.item_id.startswith("a") else "a"
        others = [teacher.item_index[f"{other}{k}"] for k in range(6)]
        assert scores[teacher.item_index[row.item_id]] > scores[others].max()


def test_shapes_and_indices():
    teacher = train_bpr(two_tastes(), SMALL)
    assert teacher.item_ids == sorted(f"{t}{k}" for t in "ab" for k in range(6))
    assert teacher.item_vectors.shape == (12, 8)
    assert teacher.user_vectors.shape == (12, 8)
    assert teacher.score_matrix().shape == (12, 12)
    np.testing.assert_allclose(teacher.scores(3), teacher.score_matrix()[3], rtol=1e-6)
    np.testing.assert_allclose(teacher.scores(np.array([0, 5])), teacher.score_matrix()[[0, 5]])
    assert teacher.item_ids[teacher.item_index["b2"]] == "b2"


def test_catalogue_order_is_kept():
    catalogue = ["z"] + [f"{t}{k}" for t in "ba" for k in range(6)]
    teacher = train_bpr(two_tastes(), SMALL, item_ids=catalogue)
    assert teacher.item_ids == catalogue
    assert teacher.item_vectors.shape == (13, 8)


def test_held_out_rows_do_not_change_the_teacher():
    frame = two_tastes()
    moved = frame.copy()
    held_out = moved["split"] != "train"
    other_taste = np.where(moved["user_id"].str[1:].astype(int) < 6, "b0", "a0")
    moved.loc[held_out, "item_id"] = other_taste[held_out]
    moved.loc[held_out, "rating"] = 1
    items = sorted(frame["item_id"].unique())
    first, second = train_bpr(frame, SMALL, item_ids=items), train_bpr(moved, SMALL, item_ids=items)
    np.testing.assert_array_equal(first.item_vectors, second.item_vectors)
    np.testing.assert_array_equal(first.user_vectors, second.user_vectors)


def test_a_train_positive_that_is_also_held_out_is_refused():
    frame = two_tastes()
    leak = frame[frame["split"] == "test"].head(1).assign(split="train")
    with pytest.raises(ValueError, match="validation/test"):
        train_bpr(pd.concat([frame, leak]), SMALL)


def test_deterministic_under_the_seed():
    frame = two_tastes()
    first, again = train_bpr(frame, SMALL), train_bpr(frame, SMALL)
    other = train_bpr(frame, TeacherConfig(**{**SMALL.__dict__, "seed": 1}))
    np.testing.assert_array_equal(first.item_vectors, again.item_vectors)
    assert not np.array_equal(first.item_vectors, other.item_vectors)


def test_negatives_avoid_every_item_the_user_has_seen():
    seen = np.zeros((2, 5), dtype=bool)
    seen[0, :4] = True
    seen[1, [0, 2]] = True
    users = np.array([0, 1] * 50)
    negatives = _sample_negatives(users, seen, 3, np.random.default_rng(0))
    assert negatives.shape == (100, 3)
    assert (negatives[users == 0] == 4).all()
    assert not seen[users[:, None], negatives].any()


def test_save_and_load_round_trip(tmp_path):
    teacher = train_bpr(two_tastes(), TeacherConfig(dim=4, epochs=1))
    teacher.save(tmp_path / "teacher.npz")
    loaded = IdTeacher.load(tmp_path / "teacher.npz")
    assert loaded.item_ids == teacher.item_ids and loaded.user_ids == teacher.user_ids
    np.testing.assert_array_equal(loaded.item_vectors, teacher.item_vectors)
    np.testing.assert_array_equal(loaded.user_vectors, teacher.user_vectors)


def hit_rate_at_10(scores: np.ndarray, sequences: pd.DataFrame, items: list[str]) -> float:
    """HR@10 of `validation_item` over all items, each user's train positives left out.

    `scores` is [users, items] in `sequences` order.
    """
    index = {item: i for i, item in enumerate(items)}
    hits = []
    for row, user in zip(scores, sequences.itertuples(), strict=True):
        masked = row.astype(np.float64)
        masked[[index[item] for item in user.history]] = -np.inf
        hits.append((masked > masked[index[user.validation_item]]).sum() < 10)
    return float(np.mean(hits))


def test_beats_popularity_on_real_movielens(tmp_path):
    prepare_movielens(out_dir=tmp_path)
    tables = load_movielens(root=tmp_path)
    interactions, sequences = tables["interactions"], tables["sequences"]
    items = tables["items"]["item_id"].tolist()
    config = TeacherConfig(dim=32, epochs=10, negatives=2, batch_size=2048)
    teacher = train_bpr(interactions, config, item_ids=items)
    rows = np.array([teacher.user_index[user] for user in sequences["user_id"]])
    popularity = np.tile(popularity_scores(interactions, items), (len(sequences), 1))
    bpr_hr = hit_rate_at_10(teacher.scores(rows), sequences, items)
    popularity_hr = hit_rate_at_10(popularity, sequences, items)
    assert 0.03 < popularity_hr < 0.12
    assert bpr_hr > popularity_hr + 0.015
