"""User interest mining: Jaccard, the three modes, leakage, determinism and evaluation contexts."""

import numpy as np
import pandas as pd
import pytest

from model_code.cre import (
    InterestSequence,
    build_sequences,
    co_engagement_similarity,
    deduplicate,
    evaluation_contexts,
    mine_sequences,
    train_histories,
)
from model_code.data.movielens import load_movielens, prepare_movielens

SCIFI = ["s0", "s1", "s2", "s3", "s4"]
ROMANCE = ["r0", "r1", "r2", "r3", "r4"]
CATALOGUE = SCIFI + ROMANCE


def genre_vectors(noise: float = 0.05) -> np.ndarray:
    """Unit vectors: sci-fi items near one axis, romance items near another."""
    rng = np.random.default_rng(0)
    axes = np.array([[1.0, 0.0, 0.0]] * 5 + [[0.0, 1.0, 0.0]] * 5)
    vectors = axes + noise * rng.random((10, 3))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def content_matrix(noise: float = 0.05) -> np.ndarray:
    vectors = genre_vectors(noise)
    return vectors @ vectors.T


# One user alternating between the two interests.
MIXED = {"u": ["s0", "r0", "s1", "r1", "s2", "r2", "s3", "r3", "s4", "r4"]}


def test_jaccard_by_hand():
    histories = {"u1": ["a", "b"], "u2": ["a", "b", "c"], "u3": ["c", "a"]}
    sim = co_engagement_similarity(histories, ["a", "b", "c", "d"]).toarray()
    expected = np.array(
        [
            [1, 2 / 3, 2 / 3, 0],  # a: {1,2,3}; b: {1,2}; c: {2,3}
            [2 / 3, 1, 1 / 3, 0],
            [2 / 3, 1 / 3, 1, 0],
            [0, 0, 0, 0],  # d: nobody
        ]
    )
    np.testing.assert_allclose(sim, expected)


def test_unknown_item_is_refused():
    with pytest.raises(ValueError, match="'x' is not in item_ids"):
        co_engagement_similarity({"u": ["a", "x"]}, ["a", "b"])


def test_recent_is_the_last_window_items():
    history = [f"i{k}" for k in range(6)]
    mined = mine_sequences({"u": history}, history, window=3, mode="recent", min_length=2)
    assert [(s.context, s.target) for s in mined] == [
        (["i0", "i1"], "i2"),
        (["i0", "i1", "i2"], "i3"),
        (["i1", "i2", "i3"], "i4"),
        (["i2", "i3", "i4"], "i5"),
    ]
    assert {s.kind for s in mined} == {"recent"}


def test_single_interest_keeps_the_targets_cluster():
    mined = mine_sequences(MIXED, CATALOGUE, content_matrix(), window=3, mode="single")
    assert mined
    for sequence in mined:
        cluster = SCIFI if sequence.target in SCIFI else ROMANCE
        assert set(sequence.context) <= set(cluster)
        assert 2 <= len(sequence.context) <= 3


def test_single_interest_ties_go_to_the_more_recent():
    mined = mine_sequences(MIXED, CATALOGUE, content_matrix(noise=0.0), window=3, mode="single")
    assert (mined[-1].context, mined[-1].target) == (["r1", "r2", "r3"], "r4")


def test_single_interest_threshold_can_drop_everything():
    mined = mine_sequences(MIXED, CATALOGUE, content_matrix(), mode="single", threshold=1.0)
    assert mined == []


def test_multi_interest_splits_the_history_into_clusters():
    mined = mine_sequences(MIXED, CATALOGUE, content_matrix(), window=10, mode="multi")
    pairs = [(s.context, s.target) for s in mined]
    assert pairs == [
        (["s0", "s1"], "s2"),
        (["s0", "s1", "s2"], "s3"),
        (["s0", "s1", "s2", "s3"], "s4"),
        (["r0", "r1"], "r2"),
        (["r0", "r1", "r2"], "r3"),
        (["r0", "r1", "r2", "r3"], "r4"),
    ]


