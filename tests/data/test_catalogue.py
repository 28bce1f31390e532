import pandas as pd
import pytest

from model_code.data.catalogue import (
    catalogue_items,
    movielens_items,
    openclipart_items,
    openclipart_pairs,
)


def test_movies_become_items_with_year_and_genres():
    frame = pd.DataFrame(
        {
            "item_id": ["50", "267"],
            "title": ["Star Wars", "unkonwn"],
            "year": pd.array([1977, None], dtype="Int64"),
            "genres": [["Action", "Sci-Fi"], []],
        }
    )
    items = movielens_items(frame)
    assert items[0].to_dict() == {
        "id": "50",
        "title": "Star Wars (1977)",
        "tags": ["Action", "Sci-Fi"],
    }
    assert items[1].title == "unkonwn"


def test_clipart_items_and_text_to_image_pairs():
    frame = pd.DataFrame(
        {"id": ["oc-1"], "title": ["Duck"], "keywords": [["bird"]], "image": ["/d/oc-1.png"]}
    )
    assert openclipart_items(frame)[0].image == "/d/oc-1.png"
    pair = openclipart_pairs(frame)[0]
    assert pair.dataset == "openclipart"
    assert (pair.query.title, pair.query.image) == ("Duck", None)
    assert (pair.target.id, pair.target.title, pair.target.image) == ("oc-1", None, "/d/oc-1.png")


def test_unknown_catalogue_and_split_misuse():
    with pytest.raises(ValueError, match="unknown catalogue 'imdb'"):
        catalogue_items("imdb")
    with pytest.raises(ValueError, match="no splits"):
        catalogue_items("movielens", split="test")
