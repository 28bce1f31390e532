"""The embedding server: kserve's REST server (v1, v2, health, /metrics) plus the OpenAI route, on
127.0.0.1 by default.

`build_server(model_uri="models:/sail-embedding@champion", host=None, port=8080,
max_batch_size=32, max_wait_ms=5.0, limits=None, device="cpu", model_name="sail-embedding",
embedder=None, grace_period=5, model_version=None, precision="fp32") -> SailServer` loads the
model (in `precision`: fp32, bf16 or int8, `model_code.precision`) and builds the app (nothing
listens yet). `host=None` means the `HOST` environment variable, else 127.0.0.1;
pass "0.0.0.0" (or set HOST) inside a container. `port=0` picks a free port (`server.port` says
which once started). `max_batch_size=1` switches micro-batching off. `model_version` is reported
in the v2 metadata and in the `x-sail-model-version` header of every response (default: the
version a pinned `models:/NAME/VERSION` names, or the one an alias names when the model loads).

`serve(...)` takes the same arguments, logs, and blocks until SIGINT/SIGTERM.

`SailServer`: `.run()` (blocking), `.start(timeout=30)` (in a background thread, returns once
listening; for tests and notebooks), `.stop()`, `.url`, `.model`, `.batcher`, `.app`; usable as a
context manager (start/stop).

Routes: `POST /v1/models/sail-embedding:predict`, `POST /v2/models/sail-embedding/infer`,
`POST /openai/v1/embeddings`, `GET /v2/health/live`, `GET /v2/health/ready`,
`GET /v2/models/sail-embedding` (metadata, with the served version in `versions` when known),
`GET /metrics` (Prometheus), `GET /docs` (the OpenAPI page; `/openapi.json`, with the request
schemas, `sail.serving.openapi`). No gRPC server. Request bodies are checked by
`sail.serving.schema`.
When more than `Limits.max_queued_items` items, or `Limits.max_queued_cost` cost units, would wait
for the model, every route answers 503 with Retry-After; a request not answered within
`Limits.deadline_s` gets a 504 with Retry-After, and its items not yet run are dropped.

How the host is bound: kserve 0.21's `RESTServer` hard-codes `uvicorn.Config(host="0.0.0.0")`
and registers its routes on the module-global app `kserve.model_server:app`; `ModelServer` has no
host option. `_LocalRESTServer` subclasses `RESTServer`, keeps its routes, middlewares and error
handlers, but sets `config.host` and builds them on a fresh FastAPI app per server (so several
servers can live in one process, and the OpenAI router and our middlewares can be added).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import RESTServer

from model_code.embed import Embedder
from sail.serving.batching import DeadlineExceeded, MicroBatcher, Overloaded
from sail.serving.limits import BodySizeLimit, Limits
from sail.serving.metrics import RequestMetrics
from sail.serving.model import DEFAULT_MODEL_URI, MODEL_NAME, ModelFailure, SailEmbeddingModel
from sail.serving.openai import OPENAI_PREFIX, RETRY_AFTER, build_openai_router
from sail.serving.openapi import document
from sail.serving.schema import EmbeddingRequest, V1Request

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
VERSION_HEADER = "x-sail-model-version"


def default_host() -> str:
    """The `HOST` environment variable, else 127.0.0.1 (never all interfaces by default)."""
    return os.environ.get("HOST") or DEFAULT_HOST


class _LocalRESTServer(RESTServer):
    """kserve's REST server on a given host and a fresh app (see the module doc)."""

    def __init__(self, app: FastAPI, host: str, **kwargs):
        super().__init__(app, **kwargs)  # uvicorn takes the app object itself (one worker)
        self.app = app
        self.config.host = host

    def create_application(self) -> None:
        self._add_middlewares(self.app)
        self._register_endpoints(self.app)
        self._add_exception_handlers(self.app)
        # Replaces kserve's catch-all, which put the exception's text in the body. Starlette
        # re-raises what reaches the catch-all, closing the connection after the answer; a
        # ModelFailure is expected, so it gets the same answer and the connection stays open.
        self.app.add_exception_handler(Exception, internal_error_handler)
        self.app.add_exception_handler(ModelFailure, internal_error_handler)


class VersionedDataPlane(DataPlane):
    """KServe's data plane, with the model's version in its v2 metadata (kserve 0.21 leaves
    `versions` out), and a liveness that fails once a model's batcher thread has stopped (the
    process would still answer, but never embed again: the kubelet should restart it)."""

    async def live(self) -> dict[str, str]:
        for name, model in self.model_registry.get_models().items():
            batcher = getattr(model, "batcher", None)
            if batcher is not None and not batcher.alive:
                logger.error("not live: the batcher of model %r has stopped", name)
                return {"status": "batcher stopped"}
        return await super().live()

    async def model_metadata(self, model_name: str) -> dict:
        metadata = await super().model_metadata(model_name)
        version = getattr(self.get_model_from_registry(model_name), "version", None)
        if version:
            metadata["versions"] = [version]
        return metadata


