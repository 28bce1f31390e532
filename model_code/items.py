"""The item schema: reading, validating and converting item and training records.

An item is one JSON object: `id` (string), optional text fields `title`, `ocr`, `asr`, `author`,
`tags` (list of strings), optional `image` (a path or a data URL), `frames` (list of paths or
data URLs: a video's sampled frames) and `audio` (a path to a WAV or OGG Vorbis file, or a
data URL).
A training record pairs two items for one data set: `{"dataset", "query", "target", "score"?}`.

`ItemBody` is that schema as one pydantic model, for every place items come in: `sail embed`'s
JSONL files and training pairs (`parse_item`), the MLflow pyfunc model, and the server's request
bodies (`sail.serving.schema`, which also shows it on the server's OpenAPI page). Unknown fields
are refused, every field is strict (no 3 for a title; an int id is taken as its text), and an
item needs one usable modality. Media may name files only where the validation context's
`allow_local_paths` is true (without a context, as for files on this machine, they may).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

logger = logging.getLogger(__name__)

MAX_ID_CHARS = 256
DATA_URL_PNG = "data:image/png;base64,iVBORw0KGgo..."  # an example in the schema

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


def _int_as_string(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _media_allowed(ref: str, info: ValidationInfo) -> str:
    if not getattr(info.context, "allow_local_paths", True) and not ref.startswith("data:"):
        raise PydanticCustomError(
            "local_media", "media must be data: URLs (this server reads no files)"
        )
    return ref


ItemId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_CHARS),
    BeforeValidator(_int_as_string, json_schema_input_type=str | int),
]
MediaRef = Annotated[str, StringConstraints(min_length=1), AfterValidator(_media_allowed)]


class ItemBody(BaseModel):
    """One item: an id, text fields, and media as `data:` URLs or file paths (see the module
    doc)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"id": "m1", "title": "A red circle", "tags": ["shapes"]},
                {"id": "m2", "title": "A clip", "image": DATA_URL_PNG},
            ]
        },
    )

    id: ItemId | None = None
    title: str | None = None
    ocr: str | None = None
    asr: str | None = None
    author: str | None = None
    tags: list[str] = []
    image: MediaRef | None = None
    frames: list[MediaRef] = []
    audio: MediaRef | None = None

    @model_validator(mode="after")
    def _has_a_modality(self) -> ItemBody:
        texts = [self.title, self.ocr, self.asr, self.author, *self.tags]
        if not (any(t and t.strip() for t in texts) or self.image or self.frames or self.audio):
            raise PydanticCustomError(
                "no_modality", "no usable modality (no text, image, frames or audio)"
            )
        return self

    def to_item(self, index: int) -> Item:
        """The item to embed; without an id, its position (in a request) is its id."""
        values = self.model_dump(exclude={"id"})
        return Item(id=self.id if self.id is not None else str(index), **values)


@dataclass
class TrainingPair:
    """A query/target pair of one data set, with an optional graded relevance score."""

    dataset: str
    query: Item
    target: Item
    score: float | None = None


def parse_item(record: Any, base_dir: Path | None = None) -> Item:
    """Validate one raw record (`ItemBody`, an id required) and return an Item; relative paths
    resolve against `base_dir`."""
    if not isinstance(record, dict):
        raise ItemError(None, None, f"expected a JSON object, got {type(record).__name__}")
    item_id = record.get("id")
    if not isinstance(item_id, str | int) or isinstance(item_id, bool) or str(item_id) == "":
        raise ItemError(None, "id", "`id` must be a non-empty string")
    try:
        item = ItemBody.model_validate(record).to_item(0)
    except ValidationError as error:
        problem = error.errors(include_url=False)[0]
        loc = problem["loc"]
        message = problem["msg"]
        if len(loc) > 1:  # inside a list: frames[1]
            message += f" at {loc[0]}[{loc[1]}]"
        if problem["type"] == "extra_forbidden":
            message = f"unknown field {loc[0]!r}; known: {ITEM_FIELDS}"
        raise ItemError(str(item_id), str(loc[0]) if loc else None, message) from None
    item.image = _resolve_ref(item.image, base_dir) if item.image else None
    item.frames = [_resolve_ref(frame, base_dir) for frame in item.frames]
    item.audio = _resolve_ref(item.audio, base_dir) if item.audio else None
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


def _resolve_ref(ref: str, base_dir: Path | None) -> str:
    if ref.startswith("data:") or base_dir is None or Path(ref).is_absolute():
        return ref
    return str((base_dir / ref).resolve())
