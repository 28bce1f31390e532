"""The item schema: reading, validating and converting item and training records.

An item is one JSON object: `id` (string), optional text fields `title`, `ocr`, `asr`, `author`,
`tags` (list of strings), optional `image` (a path or a data URL), `frames` (list of paths or
data URLs: a video's sampled frames) and `audio` (a path to a WAV file or a data URL).
A training record pairs two items for one data set: `{"dataset", "query", "target", "score"?}`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TEXT_FIELDS = ("title", "ocr", "asr", "author")
MEDIA_FIELDS = ("image", "frames", "audio")
ITEM_FIELDS = ("id", *TEXT_FIELDS, "tags", *MEDIA_FIELDS)
PAIR_FIELDS = ("dataset", "query", "target", "score")


class ItemError(ValueError):
    """A record that cannot be turned into an embedding; names the item id and the field."""

    def __init__(self, item_id: str | None, field_name: str | None, problem: str):
        self.item_id = item_id
        self.field_name = field_name
        self.problem = problem
        where = f"item {item_id!r}" if item_id is not None else "item without id"
        if field_name:
            where += f", field {field_name!r}"
        super().__init__(f"{where}: {problem}")


@dataclass
class Item:
    """One validated item. Media references are data URLs or absolute paths."""

    id: str
    title: str | None = None
    ocr: str | None = None
    asr: str | None = None
    author: str | None = None
    tags: list[str] = field(default_factory=list)
    image: str | None = None
    frames: list[str] = field(default_factory=list)
    audio: str | None = None

    @property
    def visual_refs(self) -> list[str]:
        """The item's frames: its image, or its video frames (an image counts as one frame)."""
        return ([self.image] if self.image else []) + list(self.frames)

    def to_dict(self) -> dict[str, Any]:
        """The item as a JSON-ready dict, without empty fields."""
        data = {name: getattr(self, name) for name in ITEM_FIELDS}
        return {k: v for k, v in data.items() if v not in (None, [], "")}


@dataclass
class TrainingPair:
    """A query/target pair of one data set, with an optional graded relevance score."""

    dataset: str
    query: Item
    target: Item
    score: float | None = None


def parse_item(record: Any, base_dir: Path | None = None) -> Item:
    """Validate one raw record and return an Item; relative paths resolve against `base_dir`."""
    if not isinstance(record, dict):
        raise ItemError(None, None, f"expected a JSON object, got {type(record).__name__}")
    item_id = record.get("id")
    if not isinstance(item_id, str | int) or isinstance(item_id, bool) or str(item_id) == "":
        raise ItemError(None, "id", "`id` must be a non-empty string")
    item_id = str(item_id)
    unknown = sorted(set(record) - set(ITEM_FIELDS))
    if unknown:
        raise ItemError(item_id, unknown[0], f"unknown field(s) {unknown}; known: {ITEM_FIELDS}")
    values: dict[str, Any] = {"id": item_id}
    for name in TEXT_FIELDS:
        values[name] = _optional_string(record, name, item_id)
    values["tags"] = _string_list(record, "tags", item_id)
    image = _optional_string(record, "image", item_id)
    values["image"] = _resolve_ref(image, base_dir) if image else None
    values["frames"] = [_resolve_ref(f, base_dir) for f in _string_list(record, "frames", item_id)]
    audio = _optional_string(record, "audio", item_id)
    values["audio"] = _resolve_ref(audio, base_dir) if audio else None
    item = Item(**values)
    has_text = any(getattr(item, n) and getattr(item, n).strip() for n in TEXT_FIELDS) or any(
        t.strip() for t in item.tags
    )
    if not (has_text or item.visual_refs or item.audio):
        raise ItemError(item_id, None, "no usable modality (no text, image, frames or audio)")
    return item


def parse_pair(record: Any, base_dir: Path | None = None) -> TrainingPair:
    """Validate one training record: a data set name and a query/target pair of items."""
    if not isinstance(record, dict):
        raise ItemError(None, None, f"expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - set(PAIR_FIELDS))
    if unknown:
        raise ItemError(None, unknown[0], f"unknown field(s) {unknown}; known: {PAIR_FIELDS}")
    dataset = record.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        raise ItemError(None, "dataset", "a training record needs a non-empty `dataset` name")
    score = record.get("score")
    if score is not None and not isinstance(score, int | float):
        raise ItemError(None, "score", f"`score` must be a number, got {score!r}")
    return TrainingPair(
        dataset=dataset,
        query=parse_item(record.get("query"), base_dir),
        target=parse_item(record.get("target"), base_dir),
        score=None if score is None else float(score),
    )


def read_items(path: Path, skip_bad: bool = False) -> list[Item]:
    """Read a JSONL file of items. Bad records raise, or are logged and skipped with `skip_bad`."""
    path = Path(path)
    items: list[Item] = []
    skipped = 0
    for line_no, record in _jsonl_records(path):
        try:
            if isinstance(record, Exception):
                raise ItemError(None, None, f"line {line_no} is not valid JSON: {record}")
            items.append(parse_item(record, base_dir=path.parent))
        except ItemError as error:
            if not skip_bad:
                where = f"{error.problem} ({path}:{line_no})"
                raise ItemError(error.item_id, error.field_name, where) from None
            skipped += 1
            logger.warning("skipping %s:%d: %s", path, line_no, error)
    if skipped:
        logger.warning("skipped %d bad item(s) in %s", skipped, path)
    _check_unique_ids(items, path)
    return items


def read_pairs(path: Path) -> list[TrainingPair]:
    """Read a JSONL file of training records."""
    path = Path(path)
    pairs = []
    for line_no, record in _jsonl_records(path):
        if isinstance(record, Exception):
            raise ItemError(None, None, f"{path}:{line_no} is not valid JSON: {record}")
        pairs.append(parse_pair(record, base_dir=path.parent))
    return pairs


def write_jsonl(records: Iterable[Item | TrainingPair | dict], path: Path) -> None:
    """Write items, pairs or plain dicts as JSONL."""
    with Path(path).open("w") as handle:
        for record in records:
            handle.write(json.dumps(_to_json(record)) + "\n")


def _to_json(record: Item | TrainingPair | dict) -> dict[str, Any]:
    if isinstance(record, Item):
        return record.to_dict()
    if isinstance(record, TrainingPair):
        data = {"dataset": record.dataset, "query": record.query.to_dict()}
        data["target"] = record.target.to_dict()
        if record.score is not None:
            data["score"] = record.score
        return data
    return record


def _jsonl_records(path: Path) -> Iterator[tuple[int, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    with path.open() as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as error:
                yield line_no, error


def _check_unique_ids(items: list[Item], path: Path) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ItemError(item.id, "id", f"duplicate id in {path}")
        seen.add(item.id)


def _optional_string(record: dict, name: str, item_id: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ItemError(item_id, name, f"must be a string, got {type(value).__name__}")
    return value


def _string_list(record: dict, name: str, item_id: str) -> list[str]:
    value = record.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ItemError(item_id, name, "must be a list of strings")
    return list(value)


def _resolve_ref(ref: str, base_dir: Path | None) -> str:
    if ref.startswith("data:") or base_dir is None or Path(ref).is_absolute():
        return ref
    return str((base_dir / ref).resolve())
