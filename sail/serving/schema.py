"""The request bodies of the embedding routes as pydantic models, and parsing through them.

- `ItemBody`: one item, the item schema of `model_code.items` (docs/items.md), the same model
  `sail embed` reads files with; `to_item(index)` -> Item, with its position as id when it has
  none. Media must be `data:` URLs unless the server allows local paths. Where a list of items is
  expected, a plain string is a text-only item (the string is its title).
- `Parameters` (v1), `V2Parameters`, `V1Request`, `V2Request` (the items and parameters of a v2
  request, gathered from kserve's InferRequest) and `EmbeddingRequest` (the OpenAI route).
- `Checks(limits, dims)`: what validation checks against, the server's `Limits` (most items per
  request, whether media may name files) and the model's Matryoshka sizes (None: not checked).
- `parse(model, data, checks)` -> a validated `model`, or a `RequestError` (400) naming the field
  and position of the first problem, e.g. `instances[2], field 'image': media must be data:
  URLs (this server reads no files)`.
- `json_body(body)`: the parsed JSON of a request body, or a 400;
  `parse_json_string(value, index, field)`: a v2 BYTES element as an item object or a text.

Every model refuses unknown fields and is strict: no "16" for 16, no 16.0 either. Text fields have
no length limit here: `model_code/text.py` reads and keeps the first 2,048 characters of each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from model_code.items import DATA_URL_PNG, Item, ItemBody
from sail.serving.limits import Limits, RequestError

MAX_INSTRUCTION_CHARS = 1000


@dataclass(frozen=True)
class Checks:
    """The server's limits and the model's output sizes, which validation checks against."""

    limits: Limits = field(default_factory=Limits)
    dims: tuple[int, ...] | None = None

    @property
    def allow_local_paths(self) -> bool:
        """Whether items may name files (`model_code.items.ItemBody` reads it)."""
        return self.limits.allow_local_paths


def _checks(info: ValidationInfo) -> Checks:
    return info.context if isinstance(info.context, Checks) else Checks()


def _served_size(dim: int, info: ValidationInfo) -> int:
    dims = _checks(info).dims
    if dims is not None and dim not in dims:
        raise PydanticCustomError(
            "unsupported_dim",
            "unsupported size {dim}: this model serves sizes {dims}",
            {"dim": dim, "dims": str(list(dims))},
        )
    return dim


def _not_blank(text: str) -> str:
    if not text.strip():
        raise PydanticCustomError("blank_string", "a blank string")
    return text


def _text_as_item(value: Any) -> Any:
    if isinstance(value, str):
        return {"title": _not_blank(value)}
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "item_type",
            "must be an item object or a string, got {kind}",
            {"kind": _type_name(value)},
        )
    return value


def _as_bounded_list(values: Any, info: ValidationInfo) -> Any:
    """A lone string as a list of one; an empty list, or one over `max_items`, refused before
    its items are validated."""
    if isinstance(values, str):
        return [values]
    if isinstance(values, list):
        most = _checks(info).limits.max_items
        if not values:
            raise PydanticCustomError("empty", "is empty: send at least one item or string")
        if len(values) > most:
            raise PydanticCustomError(
                "too_many_items",
                "has {count} items; at most {most} per request",
                {"count": len(values), "most": most},
            )
    return values


Dim = Annotated[int, Field(ge=1), AfterValidator(_served_size)]
Side = Literal["query", "target"]
Instruction = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_INSTRUCTION_CHARS),
    AfterValidator(_not_blank),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, protected_namespaces=())


ItemOrText = Annotated[
    ItemBody, BeforeValidator(_text_as_item, json_schema_input_type=str | ItemBody)
]
Items = Annotated[
    list[ItemOrText],
    BeforeValidator(_as_bounded_list, json_schema_input_type=str | list[str | ItemBody]),
]


def _none_as_empty(value: Any) -> Any:
    return {} if value is None else value


class Parameters(_Body):
    """The v1 parameters: the output size (default the full size), the side, and an instruction
    in place of the side's."""

    dim: Dim | None = None
    side: Side = "target"
    instruction: Instruction | None = None


class V2Parameters(Parameters):
    """The v2 request parameters: the v1 ones and `binary_data_output`."""

    binary_data_output: bool = False


