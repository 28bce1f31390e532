import random

from model_code.items import Item
from model_code.text import MAX_FIELD_CHARS, clean_text, drop_fields, item_fields, join_fields

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


def test_a_huge_field_is_cut_before_and_after_normalising():
    assert len(clean_text("\ufdfa" * 2_000_000)) <= MAX_FIELD_CHARS  # NFKC: 1 char -> 18
    assert clean_text("word " * 10_000) == ("word " * 10_000)[:MAX_FIELD_CHARS].strip()


def test_tags_stop_once_their_joined_text_is_full():
    fields = item_fields(Item(id="1", tags=[f"tag{i}" for i in range(100_000)]), ("tags",))
    assert MAX_FIELD_CHARS - 10 <= len(fields["tags"]) <= MAX_FIELD_CHARS