class SailServer:
    """A loaded model and the app serving it (see the module doc)."""

    def __init__(
        self,
        model: SailEmbeddingModel,
        host: str | None = None,
        port: int = DEFAULT_PORT,
        grace_period: int = 5,
    ):
        self.model = model
        self.host = host or default_host()
        self.port = port
        registry = ModelRepository()
        registry.update(model)
        self.app = FastAPI(
            title="SAIL-Embedding",
            description="Omni-modal embeddings: KServe v1 / v2 and OpenAI-compatible routes.",
            redoc_url=None,
        )
        self.app.include_router(build_openai_router(model))
        document(
            self.app,
            {
                ("/v1/models/{model_name}:predict", "post"): V1Request,
                (f"{OPENAI_PREFIX}/embeddings", "post"): EmbeddingRequest,
            },
        )
        self.app.add_exception_handler(RequestValidationError, validation_error_handler)
        self.app.add_exception_handler(Overloaded, retry_later_handler)
        self.app.add_exception_handler(DeadlineExceeded, retry_later_handler)
        self.app.add_middleware(BodySizeLimit, max_bytes=model.limits.max_request_bytes)
        self.app.add_middleware(RequestMetrics)  # outside the size limit: counts 413s too
        self.app.add_middleware(VersionHeader, model=model)  # outermost: on every response
        self._rest = _LocalRESTServer(
            self.app,
            self.host,
            data_plane=VersionedDataPlane(model_registry=registry),
            model_repository_extension=ModelRepositoryExtension(model_registry=registry),
            http_port=port,
            grace_period=grace_period,
        )
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._started = False

    @property
    def batcher(self) -> MicroBatcher:
        assert self.model.batcher is not None, "the model is not loaded"
        return self.model.batcher

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def serve_async(self) -> None:
        """Serve until the uvicorn server is told to exit; then stop the model."""
        if not self.model.ready:
            self.model.load()
        self._rest.create_application()
        self._started = True
        try:
            await self._rest._server.serve()
        finally:
            self.model.stop()

    def run(self) -> None:
        """Serve in this thread until SIGINT/SIGTERM (uvicorn handles them in the main thread)."""
        logger.info("serving %s on http://%s:%s", self.model.name, self.host, self.port)
        asyncio.run(self.serve_async())

    def start(self, timeout: float = 30.0) -> SailServer:
        """Serve in a background thread; returns once the socket listens (raises if not)."""
        if self._thread is not None:
            raise RuntimeError("the server was started already")
        uvicorn_server = self._rest._server

        def target() -> None:
            try:
                asyncio.run(self.serve_async())
            except BaseException as error:  # SystemExit when the port is taken
                self._error = error

        self._thread = threading.Thread(target=target, name="sail-serving", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not uvicorn_server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the server did not start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the server did not start within {timeout} s")
            self._thread.join(0.02)
        sockets = uvicorn_server.servers[0].sockets
        self.port = sockets[0].getsockname()[1]
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Ask uvicorn to exit and wait for the thread (started with `start`)."""
        self._rest._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        elif not self._started:
            self.model.stop()

    def __enter__(self) -> SailServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class VersionHeader:
    """ASGI middleware naming the served model version on every HTTP response
    (`VERSION_HEADER`), so that a client can search the catalogue rows of the same version."""

    def __init__(self, app, model: SailEmbeddingModel):
        self.app = app
        self.model = model

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def tag(message):
            if message["type"] == "http.response.start" and self.model.version is not None:
                headers = [*message.get("headers", [])]
                headers.append((VERSION_HEADER.encode(), str(self.model.version).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, tag)


async def internal_error_handler(request, error: Exception) -> JSONResponse:
    """Any other failure: a 500 whose body says where to look, never the exception's text
    (kserve's handler put it in the body); the log has the traceback, under an id both share."""
    incident = uuid.uuid4().hex[:12]
    logger.error("internal error %s on %s", incident, request.url.path, exc_info=error)
    message = f"internal error {incident}; the server log has the details"
    return JSONResponse(status_code=500, content={"error": message})


async def retry_later_handler(_request, error: Overloaded | DeadlineExceeded) -> JSONResponse:
    """v1 and v2: too much work waiting for the model is a 503, a request past its deadline a
    504; the client may retry either after a second."""
    status = 504 if isinstance(error, DeadlineExceeded) else 503
    return JSONResponse(status_code=status, content={"error": str(error)}, headers=RETRY_AFTER)


async def validation_error_handler(_request, error: RequestValidationError) -> JSONResponse:
    """A body kserve's routes refuse (v2 infer's own model): FastAPI's 422 `{"detail": [{"type",
    "loc", "msg"}]}`, without FastAPI's echo of the input (which fails to encode, as a 500, when
    the body held NaN or Infinity)."""
    detail = [
        {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")}
        for e in error.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": detail})


def build_server(
    model_uri: str | Path = DEFAULT_MODEL_URI,
    host: str | None = None,
    port: int = DEFAULT_PORT,
    max_batch_size: int = 32,
    max_wait_ms: float = 5.0,
    limits: Limits | None = None,
    device: str = "cpu",
    model_name: str = MODEL_NAME,
    embedder: Embedder | None = None,
    grace_period: int = 5,
    model_version: str | None = None,
    precision: str = "fp32",
) -> SailServer:
    """Load the model at `model_uri` (or use `embedder`) and build its server (see the module
    doc); call `.run()` or `.start()` on the result."""
    model = SailEmbeddingModel(
        model_name,
        model_uri,
        embedder=embedder,
        device=device,
        limits=limits,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        version=model_version,
        precision=precision,
    )
    model.load()
    return SailServer(model, host=host, port=port, grace_period=grace_period)


def serve(model_uri: str | Path = DEFAULT_MODEL_URI, **options) -> None:
    """Build the server (`build_server` options) and serve until interrupted (blocking)."""
    from kserve.logging import configure_logging

    configure_logging()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    build_server(model_uri, **options).run()
