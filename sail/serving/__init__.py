"""Serving the embedding model with KServe: v1, v2 and OpenAI-compatible routes on one app.

`build_server`, `serve`, `SailServer` (server.py), `SailEmbeddingModel` (model.py),
`MicroBatcher` (batching.py), `Limits` (limits.py). Names are imported lazily, so that
`python -m sail.serving` parses its arguments before kserve (which reads sys.argv on import).
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "build_server": "sail.serving.server",
    "serve": "sail.serving.server",
    "SailServer": "sail.serving.server",
    "SailEmbeddingModel": "sail.serving.model",
    "MicroBatcher": "sail.serving.batching",
    "Limits": "sail.serving.limits",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sail.serving' has no attribute {name!r}")
