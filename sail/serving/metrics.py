"""Prometheus metrics of the embedding server, on the default registry that kserve's `/metrics`
serves (next to kserve's own `request_predict_seconds` and friends).

- `sail_serving_requests_total{route, code}`: requests to the embedding routes (`route` is `v1`,
  `v2` or `openai`; `code` the HTTP status), counted by the `RequestMetrics` ASGI middleware, so
  requests refused before the model (413, 422) count too.
- `sail_serving_items_total{route}`: items embedded.
- `sail_serving_batch_size`: items per forward pass (histogram).
- `sail_serving_forward_seconds`: time per forward pass, decoding included (histogram).
"""

from __future__ import annotations

import re

from prometheus_client import Counter, Histogram

REQUESTS = Counter("sail_serving_requests", "Requests to the embedding routes", ["route", "code"])
ITEMS = Counter("sail_serving_items", "Items embedded", ["route"])
BATCH_SIZE = Histogram(
    "sail_serving_batch_size",
    "Items per forward pass",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
FORWARD_SECONDS = Histogram(
    "sail_serving_forward_seconds",
    "Seconds per forward pass, media decoding included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

_ROUTES = (
    (re.compile(r"^/v1/models/[^/]+:predict$"), "v1"),
    (re.compile(r"^/v2/models/[^/]+(/versions/[^/]+)?/infer$"), "v2"),
    (re.compile(r"^/openai/v1/embeddings$"), "openai"),
)


def route_of(path: str) -> str | None:
    """The route label of an embedding request path; None for other paths (health, metrics)."""
    for pattern, name in _ROUTES:
        if pattern.match(path):
            return name
    return None


class RequestMetrics:
    """ASGI middleware counting the embedding routes' requests by status code."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        route = route_of(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def watch(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            REQUESTS.labels(route=route, code=str(status["code"])).inc()
