"""Popularity: train positives per item, in catalogue order."""

import numpy as np
import pandas as pd

from model_code.cre import popularity_scores


def frame(*rows: tuple[str, str, int, str]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "split"])
    return table.assign(timestamp=range(len(table)))


def test_counts_train_positives_only():
    interactions = frame(
        ("u1", "a", 5, "train"),
        ("u2", "a", 4, "train"),
        ("u3", "a", 3, "train"),  # below the threshold
        ("u1", "b", 4, "train"),
        ("u2", "b", 5, "validation"),  # held out
        ("u3", "b", 5, "test"),  # held out
        ("u1", "c", 2, "train"),
    )
    scores = popularity_scores(interactions, ["c", "b", "a", "unseen"])
    np.testing.assert_array_equal(scores, [0.0, 1.0, 2.0, 0.0])


def test_threshold_is_configurable():
    interactions = frame(("u1", "a", 3, "train"), ("u2", "a", 5, "train"), ("u1", "b", 3, "train"))
    scores = popularity_scores(interactions, ["a", "b"], positive_threshold=3)
    np.testing.assert_array_equal(scores, [2.0, 1.0])
