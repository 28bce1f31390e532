"""The items the serving suite sends: prepared catalogues when present, else generated ones.

Images always travel as `data:` URLs (the server refuses local paths by default).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from model_code.items import Item
from model_code.media import to_data_url

SENTENCE_SUBJECTS = ("a red bicycle", "an old lighthouse", "a quiet forest", "a jazz trio")
SENTENCE_ENDINGS = ("at night", "in the rain", "on a postcard", "drawn in ink")
POOL = 256  # items per pool at most (requests cycle through it)


def text_items(smoke: bool) -> tuple[list[Item], str]:
    """MovieLens movies (title, year, genres) when prepared, else generated sentences."""
    if not smoke:
        try:
            from model_code.data.catalogue import catalogue_items

            return catalogue_items("movielens")[:POOL], "MovieLens-100K movies (title, genres)"
        except (FileNotFoundError, OSError, ValueError):
            pass
    items = [
        Item(id=f"s-{i}-{j}", title=f"{subject} {ending}", tags=[subject.split()[-1]])
        for i, subject in enumerate(SENTENCE_SUBJECTS)
        for j, ending in enumerate(SENTENCE_ENDINGS)
    ]
    return items, "generated sentences"


def image_items(smoke: bool) -> tuple[list[Item], str]:
    """openclipart test drawings (title, keywords, PNG) when prepared, else generated shapes."""
    if not smoke:
        try:
            from model_code.data.catalogue import catalogue_items

            items = catalogue_items("openclipart", split="test")[:POOL]
            return [_inline(item) for item in items], "openclipart test split (224 px PNG)"
        except (FileNotFoundError, OSError, ValueError):
            pass
    from model_code.data.synthetic import mixed_items

    items = [item for item in mixed_items(32) if item.title and item.image]
    return items, "generated shapes (96 px PNG)"


def _inline(item: Item) -> Item:
    """The item with its image file turned into a data URL."""
    if not item.image or item.image.startswith("data:"):
        return item
    mime = mimetypes.guess_type(item.image)[0] or "image/png"
    image = to_data_url(Path(item.image).read_bytes(), mime)
    return Item(id=item.id, title=item.title, tags=list(item.tags), image=image)
