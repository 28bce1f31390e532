"""Prepared data sets as items and training pairs. Catalogue items pass through the item schema
(`model_code.items.parse_item`), as `sail embed`'s files and the server's requests do."""

from __future__ import annotations

import pandas as pd

from model_code.items import Item, TrainingPair, parse_item

CATALOGUES = ("movielens", "openclipart")


def movielens_items(items: pd.DataFrame) -> list[Item]:
    """A movie as an item: its title with the year, and its genres as tags."""
    return [
        parse_item(
            {
                "id": str(row.item_id),
                "title": f"{row.title} ({row.year})" if pd.notna(row.year) else row.title,
                "tags": list(row.genres),
            }
        )
        for row in items.itertuples()
    ]


def openclipart_items(pairs: pd.DataFrame) -> list[Item]:
    """A clip-art drawing as an item: its title, keywords as tags, and its rendered image."""
    return [
        parse_item(
            {"id": row.id, "title": row.title, "tags": list(row.keywords), "image": row.image}
        )
        for row in pairs.itertuples()
    ]


def caption_of(item: Item) -> Item:
    """The text side of a clip-art item: its title and tags."""
    return Item(id=item.id, title=item.title, tags=list(item.tags))


def drawing_of(item: Item) -> Item:
    """The image side of a clip-art item: its drawing alone."""
    return Item(id=item.id, image=item.image)


def openclipart_pairs(pairs: pd.DataFrame, dataset: str = "openclipart") -> list[TrainingPair]:
    """Text -> image training pairs: the query is the caption, the target the drawing alone."""
    return [
        TrainingPair(dataset, caption_of(item), drawing_of(item))
        for item in openclipart_items(pairs)
    ]


def catalogue_items(name: str, split: str | None = None) -> list[Item]:
    """The prepared catalogue `name` (optionally one openclipart split) as items."""
    from model_code.data.movielens import load_movielens
    from model_code.data.openclipart import load_openclipart

    if name == "movielens":
        if split is not None:
            raise ValueError("the MovieLens catalogue has no splits; leave out --split")
        return movielens_items(load_movielens()["items"])
    if name == "openclipart":
        return openclipart_items(load_openclipart(split=split))
    raise ValueError(f"unknown catalogue {name!r}; choose one of {list(CATALOGUES)}")
