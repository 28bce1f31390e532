"""Request limits and the errors shared by the v1, v2 and OpenAI routes.

- `Limits(max_request_bytes=8 MiB, max_items=256, allow_local_paths=False,
  max_queued_items=1024, max_queued_cost=32,000,000, deadline_s=30.0)`: the most bytes one
  request body may have (larger: 413), the most items one request may embed (more: 400), whether
  items may name files on the server's disk (off: media must be `data:` URLs, so a client cannot
  make the server read its files), the most items and the most cost units (`sail.serving.cost`)
  that may wait for the model across requests (more: 503 with Retry-After, so a burst is shed
  instead of queueing without bound), and how long a request may wait for its vectors (longer:
  504 with Retry-After; its items still queued are dropped). The request schema
  (`sail.serving.schema`) checks the per-request ones.
- `RequestError(message, param=None, status=400)`: a client error; a subclass of kserve's
  InvalidInput, so kserve's handlers answer 400 `{"error": message}` on the v1 and v2 routes.
- `item_error(error, field, index)`: an ItemError met while decoding item `index` as a 400.
- `BodySizeLimit(app, max_bytes)`: ASGI middleware answering 413 before a large body is read
  into the app (it checks Content-Length, and counts the bytes of a chunked body).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kserve.errors import InvalidInput

from model_code.items import ItemError

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (see the module doc)."""

    max_request_bytes: int = 8 * MiB
    max_items: int = 256
    allow_local_paths: bool = False
    max_queued_items: int = 1024
    max_queued_cost: int = 32_000_000
    deadline_s: float = 30.0

    def __post_init__(self) -> None:
        counts = (self.max_request_bytes, self.max_items, self.max_queued_items)
        if min(*counts, self.max_queued_cost) < 1:
            raise ValueError(
                "max_request_bytes, max_items, max_queued_items and max_queued_cost must be at "
                "least 1"
            )
        if self.deadline_s <= 0:
            raise ValueError("deadline_s must be more than 0")


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


def item_error(error: ItemError, field: str, index: int) -> RequestError:
    """An ItemError from parsing or decoding item `index` as a 400 that names where it is."""
    where = f"{field}[{index}]"
    return RequestError(f"{where}: {error}", f"{where}.{error.field_name or 'id'}")


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
