import json

import pytest

from model_code.items import ItemError, parse_item, parse_pair, read_items, read_pairs, write_jsonl


def test_parse_item_resolves_relative_paths(tmp_path):
    item = parse_item({"id": 7, "title": "x", "image": "pics/a.png"}, base_dir=tmp_path)
    assert item.id == "7"
    assert item.image == str(tmp_path / "pics" / "a.png")
    assert parse_item({"id": "d", "image": "data:image/png;base64,AA=="}).image.startswith("data:")


@pytest.mark.parametrize(
    ("record", "field", "problem"),
    [
        ({"id": "a"}, None, "no usable modality"),
        ({"id": "a", "title": "   ", "tags": []}, None, "no usable modality"),
        ({"id": "a", "title": "t", "colour": "red"}, "colour", "unknown field"),
        ({"id": "a", "title": 3}, "title", "Input should be a valid string"),
        ({"id": "a", "tags": "x,y"}, "tags", "Input should be a valid list"),
        ({"id": "a", "frames": ["f.png", 2]}, "frames", r"valid string at frames\[1\]"),
        ({"title": "no id"}, "id", "non-empty string"),
    ],
)
def test_bad_items_name_the_item_and_field(record, field, problem):
    with pytest.raises(ItemError, match=problem) as caught:
        parse_item(record)
    assert caught.value.field_name == field
    if "id" in record:
        assert "item 'a'" in str(caught.value)


def test_read_items_stops_on_bad_line_or_skips_it(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text('{"id": "a", "title": "ok"}\nnot json\n{"id": "b"}\n{"id": "c", "asr": "hi"}\n')
    with pytest.raises(ItemError, match=r"line 2 is not valid JSON.*items.jsonl:2"):
        read_items(path)
    items = read_items(path, skip_bad=True)
    assert [item.id for item in items] == ["a", "c"]


def test_duplicate_ids_are_rejected(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text('{"id": "a", "title": "x"}\n{"id": "a", "title": "y"}\n')
    with pytest.raises(ItemError, match="duplicate id"):
        read_items(path)


def test_pairs_round_trip(tmp_path):
    record = {
        "dataset": "openclipart",
        "query": {"id": "q", "title": "a duck"},
        "target": {"id": "t", "image": "duck.png"},
        "score": 1.0,
    }
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(record) + "\n")
    pairs = read_pairs(path)
    assert pairs[0].dataset == "openclipart"
    assert pairs[0].target.image == str(tmp_path / "duck.png")
    write_jsonl(pairs, tmp_path / "copy.jsonl")
    assert read_pairs(tmp_path / "copy.jsonl") == pairs


def test_pair_needs_a_dataset():
    with pytest.raises(ItemError, match="dataset"):
        parse_pair({"query": {"id": "q", "title": "x"}, "target": {"id": "t", "title": "y"}})
