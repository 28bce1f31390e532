import random

import pytest
import torch

from model_code.config import ConfigError
from model_code.data.synthetic import mixed_items
from model_code.items import Item, ItemError


def test_collate_shapes_for_mixed_items(tiny, items):
    _, processor = tiny
    inputs = processor(items)
    assert inputs.frame_counts.tolist() == [0, 1, 1, 3] * 2
    assert inputs.chunk_counts.tolist() == [0, 0, 0, 1] * 2
    assert inputs.pixels.shape == (10, 3, 64, 64)
    assert inputs.audio.shape[0] == 2 and inputs.audio.shape[2] == 40
    assert inputs.text_mask.sum(1).min() >= 1  # template tail + [SEP] even without text


def test_instructions_differ_by_side_and_dataset(tiny):
    _, processor = tiny
    item = [processor.prepare(Item(id="a", title="x"))]
    query = processor.collate(item, processor.instruction("query")).head_ids
    target = processor.collate(item, processor.instruction("target")).head_ids
    custom = processor.instruction("query", {"query": "Find a movie.", "target": "A movie."})
    assert not torch.equal(query, target)
    assert custom == "Find a movie."
    tokens = processor.tokenizer.convert_ids_to_tokens(query.tolist())
    assert tokens[0] == "[CLS]" and "query" in tokens
    with pytest.raises(ConfigError, match="unknown side"):
        processor.instruction("middle")


def test_without_an_instruction_prefix_the_input_is_the_tokenizers_own(tiny):
    from dataclasses import replace

    from model_code.processor import SailProcessor

    _, processor = tiny
    config = replace(
        processor.config, fuser=replace(processor.config.fuser, instruction_prefix=False)
    )
    plain = SailProcessor(config)
    item = [plain.prepare(Item(id="a", title="x"))]
    inputs = plain.collate(item, plain.instruction("query"))
    assert plain.tokenizer.convert_ids_to_tokens(inputs.head_ids.tolist()) == ["[CLS]"]
    text = inputs.text_ids[0, inputs.text_mask[0]].tolist()
    assert plain.tokenizer.decode(text) == "title : x [SEP]"
    other = plain.collate(item, plain.instruction("target"))
    assert torch.equal(inputs.head_ids, other.head_ids)  # no instruction in the input


def _an_image_ref():
    from model_code.data.synthetic import mixed_items

    return next(item.image for item in mixed_items(4) if item.image)


def test_field_dropout_only_in_training(tiny):
    _, processor = tiny
    item = Item(id="a", title="first", ocr="second", asr="third", author="fourth")
    assert all(processor.prepare(item).text.count("\n") == 3 for _ in range(20))
    rng = random.Random(1)
    texts = {processor.prepare(item, training=True, rng=rng).text for _ in range(50)}
    assert len(texts) > 1
    assert all(texts)  # a text-only item keeps at least one field
    drawing = Item(id="d", title="a duck", image=str(_an_image_ref()))
    text_views = {
        processor.prepare(drawing, training=True, rng=rng, modalities=("text",)).text
        for _ in range(200)
    }
    assert "" not in text_views  # the text-only view of an item with an image keeps its text


def test_modalities_can_be_left_out(tiny, items):
    _, processor = tiny
    omni = items[3]
    assert processor.prepare(omni).modalities == {"text", "vision", "audio"}
    assert processor.prepare(omni, modalities=("vision",)).modalities == {"vision"}
    assert processor.prepare(omni, modalities=("text",)).modalities == {"text"}


def test_text_is_truncated(tiny):
    _, processor = tiny
    long_item = Item(id="long", title="word " * 500)
    inputs = processor([long_item])
    limit = processor.config.fuser.max_text_tokens
    assert inputs.text_ids.shape[1] <= limit + 10


def test_frames_beyond_the_limit_are_sampled_evenly(tiny):
    _, processor = tiny
    frames = [item.image for item in mixed_items(16) if item.image][:6]
    prepared = processor.prepare(Item(id="video", frames=frames))
    assert len(prepared.frames) == processor.config.vision.max_frames


def test_bad_media_names_item_and_field(tiny, tmp_path):
    _, processor = tiny
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ItemError, match=r"item 'v', field 'frames'.*not a readable image"):
        processor.prepare(Item(id="v", frames=[str(tmp_path / "notes.txt")]))
    with pytest.raises(ItemError, match=r"item 's', field 'audio'.*WAV"):
        processor.prepare(Item(id="s", audio=str(tmp_path / "notes.txt")))
