"""What an item weighs in the queue bound: text by characters, images by pixels, audio by
samples, whatever their encoded size."""

from __future__ import annotations

from PIL import Image

from model_code.data.synthetic import png_bytes, tone_wav
from model_code.items import Item
from model_code.media import to_data_url
from model_code.text import MAX_FIELD_CHARS
from sail.serving.cost import item_cost


def png_url(width: int, height: int) -> str:
    return to_data_url(png_bytes(Image.new("RGB", (width, height), "white")), "image/png")


def test_an_image_costs_its_pixels_not_its_bytes():
    big = png_url(2000, 2000)
    assert len(big) < 50_000  # a small body ...
    assert item_cost(Item(id="i", image=big)) == 4_000_000  # ... that decodes to 4 megapixels
    assert item_cost(Item(id="i", image=png_url(224, 224))) == 224 * 224


def test_frames_text_and_audio_add_up():
    frames = [png_url(10, 10), png_url(20, 10)]
    audio = to_data_url(tone_wav(440, 0.5), "audio/wav")  # 8,000 16-bit samples
    item = Item(id="v", title="abc", tags=["de", "f"], frames=frames, audio=audio)
    assert item_cost(item) == 3 + (4 + 3) + 100 + 200 + 8000 + 22  # the header's 44 bytes


def test_text_counts_what_is_read_and_every_item_costs_something():
    long = "x" * (10 * MAX_FIELD_CHARS)
    assert item_cost(Item(id="t", title=long, ocr="ab")) == MAX_FIELD_CHARS + 2
    assert item_cost(Item(id="t", tags=[long, long])) == MAX_FIELD_CHARS
    assert item_cost(Item(id="t", title="")) == 1


def test_unreadable_media_weigh_their_reference():
    junk = to_data_url(b"no image here", "image/png")
    assert item_cost(Item(id="j", image=junk)) == len(junk)
    assert item_cost(Item(id="j", audio="data:audio/wav;base64,@@")) == len(
        "data:audio/wav;base64,@@"
    )
