"""Text fields: cleaning, de-duplication, random field dropout (training only) and joining."""

from __future__ import annotations

import random
import re
import unicodedata

from model_code.items import Item

_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\ufeff]")
_SPACE = re.compile(r"\s+")
FIELD_LABELS = {"title": "Title", "author": "Author", "tags": "Tags", "ocr": "OCR", "asr": "ASR"}
# Characters kept of each text field, before and after normalising (NFKC can turn one character
# into 18). The fuser reads at most `max_text_tokens` (128 in `mini`) tokens of an item, a few
# hundred characters, so the cut loses nothing it would read, and it bounds the cost of
# normalising and tokenising whatever a request sends.
MAX_FIELD_CHARS = 2048


def clean_text(text: str) -> str:
    """Normalise Unicode, drop control characters and collapse whitespace; at most
    `MAX_FIELD_CHARS` characters are read and kept."""
    text = unicodedata.normalize("NFKC", text[:MAX_FIELD_CHARS])
    return _SPACE.sub(" ", _CONTROL.sub(" ", text[:MAX_FIELD_CHARS])).strip()


def item_fields(item: Item, order: tuple[str, ...]) -> dict[str, str]:
    """Cleaned, non-empty text fields of an item in `order`, with repeated content removed.

    Tags are de-duplicated case-insensitively; a field whose text already appears in an earlier
    field (OCR repeating the title, say) is dropped.
    """
    kept: dict[str, str] = {}
    for name in order:
        if name == "tags":
            value = ", ".join(_unique_tags(item.tags))
        else:
            value = clean_text(getattr(item, name) or "")
        folded = value.casefold()
        if value and not any(folded in seen.casefold() for seen in kept.values()):
            kept[name] = value
    return kept


def drop_fields(fields: dict[str, str], rate: float, rng: random.Random, keep_one: bool) -> dict:
    """Drop each field with probability `rate`; with `keep_one`, never drop all of them."""
    kept = {name: value for name, value in fields.items() if rng.random() >= rate}
    if keep_one and fields and not kept:
        name = rng.choice(sorted(fields))
        kept = {name: fields[name]}
    return kept


def join_fields(fields: dict[str, str]) -> str:
    """Join fields as labelled lines, e.g. `Title: ...`."""
    return "\n".join(f"{FIELD_LABELS[name]}: {value}" for name, value in fields.items())


def _unique_tags(tags: list[str]) -> list[str]:
    """Cleaned tags without repeats, as many as fit in `MAX_FIELD_CHARS` once joined."""
    seen: set[str] = set()
    unique: list[str] = []
    length = 0
    for tag in tags:
        cleaned = clean_text(tag)
        if cleaned and cleaned.casefold() not in seen:
            length += len(cleaned) + 2
            if length > MAX_FIELD_CHARS:
                break
            seen.add(cleaned.casefold())
            unique.append(cleaned)
    return unique
