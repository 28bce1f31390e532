"""OpenAI-compatible embeddings route, mounted on the kserve app.

`build_openai_router(model: SailEmbeddingModel) -> APIRouter` serves `POST /openai/v1/embeddings`;
`install_openai_errors(app)` makes errors on `/openai/...` paths OpenAI-shaped.

Request (unknown fields are refused, naming the field):

    {"model": "sail-embedding", "input": "text" | ["text", ...] | [item objects or texts],
     "dimensions": 64, "encoding_format": "float" | "base64", "user": "...",
     "side": "target" | "query", "instruction": "..."}

`side` and `instruction` are our extensions (as the v1 and v2 parameters); `user` is accepted and
ignored. `dimensions` is one of the model's Matryoshka sizes (default: the full size).

Response: `{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [...] or
base64 of the little-endian float32 bytes}], "model": "sail-embedding", "usage": {"prompt_tokens":
n, "total_tokens": n}}`. Usage counts each item's text tokens with the model's own tokenizer, as the
fuser reads them (cut at the model's `max_text_tokens`; instruction, template and media tokens not
counted), so an image-only item counts 0.

Errors: `{"error": {"message", "type": "invalid_request_error", "param", "code"}}` with status
400 (bad field, item or size), 404 (another model name), 413 (body too large), 503 (too many items
waiting for the model; type `overloaded_error`, with a Retry-After header).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictInt

from sail.serving.batching import Overloaded
from sail.serving.limits import RequestError, check_instruction, parse_items

if TYPE_CHECKING:
    from sail.serving.model import SailEmbeddingModel

OPENAI_PREFIX = "/openai/v1"
RETRY_AFTER = {"Retry-After": "1"}


class EmbeddingRequest(BaseModel):
    """OpenAI's embeddings request, plus `side` and `instruction`."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str
    input: str | list[str | dict[str, Any]]
    dimensions: StrictInt | None = None
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None
    side: Literal["query", "target"] = "target"
    instruction: str | None = None


def build_openai_router(model: SailEmbeddingModel) -> APIRouter:
    """The `/openai/v1/embeddings` route for `model`."""
    router = APIRouter(prefix=OPENAI_PREFIX, tags=["OpenAI"])

    @router.post("/embeddings", response_model=None)
    async def embeddings(request: EmbeddingRequest) -> dict | JSONResponse:
        try:
            return await _embeddings(model, request)
        except RequestError as error:
            return openai_error(error.message, error.status, error.param)
        except Overloaded as error:
            return openai_error(str(error), 503, headers=RETRY_AFTER)

    return router


async def _embeddings(model: SailEmbeddingModel, request: EmbeddingRequest) -> dict:
    if request.model != model.name:
        raise RequestError(
            f"model {request.model!r} not found; this server serves {model.name!r}", "model", 404
        )
    items = parse_items(request.input, model.limits, "input")
    result = await model.embed(
        items,
        dim=request.dimensions,
        side=request.side,
        instruction=check_instruction(request.instruction),
        field="input",
        route="openai",
    )
    data = []
    for index, vector in enumerate(result.vectors):
        if request.encoding_format == "base64":
            embedding: list[float] | str = base64.b64encode(vector.astype("<f4").tobytes()).decode(
                "ascii"
            )
        else:
            embedding = vector.tolist()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(result.tokens)
    return {
        "object": "list",
        "data": data,
        "model": model.name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def openai_error(
    message: str, status: int = 400, param: str | None = None, headers: dict | None = None
) -> JSONResponse:
    kind = {404: "not_found_error", 503: "overloaded_error"}.get(status, "invalid_request_error")
    code = "model_not_found" if status == 404 else None
    return JSONResponse(
        status_code=status,
        headers=headers,
        content={"error": {"message": message, "type": kind, "param": param, "code": code}},
    )


def install_openai_errors(app: FastAPI) -> None:
    """Body validation errors on `/openai/...` become OpenAI-shaped 400s naming the field; other
    paths keep FastAPI's 422 `{"detail": [{"type", "loc", "msg"}]}`, without FastAPI's echo of
    the input (which fails to encode, as a 500, when the body held NaN or Infinity)."""

    async def handler(request: Request, exc: RequestValidationError):
        if not request.url.path.startswith("/openai/"):
            detail = [
                {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")}
                for e in exc.errors()
            ]
            return JSONResponse(status_code=422, content={"detail": detail})
        problems = [_describe(error) for error in exc.errors()]
        param = next((p for p, _ in problems if p), None)
        return openai_error("; ".join(message for _, message in problems), 400, param)

    app.add_exception_handler(RequestValidationError, handler)


def _describe(error: dict) -> tuple[str | None, str]:
    loc = [str(part) for part in error.get("loc", ()) if part != "body"]
    name = ".".join(loc) or None
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return name, f"unknown field {name!r}"
    if kind == "missing":
        return name, f"missing field {name!r}"
    if kind == "json_invalid":
        return None, f"the body is not valid JSON: {error.get('ctx', {}).get('error', '')}".rstrip(
            ": "
        )
    if name is None:
        return None, f"request body: {error.get('msg', 'invalid')}"
    return name, f"{name}: {error.get('msg', 'invalid')}"
