"""Request limits and validation shared by the v1, v2 and OpenAI routes.

- `Limits(max_request_bytes=8 MiB, max_items=256, allow_local_paths=False,
  max_queued_items=1024)`: the most bytes one request body may have (larger: 413), the most items
  one request may embed (more: 400), whether items may name files on the server's disk (off: media
  must be `data:` URLs, so a client cannot make the server read its files), and the most items
  that may wait for the model across requests (more: 503 with Retry-After, so a burst is shed
  instead of queueing without bound).
- `RequestError(message, param=None, status=400)`: a client error; a subclass of kserve's
  InvalidInput, so kserve's handlers answer 400 `{"error": message}` on the v1 and v2 routes.
- `parse_items(values, limits, field)`: raw inputs (item objects or plain strings) -> Items.
  A plain string is a text-only item (its text becomes the title); an object without `id` gets
  its position as id. Errors name the position, e.g. `instances[2], field 'image': ...`.
- `check_dim(dim, dims)`, `check_side(side)`: the Matryoshka size and the side; messages list
  the allowed values.
- `BodySizeLimit(app, max_bytes)`: ASGI middleware answering 413 before a large body is read
  into the app (it checks Content-Length, and counts the bytes of a chunked body).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kserve.errors import InvalidInput

from model_code.config import SIDES
from model_code.items import ItemError, parse_item

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (see the module doc)."""

    max_request_bytes: int = 8 * MiB
    max_items: int = 256
    allow_local_paths: bool = False
    max_queued_items: int = 1024

    def __post_init__(self) -> None:
        if min(self.max_request_bytes, self.max_items, self.max_queued_items) < 1:
            raise ValueError("max_request_bytes, max_items and max_queued_items must be at least 1")


class RequestError(InvalidInput):
    """A client error: HTTP `status` (400 unless said otherwise) with a message naming the
    problem and, where there is one, the request field (`param`)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status

    def __str__(self) -> str:
        return self.message


def parse_items(values: Any, limits: Limits, field: str) -> list:
    """Validate a request's list of items (objects or plain strings) and return Items."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        raise RequestError(
            f"`{field}` must be a list of items or strings, got {_type_name(values)}", field
        )
    if not values:
        raise RequestError(f"`{field}` is empty: send at least one item or string", field)
    if len(values) > limits.max_items:
        raise RequestError(
            f"`{field}` has {len(values)} items; at most {limits.max_items} per request", field
        )
    return [parse_one(value, index, limits, field) for index, value in enumerate(values)]


def parse_one(value: Any, index: int, limits: Limits, field: str):
    """One raw input -> an Item; a plain string is a text-only item with id = its position."""
    where = f"{field}[{index}]"
    if isinstance(value, str):
        if not value.strip():
            raise RequestError(f"{where} is a blank string", where)
        value = {"id": str(index), "title": value}
    elif isinstance(value, dict):
        if "id" not in value:
            value = {"id": str(index), **value}
    else:
        raise RequestError(
            f"{where} must be an item object or a string, got {_type_name(value)}", where
        )
    try:
        item = parse_item(value, base_dir=None)
    except ItemError as error:
        raise item_error(error, field, index) from None
    if not limits.allow_local_paths:
        for name, refs in (
            ("image", [item.image]),
            ("frames", item.frames),
            ("audio", [item.audio]),
        ):
            if any(ref and not ref.startswith("data:") for ref in refs):
                raise item_error(
                    ItemError(
                        item.id, name, "media must be data: URLs (this server reads no files)"
                    ),
                    field,
                    index,
                )
    return item


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
        except json.JSONDecodeError as error:
            raise RequestError(
                f"{field}[{index}] starts with '{{' but is not a valid JSON item: {error}",
                f"{field}[{index}]",
            ) from None
    return value


def item_error(error: ItemError, field: str, index: int) -> RequestError:
    """An ItemError from parsing or decoding item `index` as a 400 that names where it is."""
    where = f"{field}[{index}]"
    return RequestError(f"{where}: {error}", f"{where}.{error.field_name or 'id'}")


def check_dim(dim: Any, dims: Sequence[int], field: str = "dim") -> int | None:
    """None (the full size) or one of the model's Matryoshka sizes."""
    if dim is None:
        return None
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise RequestError(f"`{field}` must be an integer, one of {list(dims)}; got {dim!r}", field)
    if dim not in dims:
        raise RequestError(
            f"unsupported {field} {dim}: this model serves sizes {list(dims)}", field
        )
    return dim


def check_side(side: Any, field: str = "side") -> str:
    """'query' or 'target' (the default)."""
    if side is None:
        return "target"
    if side not in SIDES:
        raise RequestError(f"`{field}` must be one of {list(SIDES)}, got {side!r}", field)
    return side


MAX_INSTRUCTION_CHARS = 1000


def check_instruction(instruction: Any, field: str = "instruction") -> str | None:
    """None (the side's default instruction) or a non-blank string of at most 1000 characters
    (the model checks its token count)."""
    if instruction is None:
        return None
    if not isinstance(instruction, str) or not instruction.strip():
        raise RequestError(f"`{field}` must be a non-empty string", field)
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        raise RequestError(
            f"`{field}` is {len(instruction)} characters; at most {MAX_INSTRUCTION_CHARS}", field
        )
    try:
        instruction.encode("utf-8")
    except UnicodeEncodeError as error:
        raise RequestError(f"`{field}` is not valid Unicode: {error.reason}", field) from None
    return instruction


def check_keys(data: dict, known: Sequence[str], where: str) -> None:
    unknown = sorted(str(key) for key in set(data) - set(known))
    if unknown:
        raise RequestError(
            f"unknown field(s) {unknown} in {where}; known: {list(known)}",
            f"{where}.{unknown[0]}" if where != "request" else unknown[0],
        )


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over `max_bytes` (see the module doc)."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _reject(send, 400, "invalid Content-Length header")
                return
            if declared > self.max_bytes:
                await self._drain(receive)
                await _reject(send, 413, self._too_large(declared))
                return
        # Read the body here (bounded), then replay it to the app.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # a disconnect: let the app see it
                replay = [message]
                break
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await self._drain(receive)
                await _reject(send, 413, self._too_large(size, at_least=True))
                return
            chunks.append(body)
            if not message.get("more_body", False):
                replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
                break

        async def replayed():
            if replay:
                return replay.pop(0)
            return await receive()

        await self.app(scope, replayed, send)

    async def _drain(self, receive) -> None:
        """Read and drop the rest of a rejected body (a bounded amount), so the client, still
        sending, reads the 413 instead of a reset connection."""
        dropped = 0
        while dropped <= 8 * self.max_bytes:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            dropped += len(message.get("body", b""))

    def _too_large(self, size: int, at_least: bool = False) -> str:
        got = f"{'more than ' if at_least else ''}{size} bytes"
        return f"request body too large ({got}); the limit is {self.max_bytes} bytes"


async def _reject(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
