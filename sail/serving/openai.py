"""OpenAI-compatible embeddings route, mounted on the kserve app.

`build_openai_router(model: SailEmbeddingModel) -> APIRouter` serves `POST /openai/v1/embeddings`,
with OpenAI-shaped errors.

Request (`sail.serving.schema.EmbeddingRequest`; unknown fields are refused, naming the field):

    {"model": "sail-embedding", "input": "text" | ["text", ...] | [item objects or texts],
     "dimensions": 64, "encoding_format": "float" | "base64" | "int8" | "binary", "user": "...",
     "side": "target" | "query", "instruction": "..."}

`side` and `instruction` are our extensions (as the v1 and v2 parameters); `user` is accepted and
ignored. `dimensions` is one of the model's Matryoshka sizes (default: the full size).
`encoding_format` "int8" and "binary" return compact codes of the vector at that size
(`model_code.compact`): `dimensions` integers in -127..127, or `dimensions / 8` integers in
0..255 holding the signs' bits, first value in the most significant bit.

Response: `{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [...],
base64 of the little-endian float32 bytes, or the codes}], "model": "sail-embedding", "usage":
{"prompt_tokens": n, "total_tokens": n}}`. Usage counts each item's text tokens with the model's
own tokenizer, as the fuser reads them (cut at the model's `max_text_tokens`; instruction, template
and media tokens not counted), so an image-only item counts 0.

Errors: `{"error": {"message", "type": "invalid_request_error", "param", "code"}}` with status
400 (bad field, item or size), 404 (another model name), 413 (body too large), 503 (too much work
waiting for the model; type `overloaded_error`) and 504 (not answered within the request
deadline; type `timeout_error`), both with a Retry-After header.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from model_code import compact
from sail.serving.batching import DeadlineExceeded, Overloaded
from sail.serving.limits import RequestError
from sail.serving.schema import EmbeddingRequest, json_body, parse

if TYPE_CHECKING:
    from sail.serving.model import SailEmbeddingModel

OPENAI_PREFIX = "/openai/v1"
RETRY_AFTER = {"Retry-After": "1"}
ERROR_TYPES = {404: "not_found_error", 503: "overloaded_error", 504: "timeout_error"}


def build_openai_router(model: SailEmbeddingModel) -> APIRouter:
    """The `/openai/v1/embeddings` route for `model`."""
    router = APIRouter(prefix=OPENAI_PREFIX, tags=["OpenAI"])

    @router.post("/embeddings", response_model=None)
    async def embeddings(request: Request) -> dict | JSONResponse:
        try:
            body = parse(EmbeddingRequest, json_body(await request.body()), model.checks)
            return await _embeddings(model, body)
        except RequestError as error:
            return openai_error(error.message, error.status, error.param)
        except Overloaded as error:
            return openai_error(str(error), 503, headers=RETRY_AFTER)
        except DeadlineExceeded as error:
            return openai_error(str(error), 504, headers=RETRY_AFTER)

    return router


async def _embeddings(model: SailEmbeddingModel, request: EmbeddingRequest) -> dict:
    if request.model != model.name:
        raise RequestError(
            f"model {request.model!r} not found; this server serves {model.name!r}", "model", 404
        )
    result = await model.embed(
        request.to_items(),
        dim=request.dimensions,
        side=request.side,
        instruction=request.instruction,
        field="input",
        route="openai",
    )
    data = [
        {"object": "embedding", "index": index, "embedding": embedding}
        for index, embedding in enumerate(_encoded(result.vectors, request.encoding_format))
    ]
    tokens = sum(result.tokens)
    return {
        "object": "list",
        "data": data,
        "model": model.name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _encoded(vectors: np.ndarray, encoding_format: str) -> list[list[float] | list[int] | str]:
    """Each vector as the request asked: floats, base64 of its float32 bytes, or compact codes."""
    if encoding_format == "base64":
        return [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in vectors]
    if encoding_format == "float":
        return vectors.tolist()
    try:
        return compact.encode(vectors, encoding_format).tolist()
    except ValueError as error:  # binary codes of a size that is not a multiple of 8
        raise RequestError(str(error), "encoding_format") from None


def openai_error(
    message: str, status: int = 400, param: str | None = None, headers: dict | None = None
) -> JSONResponse:
    kind = ERROR_TYPES.get(status, "invalid_request_error")
    code = "model_not_found" if status == 404 else None
    return JSONResponse(
        status_code=status,
        headers=headers,
        content={"error": {"message": message, "type": kind, "param": param, "code": code}},
    )
