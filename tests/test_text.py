import random

from model_code.items import Item
from model_code.text import clean_text, drop_fields, item_fields, join_fields

ORDER = ("title", "author", "tags", "ocr", "asr")


def test_clean_text_normalises_and_strips_controls():
    assert clean_text("  Ｈｅｌｌｏ\u200b\tworld \x07\n") == "Hello world"


def test_repeated_fields_and_tags_are_removed():
    item = Item(
        id="a",
        title="Duck in the rain",
        ocr="duck in the RAIN",
        tags=["Duck", "duck ", "pond", ""],
        asr="quack quack",
    )
    fields = item_fields(item, ORDER)
    assert fields == {"title": "Duck in the rain", "tags": "Duck, pond", "asr": "quack quack"}
    assert join_fields(fields) == "Title: Duck in the rain\nTags: Duck, pond\nASR: quack quack"


def test_dropout_rates_and_keep_one():
    fields = {"title": "a", "tags": "b", "ocr": "c"}
    rng = random.Random(0)
    assert drop_fields(fields, 0.0, rng, keep_one=False) == fields
    assert drop_fields(fields, 1.0, rng, keep_one=False) == {}
    kept = drop_fields(fields, 1.0, rng, keep_one=True)
    assert len(kept) == 1 and set(kept.items()) <= set(fields.items())
    counts = sum(len(drop_fields(fields, 0.5, rng, keep_one=False)) for _ in range(2000))
    assert 2700 < counts < 3300  # about half of 3 x 2000 fields survive