def test_modes_need_a_similarity_and_valid_lengths():
    with pytest.raises(ValueError, match="needs a similarity"):
        mine_sequences(MIXED, CATALOGUE, None, mode="single")
    with pytest.raises(ValueError, match="mode must be"):
        mine_sequences(MIXED, CATALOGUE, content_matrix(), mode="other")
    with pytest.raises(ValueError, match="min_length"):
        mine_sequences(MIXED, CATALOGUE, window=2, min_length=3, mode="recent")


def test_max_per_user_is_a_seeded_subset():
    history = {"u": CATALOGUE}
    every = mine_sequences(history, CATALOGUE, mode="recent")
    first = mine_sequences(history, CATALOGUE, mode="recent", max_per_user=3, seed=0)
    again = mine_sequences(history, CATALOGUE, mode="recent", max_per_user=3, seed=0)
    others = [
        mine_sequences(history, CATALOGUE, mode="recent", max_per_user=3, seed=s)
        for s in range(1, 6)
    ]
    assert first == again and len(first) == 3
    assert all(sequence in every for sequence in first)
    assert [every.index(s) for s in first] == sorted(every.index(s) for s in first)
    assert any(other != first for other in others)


def test_build_sequences_labels_and_deduplicates():
    mined = build_sequences(MIXED, CATALOGUE, content_vectors=genre_vectors(), window=3)
    kinds = {s.kind for s in mined}
    assert {"recent", "content-single", "content-multi"} <= kinds
    keys = [(s.user_id, tuple(s.context), s.target) for s in mined]
    assert len(keys) == len(set(keys))
    assert mined == build_sequences(MIXED, CATALOGUE, content_vectors=genre_vectors(), window=3)


def test_build_sequences_needs_content_vectors_for_content():
    with pytest.raises(ValueError, match="content_vectors"):
        build_sequences(MIXED, CATALOGUE, sources=("content",))


def test_deduplicate_keeps_the_first_kind():
    a = InterestSequence("u", ["x", "y"], "z", "recent")
    b = InterestSequence("u", ["x", "y"], "z", "collab-single")
    c = InterestSequence("v", ["x", "y"], "z", "collab-single")
    assert deduplicate([a, b, c]) == [a, c]


@pytest.fixture(scope="module")
def movielens(tmp_path_factory):
    root = tmp_path_factory.mktemp("movielens")
    prepare_movielens(out_dir=root)
    return load_movielens(root=root)


def test_real_sequences_never_leak_held_out_items(movielens):
    sequences = movielens["sequences"].head(150)
    items = movielens["items"]
    genres = sorted({g for listed in items["genres"] for g in listed})
    vectors = np.array([[g in listed for g in genres] for listed in items["genres"]], float) + 0.01
    histories = train_histories(sequences)
    mined = build_sequences(histories, items["item_id"].tolist(), content_vectors=vectors)
    assert {s.kind for s in mined} == {
        "recent",
        "content-single",
        "content-multi",
        "collab-single",
        "collab-multi",
    }
    held_out = sequences.set_index("user_id")[["validation_item", "test_item"]]
    for sequence in mined:
        history = histories[sequence.user_id]
        assert sequence.target not in held_out.loc[sequence.user_id].tolist()
        positions = [history.index(item) for item in [*sequence.context, sequence.target]]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        assert 2 <= len(sequence.context) <= 10


def test_evaluation_contexts():
    sequences = pd.DataFrame(
        {
            "user_id": ["u1", "u2"],
            "history": [["a", "b", "c", "d"], ["e"]],
            "validation_item": ["v1", "v2"],
            "test_item": ["t1", "t2"],
        }
    )
    validation = evaluation_contexts(sequences, window=3)
    test = evaluation_contexts(sequences, window=3, split="test")
    assert validation == [("u1", ["b", "c", "d"], "v1"), ("u2", ["e"], "v2")]
    assert test == [("u1", ["c", "d", "v1"], "t1"), ("u2", ["e", "v2"], "t2")]
    with pytest.raises(ValueError, match="split"):
        evaluation_contexts(sequences, split="train")
