"""The KServe model: `SailEmbeddingModel`, named "sail-embedding".

`SailEmbeddingModel(name="sail-embedding", model_uri="models:/sail-embedding@champion", *,
embedder=None, device="cpu", limits=Limits(), max_batch_size=32, max_wait_ms=5.0, version=None)`

- `version`: the registered version served, reported in the v2 metadata (`versions`); by default
  the one a pinned `models:/NAME/VERSION` names (None for a folder).

- `load()` first pins an alias: `models:/NAME@ALIAS` becomes the `models:/NAME/VERSION` it names
  at that moment (`pin_alias`), so a moved alias never changes what a running server serves. It
  then resolves `model_uri` to a model folder (`resolve_model_dir`: a saved model folder as
  it is; anything else, such as `models:/sail-embedding@champion` or a local MLflow model folder,
  through `sail.tracking.pyfunc.model_dir_from_uri`, imported only then), builds the `Embedder`
  (unless one was given) and starts the `MicroBatcher`, whose one worker thread runs every
  forward pass.
- v1 (`POST /v1/models/sail-embedding:predict`, Content-Type application/json):
  `{"instances": [item-or-string, ...], "parameters": {"dim": 64, "side": "query",
  "instruction": "..."}}` -> `{"predictions": [[float, ...], ...]}`.
- v2 (`POST /v2/models/sail-embedding/infer`): one BYTES input "items" whose elements are items
  as JSON object strings or plain texts; optional request parameters `dim`, `side`,
  `instruction`, `binary_data_output` -> one FP32 output "embeddings" of shape [n, dim]. A request
  without an id gets a fresh one.
- `await model.embed(items, dim, side, instruction, field, route)` -> `Embeddings(vectors,
  tokens)`: what every route (the OpenAI one too) calls; client problems raise `RequestError`.

Parameters: `dim` is one of the model's Matryoshka sizes (default: the full size), `side` is
"target" (default) or "query" and picks the instruction, `instruction` replaces it (at most 64
tokens).
Vectors are float32 unit vectors, equal to `Embedder.embed` for the same items.
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from kserve import Model
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from model_code.embed import Embedder
from model_code.factory import CONFIG_FILE
from model_code.items import Item, ItemError
from model_code.model import truncate
from sail.serving.batching import ItemFailed, MicroBatcher
from sail.serving.cost import item_cost
from sail.serving.limits import Limits, RequestError, item_error
from sail.serving.metrics import BATCH_SIZE, FORWARD_SECONDS, ITEMS
from sail.serving.schema import Checks, V1Request, V2Request, json_body, parse, parse_json_string

logger = logging.getLogger(__name__)

MODEL_NAME = "sail-embedding"
DEFAULT_MODEL_URI = "models:/sail-embedding@champion"
V2_INPUT = "items"
V2_OUTPUT = "embeddings"
MAX_INSTRUCTION_TOKENS = 64
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
_PINNED = re.compile(r"models:/[^/@]+/(\d+)")
_ALIAS = re.compile(r"models:/([^/@]+)@([A-Za-z0-9_-]+)")


def pinned_version(uri: str | Path) -> str | None:
    """The version a `models:/NAME/VERSION` URI pins; None for anything else."""
    match = _PINNED.fullmatch(str(uri))
    return match[1] if match else None


def pin_alias(uri: str | Path) -> str:
    """`models:/NAME@ALIAS` as the `models:/NAME/VERSION` the alias names now, so that the server
    keeps serving (and reporting) that version whatever the alias does later; any other URI as
    it is."""
    match = _ALIAS.fullmatch(str(uri))
    if match is None:
        return str(uri)
    import mlflow

    from sail.tracking.store import connect

    connect()
    version = mlflow.MlflowClient().get_model_version_by_alias(match[1], match[2]).version
    return f"models:/{match[1]}/{version}"


def resolve_model_dir(uri: str | Path) -> Path:
    """The saved model folder for `uri`: a local folder holding config.json as it is (no MLflow
    import); anything else (`models:/name@alias`, `runs:/...`, a local MLflow pyfunc folder such
    as KServe's /mnt/models) through `sail.tracking.pyfunc.model_dir_from_uri`."""
    text = str(uri)
    path = Path(text[len("file://") :] if text.startswith("file://") else text).expanduser()
    if (path / CONFIG_FILE).is_file():
        return path
    if path.exists() or _SCHEME.match(text):
        from sail.tracking.pyfunc import model_dir_from_uri

        return Path(model_dir_from_uri(text))
    raise FileNotFoundError(f"model folder not found: {text}")


class ModelFailure(RuntimeError):
    """An item the model failed on in the forward pass, alone: a server fault (500), whose
    details go to the log and never into the response."""

    def __init__(self, item_id: str, error: Exception):
        super().__init__(f"item {item_id!r} failed in the forward pass: {error!r}")


@dataclass
class Embeddings:
    """One request's unit vectors [n, dim] (float32) and the text tokens each item used."""

    vectors: np.ndarray
    tokens: list[int]


class SailEmbeddingModel(Model):
    """KServe model serving the embedder through a micro-batcher (see the module doc)."""

    def __init__(
        self,
        name: str = MODEL_NAME,
        model_uri: str | Path = DEFAULT_MODEL_URI,
        *,
        embedder: Embedder | None = None,
        device: str = "cpu",
        limits: Limits | None = None,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        version: str | None = None,
        precision: str = "fp32",
    ):
        super().__init__(name)
        self.model_uri = str(model_uri)
        self.version = version or pinned_version(model_uri)
        self.embedder = embedder
        self.device = device
        self.precision = precision
        self.limits = limits or Limits()
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.batcher: MicroBatcher | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def load(self) -> bool:
        if self.embedder is None:
            self.model_uri = pin_alias(self.model_uri)
            self.version = self.version or pinned_version(self.model_uri)
            folder = resolve_model_dir(self.model_uri)
            logger.info("loading %s version %s from %s", self.name, self.version, folder)
            self.embedder = Embedder.from_pretrained(
                folder, device=self.device, precision=self.precision
            )
        if self.batcher is None or self.batcher.closed:
            self.batcher = MicroBatcher(
                self._run_batch,
                max_batch_size=self.max_batch_size,
                max_wait_ms=self.max_wait_ms,
                name=f"{self.name}-batcher",
                on_batch=BATCH_SIZE.observe,
                max_queued_items=self.limits.max_queued_items,
                max_queued_cost=self.limits.max_queued_cost,
                cost=item_cost,
            )
            self.batcher.start()
        self.ready = True
        return self.ready

    def stop(self) -> None:
        self.ready = False
        if self.batcher is not None:
            self.batcher.close()

    @property
    def dims(self) -> tuple[int, ...]:
        return tuple(self._embedder().dims)

    @property
    def full_dim(self) -> int:
        return self._embedder().model.config.embed_dim

    @property
    def checks(self) -> Checks:
        """What the request schema checks against: the limits and the model's sizes."""
        return Checks(self.limits, self.dims)

    def _embedder(self) -> Embedder:
        if self.embedder is None:
            raise RuntimeError(f"model {self.name!r} is not loaded")
        return self.embedder

    # --- shared by all routes ------------------------------------------------------------

    async def embed(
        self,
        items: Sequence[Item],
        dim: int | None = None,
        side: str = "target",
        instruction: str | None = None,
        field: str = "instances",
        route: str = "python",
    ) -> Embeddings:
        """Embed validated items (`sail.serving.schema`) through the batcher, within the
        request deadline (`Limits.deadline_s`, else DeadlineExceeded); an item that cannot be
        decoded raises a RequestError naming `field[index]` and the item's field."""
        embedder = self._embedder()
        if self.batcher is None:
            raise RuntimeError(f"model {self.name!r} is not loaded")
        dim = embedder.model.config.check_dim(dim)
        if instruction is not None:
            tokens = len(embedder.processor.tokenizer(instruction)["input_ids"])
            if tokens > MAX_INSTRUCTION_TOKENS:
                raise RequestError(
                    f"the instruction has {tokens} tokens; at most {MAX_INSTRUCTION_TOKENS}",
                    "instruction",
                )
        instruction = instruction or embedder.processor.instruction(side)
        try:
            results = await self.batcher.submit(
                (dim, instruction), items, timeout_s=self.limits.deadline_s
            )
        except ItemFailed as failure:
            error = failure.error
            if isinstance(error, ModelFailure):
                raise error from None  # a 500 without its text (`internal_error_handler`)
            if not isinstance(error, ItemError):
                error = ItemError(items[failure.index].id, None, f"cannot be read: {error}")
            raise item_error(error, field, failure.index) from None
        ITEMS.labels(route=route).inc(len(items))
        vectors = np.stack([vector for vector, _ in results]).astype(np.float32, copy=False)
        return Embeddings(vectors, [tokens for _, tokens in results])

    def _run_batch(self, key: tuple[int, str], items: list[Item]) -> list[Any]:
        """In the batcher's thread: decode each item (a bad one fails alone), then one forward
        pass over the rest. Returns (vector, text tokens) or the exception, per item."""
        dim, instruction = key
        embedder = self._embedder()
        processor = embedder.processor
        started = time.perf_counter()
        results: list[Any] = [None] * len(items)
        prepared, rows, tokens = [], [], []
        for row, item in enumerate(items):
            try:  # everything item-specific happens here, so a bad item fails alone
                ready = processor.prepare(item)
                if not ready.modalities:
                    raise ItemError(
                        item.id, None, "no usable modality (its text is empty once cleaned)"
                    )
                count = self._count_tokens(ready.text, item.id)
            except Exception as error:
                results[row] = error
                continue
            prepared.append(ready)
            rows.append(row)
            tokens.append(count)
        if prepared:
            try:
                vectors = list(self._forward(prepared, instruction, dim))
            except Exception:  # find the item(s) it fails on; the others still get vectors
                logger.exception("a batch of %d failed; embedding its items one by one", len(rows))
                vectors = [self._forward_alone(ready, instruction, dim) for ready in prepared]
            for row, vector, count in zip(rows, vectors, tokens, strict=True):
                results[row] = vector if isinstance(vector, Exception) else (vector, count)
        FORWARD_SECONDS.observe(time.perf_counter() - started)
        return results

    def _forward(self, prepared: list, instruction: str, dim: int) -> np.ndarray:
        """One forward pass over prepared items: [n, dim] float32 vectors."""
        embedder = self._embedder()
        with torch.inference_mode():
            inputs = embedder.processor.collate(prepared, instruction).to(embedder.device)
            return truncate(embedder.model(inputs).float(), dim).cpu().numpy()

    def _forward_alone(self, ready, instruction: str, dim: int) -> np.ndarray | Exception:
        """One item's vector, or the exception its forward pass raised (logged here)."""
        try:
            return self._forward([ready], instruction, dim)[0]
        except Exception as error:
            logger.exception("item %r failed in the forward pass", ready.item_id)
            return ModelFailure(ready.item_id, error)

    def _count_tokens(self, text: str, item_id: str) -> int:
        """Text tokens of one item as the fuser reads them (instruction and template left out);
        also checks that the tokenizer takes the text (a lone surrogate, say, it does not)."""
        if not text:
            return 0
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ItemError(item_id, None, f"text is not valid Unicode: {error.reason}") from None
        embedder = self._embedder()
        ids = embedder.processor.tokenizer(text, add_special_tokens=False)["input_ids"]
        return min(len(ids), embedder.model.config.fuser.max_text_tokens)

    # --- kserve v1 and v2 ----------------------------------------------------------------

    def validate(self, payload: Any) -> Any:
        """No kserve-side checks: they depend on a process-wide predictor config (and can fail
        with a TypeError on a raw body); `predict` validates every request itself."""
        return payload

    async def predict(
        self,
        payload: dict | InferRequest | bytes,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict | InferResponse:
        if isinstance(payload, InferRequest):
            return await self._predict_v2(payload)
        return await self._predict_v1(payload)

    async def _predict_v1(self, payload: Any) -> dict:
        if isinstance(payload, bytes | bytearray):
            # kserve passes the raw body on when the Content-Type is not exactly
            # application/json (e.g. with "; charset=utf-8"): read it as JSON all the same.
            payload = json_body(bytes(payload))
        request = parse(V1Request, payload, self.checks)
        parameters = request.parameters
        result = await self.embed(
            request.to_items(),
            dim=parameters.dim,
            side=parameters.side,
            instruction=parameters.instruction,
            field="instances",
            route="v1",
        )
        return {"predictions": result.vectors.tolist()}

    async def _predict_v2(self, infer: InferRequest) -> InferResponse:
        names = [infer_input.name for infer_input in infer.inputs]
        if names != [V2_INPUT]:
            raise RequestError(
                f"a v2 request needs exactly one BYTES input named {V2_INPUT!r}; got {names}",
                "inputs",
            )
        for output in infer.request_outputs or []:
            if output.name != V2_OUTPUT:
                raise RequestError(
                    f"unknown output {output.name!r}; this model returns {V2_OUTPUT!r}", "outputs"
                )
        values = _bytes_values(infer.inputs[0])
        raw = [parse_json_string(value, i, V2_INPUT) for i, value in enumerate(values)]
        request = parse(V2Request, {"parameters": infer.parameters, V2_INPUT: raw}, self.checks)
        parameters = request.parameters
        result = await self.embed(
            request.to_items(),
            dim=parameters.dim,
            side=parameters.side,
            instruction=parameters.instruction,
            field=V2_INPUT,
            route="v2",
        )
        output = InferOutput(
            name=V2_OUTPUT, shape=list(result.vectors.shape), datatype="FP32", data=result.vectors
        )
        return InferResponse(
            response_id=infer.id or uuid.uuid4().hex,
            model_name=self.name,
            infer_outputs=[output],
            use_binary_outputs=parameters.binary_data_output,
            requested_outputs=infer.request_outputs,
        )

    def get_input_types(self) -> list[dict]:
        return [{"name": V2_INPUT, "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict]:
        return [{"name": V2_OUTPUT, "datatype": "FP32", "shape": [-1, self.full_dim]}]


def _bytes_values(infer_input) -> list[Any]:
    """The elements of a BYTES input (JSON `data`, or the binary extension's raw data)."""
    where = f"input {infer_input.name!r}"
    if infer_input.datatype != "BYTES":
        raise RequestError(f"{where} must have datatype BYTES, got {infer_input.datatype!r}")
    shape = infer_input.shape
    if not isinstance(shape, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise RequestError(f"{where} has an invalid shape {shape!r}")
    if getattr(infer_input, "_raw_data", None) is not None:
        try:
            values = list(infer_input.as_numpy().reshape(-1))
        except Exception as error:
            raise RequestError(f"{where}: cannot read its binary data: {error}") from None
    else:
        values = _flatten(infer_input.data)
    if math.prod(shape) != len(values):
        raise RequestError(f"{where} has shape {shape} but {len(values)} element(s)")
    return values


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    values, stack = [], [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            values.append(value)
        else:
            stack.pop()
    return values
