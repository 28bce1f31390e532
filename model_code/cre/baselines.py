"""Non-personalised baselines for the leave-last-out ranking protocol."""

import numpy as np
import pandas as pd

from model_code.cre.teacher import train_positive_pairs
from model_code.data.movielens import POSITIVE_RATING


def popularity_scores(
    interactions: pd.DataFrame, item_ids: list[str], positive_threshold: int = POSITIVE_RATING
) -> np.ndarray:
    """[m] count of train positives per item, in `item_ids` order (one ranking for all users)."""
    counts = train_positive_pairs(interactions, positive_threshold)["item_id"].value_counts()
    return counts.reindex(item_ids, fill_value=0).to_numpy(np.float64)
