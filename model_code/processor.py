"""Processor: an item -> the tensors the model reads (text ids, frame pixels, audio features).

`prepare` handles one item (so a bad item is caught on its own, with its id and field);
`collate` batches prepared items under one instruction, wrapped in the chat-style template.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from model_code.audio_features import AudioFeaturizer, chunk_waveform
from model_code.config import MODALITIES, SIDES, ConfigError, ModelConfig
from model_code.items import Item, ItemError
from model_code.media import MediaError, load_audio, load_image
from model_code.text import drop_fields, item_fields, join_fields
from model_code.weights import resolve_weights


@dataclass
class PreparedItem:
    """One item's decoded inputs, before batching."""

    item_id: str
    text: str = ""
    frames: list[torch.Tensor] = field(default_factory=list)
    audio: list[np.ndarray] = field(default_factory=list)

    @property
    def modalities(self) -> set[str]:
        present = {"text"} if self.text else set()
        if self.frames:
            present.add("vision")
        if self.audio:
            present.add("audio")
        return present


@dataclass
class ModelInputs:
    """A batch: shared instruction ids, padded text ids, all frames and all audio chunks."""

    item_ids: list[str]
    head_ids: torch.Tensor  # [Lh] [CLS] (+ chat template and instruction), before the media
    text_ids: torch.Tensor  # [B, Lt] item text + template tail, right-padded
    text_mask: torch.Tensor  # [B, Lt]
    pixels: torch.Tensor | None  # [frames_total, 3, H, W]
    frame_counts: torch.Tensor  # [B]
    audio: torch.Tensor | None  # [chunks_total, frames, mels]
    chunk_counts: torch.Tensor  # [B]
    content_lengths: torch.Tensor  # [B] tokens of each item's own text (0: the item has none)
    instruction: str = ""  # the batch's instruction (it selects an instruction adapter)

    def has_text(self) -> torch.Tensor:
        """[B] bools: which items have text of their own (beyond the template)."""
        return self.content_lengths > 0

    def to(self, device: torch.device | str) -> ModelInputs:
        def move(value):
            return value.to(device) if isinstance(value, torch.Tensor) else value

        return ModelInputs(**{k: move(v) for k, v in self.__dict__.items()})

    def __len__(self) -> int:
        return len(self.item_ids)


