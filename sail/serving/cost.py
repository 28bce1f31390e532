"""What an item costs the server once decoded, in cost units: the weight of an item in the bound on
the work waiting for the model (`Limits.max_queued_cost`).

- text: one unit per character of each text field (title, author, OCR, ASR, the tags joined),
  at most `MAX_FIELD_CHARS` (2,048) per field, as the rest is cut before tokenising;
- an image, and each video frame: its pixels, width x height as its header says (224 x 224 is
  50,176), read without decoding a pixel; an image that cannot be read weighs its reference's
  length (it fails in the worker anyway);
- audio: a WAV's bytes / 2, the sample count of 16-bit audio; an OGG stream's samples as its pages
  claim them (`model_code.media.declared_samples`: the decoder stops a stream that decodes past
  its claim, so it never costs more than it was weighed);
- every item at least 1.

`item_cost(item) -> int`. A 6 MB PNG of noise is about 2,000,000 units; a title, a few hundred.
"""

from __future__ import annotations

import io

from PIL import Image

from model_code.items import TEXT_FIELDS, Item
from model_code.media import MediaError, declared_samples, read_bytes
from model_code.text import MAX_FIELD_CHARS


def item_cost(item: Item) -> int:
    """The item's cost in units (see the module doc)."""
    texts = [getattr(item, name) or "" for name in TEXT_FIELDS]
    text = sum(min(len(t), MAX_FIELD_CHARS) for t in texts)
    text += min(sum(len(tag) + 2 for tag in item.tags), MAX_FIELD_CHARS)
    media = sum(image_pixels(ref) for ref in item.visual_refs)
    if item.audio:
        media += audio_samples(item.audio)
    return max(1, text + media)


def image_pixels(ref: str) -> int:
    """Width x height from the image's header; the reference's length when it is unreadable."""
    try:
        with Image.open(io.BytesIO(read_bytes(ref, "image"))) as image:
            width, height = image.size
    except (MediaError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return len(ref)
    return width * height


def audio_samples(ref: str) -> int:
    """An OGG stream's claimed samples, else the bytes / 2; the reference's length when it cannot
    be read."""
    try:
        data = read_bytes(ref, "audio")
    except (MediaError, OSError):
        return len(ref)
    claimed = declared_samples(data)
    return len(data) // 2 if claimed is None else max(claimed, len(data) // 2)
