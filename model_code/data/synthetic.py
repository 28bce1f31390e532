"""Synthetic items for unit tests only: shapes on coloured backgrounds, tones, short captions.

Every quality figure the project reports comes from real data (openclipart, MovieLens).
"""

from __future__ import annotations

import io
import os
import random
import struct
import wave
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from model_code.items import Item
from model_code.media import to_data_url

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 220)}
SHAPES = ("circle", "square", "triangle")


def shape_image(
    colour: str, shape: str, size: int = 96, shift: tuple[int, int] = (0, 0)
) -> Image.Image:
    """A coloured shape on a white background, moved `shift` pixels from the centre."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    (dx, dy), margin = shift, size // 5
    box = (margin + dx, margin + dy, size - margin + dx, size - margin + dy)
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(size // 2, box[1]), (box[2], box[3]), (box[0], box[3])], fill=fill)
    return image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def tone_wav(frequency: float, seconds: float, sample_rate: int = 16000) -> bytes:
    """A 16-bit mono WAV of a sine tone."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    samples = (0.3 * np.sin(2 * np.pi * frequency * t) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(samples.tobytes())
    return buffer.getvalue()


def with_claimed_length(stream: bytes, samples: int) -> bytes:
    """An OGG stream with its last page's granule position (the length a reader takes it to
    have) set to `samples`, that page's checksum made good again: a stream that lies."""
    start = stream.rfind(b"OggS")
    page = bytearray(stream[start:])
    page[6:14] = struct.pack("<q", samples)
    page[22:26] = bytes(4)
    page[22:26] = struct.pack("<I", _ogg_crc32(bytes(page)))
    return stream[:start] + bytes(page)


def _ogg_crc32(data: bytes) -> int:
    """OGG's page checksum: CRC-32, polynomial 0x04C11DB7, not reflected, initial value 0."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = (crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def mixed_items(n: int, seed: int = 0, media_dir: Path | None = None) -> list[Item]:
    """`n` items cycling through text-only, image-only, text+image and frames+audio+text.

    Media are data URLs, or files under `media_dir` when given.
    """
    rng = random.Random(seed)
    items = []
    for index in range(n):
        colour, shape = rng.choice(sorted(COLOURS)), rng.choice(SHAPES)
        caption = f"a {colour} {shape}"
        kind = index % 4
        image = _ref(png_bytes(shape_image(colour, shape)), "image/png", media_dir, f"{index}.png")
        item = Item(id=f"syn-{index}")
        if kind in (0, 2, 3):
            item.title = caption
            item.tags = [colour, shape]
        if kind in (1, 2):
            item.image = image
        if kind == 3:
            item.frames = [
                _ref(png_bytes(shape_image(c, shape)), "image/png", media_dir, f"{index}-{c}.png")
                for c in sorted(COLOURS)
            ]
            wav = tone_wav(220.0 * (1 + SHAPES.index(shape)), seconds=1.5)
            item.audio = _ref(wav, "audio/wav", media_dir, f"{index}.wav")
        items.append(item)
    return items


def _ref(data: bytes, mime: str, media_dir: Path | None, name: str) -> str:
    if media_dir is None:
        return to_data_url(data, mime)
    path = Path(media_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{name}.{os.getpid()}")  # atomic: other ranks may be reading it
    partial.write_bytes(data)
    partial.replace(path)
    return str(path)


def synthetic_openclipart(
    n: int, media_dir: Path, seed: int = 0, distinct: bool = False
) -> pd.DataFrame:
    """Pairs with the columns of `load_openclipart` (shapes instead of drawings), for tests.

    Drawings repeat with their colour and shape (9 kinds), so many tie exactly; `distinct` moves
    each row's shape by its own offset (up to 121 rows), for tests where ties are not the point.
    """
    rng = random.Random(seed)
    rows = []
    for index in range(n):
        colour, shape = rng.choice(sorted(COLOURS)), rng.choice(SHAPES)
        shift = (index % 11 - 5, index // 11 % 11 - 5) if distinct else (0, 0)
        image = _ref(
            png_bytes(shape_image(colour, shape, shift=shift)),
            "image/png",
            media_dir,
            f"oc{index}.png",
        )
        group = f"{colour} {shape}"
        rows.append(
            {
                "id": f"oc-{index}",
                "title": f"{colour} {shape} {index}",
                "keywords": [colour, shape],
                "image": image,
                "group": group,
                "split": ("train", "train", "train", "validation", "test")[index % 5],
                "source": f"synthetic/{index}.svg",
            }
        )
    return pd.DataFrame(rows)


def synthetic_movielens(n_users: int = 30, n_items: int = 40, seed: int = 0) -> dict:
    """Tables with the columns of `load_movielens`: users who like one genre each, for tests."""
    rng = random.Random(seed)
    genres = ("Action", "Comedy", "Drama", "Sci-Fi")
    items = pd.DataFrame(
        {
            "item_id": [str(i + 1) for i in range(n_items)],
            "title": [f"Movie {i + 1} {genres[i % len(genres)]}" for i in range(n_items)],
            "year": pd.array([1990 + i % 10 for i in range(n_items)], dtype="Int64"),
            "genres": [[genres[i % len(genres)]] for i in range(n_items)],
        }
    )
    rows, sequences = [], []
    for user in range(n_users):
        liked = [i for i in range(n_items) if i % len(genres) == user % len(genres)]
        watched = rng.sample(liked, k=min(len(liked), 8))
        for order, item in enumerate(watched):
            split = "train" if order < len(watched) - 2 else ("validation", "test")[order - 6]
            rows.append((str(user + 1), str(item + 1), 5, 880000000 + order * 100, split))
        ids = [str(i + 1) for i in watched]
        sequences.append((str(user + 1), ids[:-2], ids[-2], ids[-1]))
    interactions = pd.DataFrame(
        rows, columns=["user_id", "item_id", "rating", "timestamp", "split"]
    )
    return {
        "items": items,
        "users": pd.DataFrame({"user_id": [str(u + 1) for u in range(n_users)]}),
        "interactions": interactions,
        "sequences": pd.DataFrame(
            sequences, columns=["user_id", "history", "validation_item", "test_item"]
        ),
    }