class SailProcessor:
    """Turns items into model inputs for one model configuration."""

    def __init__(self, config: ModelConfig):
        from transformers import AutoTokenizer

        self.config = config
        self.tokenizer = AutoTokenizer.from_pretrained(resolve_weights(config.fuser.tokenizer))
        self.featurizer = AudioFeaturizer(config.audio)
        self._prefix_ids, self._suffix_ids = _special_tokens(self.tokenizer)
        template = config.fuser.chat_template
        if template.count("{content}") != 1 or "{instruction}" not in template:
            raise ConfigError("chat_template needs one {instruction} and one {content} slot")
        self._head_template, self._tail = template.split("{content}")

    def instruction(self, side: str, instructions: dict[str, str] | None = None) -> str:
        """The instruction for a side ("query" or "target"), from a data set's or the default."""
        if side not in SIDES:
            raise ConfigError(f"unknown side {side!r}; choose one of {list(SIDES)}")
        return (instructions or self.config.text.instructions)[side]

    def prepare(
        self,
        item: Item,
        training: bool = False,
        rng: random.Random | None = None,
        modalities: tuple[str, ...] = MODALITIES,
    ) -> PreparedItem:
        """Decode one item; raises ItemError naming the item and field on bad media."""
        prepared = PreparedItem(item.id)
        if "text" in modalities:
            fields = item_fields(item, self.config.text.fields)
            if training:  # a view without media must keep some text
                has_media = bool(
                    ("vision" in modalities and item.visual_refs)
                    or ("audio" in modalities and item.audio)
                )
                rate = self.config.text.field_dropout
                fields = drop_fields(fields, rate, rng or random, keep_one=not has_media)
            prepared.text = join_fields(fields)
        if "vision" in modalities and item.visual_refs:
            field_name = "image" if item.image else "frames"
            refs = _spread(item.visual_refs, self.config.vision.max_frames)
            prepared.frames = [
                self._pixels(_decode(load_image, ref, item, field_name)) for ref in refs
            ]
        if "audio" in modalities and item.audio:
            a = self.config.audio
            waveform = _decode(load_audio, item.audio, item, "audio", a.sample_rate)
            chunks = chunk_waveform(waveform, self.featurizer.chunk_samples, a.max_chunks)
            prepared.audio = [self.featurizer(chunk) for chunk in chunks]
        return prepared

    def collate(self, prepared: list[PreparedItem], instruction: str) -> ModelInputs:
        """Batch prepared items under one instruction (not in the input when the preset has
        no instruction prefix)."""
        if not prepared:
            raise ValueError("cannot collate an empty batch")
        head, tail = list(self._prefix_ids), list(self._suffix_ids)
        if self.config.fuser.instruction_prefix:
            head += self._encode(self._head_template.format(instruction=instruction))
            tail = self._encode(self._tail) + tail
        limit = self.config.fuser.max_text_tokens
        contents = [self._encode(p.text)[:limit] for p in prepared]
        texts = [ids + tail for ids in contents]
        width = max(len(ids) for ids in texts)
        text_ids = torch.zeros(len(texts), width, dtype=torch.long)
        text_mask = torch.zeros(len(texts), width, dtype=torch.bool)
        for row, ids in enumerate(texts):
            text_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            text_mask[row, : len(ids)] = True
        frames = [frame for p in prepared for frame in p.frames]
        chunks = [torch.from_numpy(chunk) for p in prepared for chunk in p.audio]
        return ModelInputs(
            item_ids=[p.item_id for p in prepared],
            head_ids=torch.tensor(head, dtype=torch.long),
            text_ids=text_ids,
            text_mask=text_mask,
            pixels=torch.stack(frames) if frames else None,
            frame_counts=torch.tensor([len(p.frames) for p in prepared], dtype=torch.long),
            audio=torch.stack(chunks) if chunks else None,
            chunk_counts=torch.tensor([len(p.audio) for p in prepared], dtype=torch.long),
            content_lengths=torch.tensor([len(ids) for ids in contents], dtype=torch.long),
            instruction=instruction,
        )

    def __call__(self, items: list[Item], side: str = "target") -> ModelInputs:
        """Prepare and collate items for inference under the default instruction of `side`."""
        return self.collate([self.prepare(item) for item in items], self.instruction(side))

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def _pixels(self, image: Image.Image) -> torch.Tensor:
        v = self.config.vision
        size = v.image_size
        scale = size / min(image.size)
        resized = image.resize(
            (max(size, round(image.width * scale)), max(size, round(image.height * scale))),
            Image.Resampling.BICUBIC,
        )
        left, top = (resized.width - size) // 2, (resized.height - size) // 2
        cropped = resized.crop((left, top, left + size, top + size))
        array = np.asarray(cropped, dtype=np.float32) / 255.0
        array = (array - np.array(v.mean, dtype=np.float32)) / np.array(v.std, dtype=np.float32)
        return torch.from_numpy(array.transpose(2, 0, 1).copy())


def _decode(loader, ref: str, item: Item, field_name: str, *args):
    try:
        return loader(ref, *args)
    except MediaError as error:
        raise ItemError(item.id, field_name, str(error)) from None


def _spread(refs: list[str], limit: int) -> list[str]:
    if len(refs) <= limit:
        return refs
    picks = np.linspace(0, len(refs) - 1, limit).round().astype(int)
    return [refs[i] for i in picks]


def _special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The special ids a tokenizer puts before and after a text (e.g. BERT's [CLS] ... [SEP])."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    wrapped = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(wrapped) - len(plain) + 1):
        if wrapped[start : start + len(plain)] == plain:
            return wrapped[:start], wrapped[start + len(plain) :]
    return [], []
