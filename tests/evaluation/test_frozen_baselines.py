"""The frozen MovieLens baseline's mechanics (the real MiniLM runs in the evaluate step's test)."""

import numpy as np
import pytest

from model_code.data.synthetic import synthetic_movielens
from model_code.evaluation.baselines import movie_texts, sentence_encoder_next_item

pytestmark = pytest.mark.numeric_paths  # make test runs these again under other CPU kernels


def genre_encoder(texts: list[str]) -> np.ndarray:
    """A sentence encoder that knows only the genre: one axis per genre."""
    genres = ("Action", "Comedy", "Drama", "Sci-Fi")
    return np.array([[float(text.endswith(g)) for g in genres] for text in texts])


def test_movie_texts_are_title_year_and_genres():
    ids, texts = movie_texts(synthetic_movielens()["items"].head(2))
    assert ids == ["1", "2"] and texts == [
        "Movie 1 Action (1990) Action",
        "Movie 2 Comedy (1991) Comedy",
    ]


def test_users_are_the_mean_of_their_latest_items():
    tables = synthetic_movielens(n_users=12, n_items=40)
    # each user likes one genre; 10 movies per genre, some seen: the held-out one is in the top 10
    report = sentence_encoder_next_item(genre_encoder, tables, "test", ks=(10,))
    assert report["hr@10"] == 1.0
    shuffled = sentence_encoder_next_item(random_encoder, tables, "test")
    assert shuffled["hr@10"] < 1.0


def random_encoder(texts: list[str]) -> np.ndarray:
    vectors = np.random.default_rng(0).normal(size=(len(texts), 4))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