class V1Request(_Body):
    """`POST /v1/models/sail-embedding:predict`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"instances": ["a red circle", {"id": "m1", "title": "A duck"}]}]
        }
    )

    instances: Items
    parameters: Annotated[Parameters, BeforeValidator(_none_as_empty)] = Parameters()

    def to_items(self) -> list[Item]:
        return [item.to_item(index) for index, item in enumerate(self.instances)]


class V2Request(_Body):
    """A v2 request's items (its BYTES input `items`, as JSON objects or texts) and parameters."""

    parameters: Annotated[V2Parameters, BeforeValidator(_none_as_empty)] = V2Parameters()
    items: Items

    def to_items(self) -> list[Item]:
        return [item.to_item(index) for index, item in enumerate(self.items)]


class EmbeddingRequest(_Body):
    """`POST /openai/v1/embeddings`: OpenAI's embeddings request, plus `side` and
    `instruction`; `user` is accepted and ignored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"model": "sail-embedding", "input": "a red circle", "dimensions": 64},
                {"model": "sail-embedding", "input": [{"id": "m1", "image": DATA_URL_PNG}]},
            ]
        }
    )

    model: str
    input: Items
    dimensions: Dim | None = None
    encoding_format: Literal["float", "base64", "int8", "binary"] = "float"
    user: str | None = None
    side: Side = "target"
    instruction: Instruction | None = None

    def to_items(self) -> list[Item]:
        return [item.to_item(index) for index, item in enumerate(self.input)]


def parse(model: type[_Body], data: Any, checks: Checks) -> Any:
    """`data` validated as `model`, or a RequestError naming the first problem's place."""
    try:
        return model.model_validate(data, context=checks)
    except ValidationError as error:
        raise request_error(error) from None


def request_error(error: ValidationError) -> RequestError:
    """The first problem of a ValidationError as a 400, e.g. `instances[2], field 'image': ...`;
    `param` is its path (`instances[2].image`)."""
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    param, message = _describe(problems[0])
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s))"
    return RequestError(message, param)


def _describe(problem: dict) -> tuple[str | None, str]:
    """(param, message): the place is the list position (`instances[2]`) and the field inside it
    (`'frames[1]'`), or the field's path outside any list (`parameters.side`)."""
    loc = list(problem["loc"])
    param = _path(loc) or None
    text = "must be a JSON object" if problem["type"] == "model_type" else problem["msg"]
    if problem["type"] in ("extra_forbidden", "missing"):
        kind = "unknown" if problem["type"] == "extra_forbidden" else "missing"
        text = f"{kind} field {_path([loc.pop()])!r}"
    first_index = next((i for i, part in enumerate(loc) if isinstance(part, int)), None)
    if first_index is None:
        if not problem["loc"]:
            return param, f"the request body: {text}"
        return param, f"`{_path(loc)}`: {text}" if loc else text
    place, inside = _path(loc[: first_index + 1]), _path(loc[first_index + 1 :])
    return param, f"{place}, field {inside!r}: {text}" if inside else f"{place}: {text}"


def _path(loc: list) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


TOO_DEEP = "{what} is JSON nested too deeply to parse; an item nests a few levels at most"


def json_body(body: bytes) -> Any:
    """The JSON of a request body; a 400 when it is not JSON or nested too deeply to parse."""
    try:
        return json.loads(body)
    except RecursionError:
        raise RequestError(TOO_DEEP.format(what="the request body")) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(
            f"the request body is not valid JSON ({error}); send Content-Type: application/json"
        ) from None


def parse_json_string(value: Any, index: int, field: str) -> Any:
    """A v2 BYTES element: a JSON object string is an item, any other string is plain text."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError(f"{field}[{index}] is not UTF-8 text", f"{field}[{index}]") from None
    if not isinstance(value, str):
        raise RequestError(
            f"{field}[{index}] must be a string (an item as JSON, or plain text), "
            f"got {_type_name(value)}",
            f"{field}[{index}]",
        )
    if value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except RecursionError:
            raise RequestError(
                TOO_DEEP.format(what=f"{field}[{index}]"), f"{field}[{index}]"
            ) from None
        except json.JSONDecodeError as error:
            raise RequestError(
                f"{field}[{index}] starts with '{{' but is not a valid JSON item: {error}",
                f"{field}[{index}]",
            ) from None
    return value


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__
