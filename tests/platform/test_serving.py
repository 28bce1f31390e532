"""The embedding server over real HTTP on 127.0.0.1: v1, v2 and OpenAI routes, health, metrics,
micro-batching, binding."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import types

import httpx
import numpy as np
import pytest

from model_code.data.synthetic import png_bytes, shape_image, tone_wav
from model_code.embed import Embedder
from model_code.factory import save_pretrained
from model_code.items import Item
from model_code.media import to_data_url

pytestmark = pytest.mark.filterwarnings("ignore:ORJSONResponse is deprecated")

V1 = "/v1/models/sail-embedding:predict"
V2 = "/v2/models/sail-embedding/infer"
OPENAI = "/openai/v1/embeddings"


@pytest.fixture(scope="module")
def model_dir(tiny, tmp_path_factory):
    return save_pretrained(*tiny, tmp_path_factory.mktemp("serving") / "model")


@pytest.fixture(scope="module")
def reference(model_dir):
    """The same saved model, embedding in-process: what the server must reproduce."""
    return Embedder.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def server(model_dir):
    from sail.serving.server import build_server

    server = build_server(model_dir, port=0, max_batch_size=32, max_wait_ms=20).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def image_url(colour="red", shape="circle") -> str:
    return to_data_url(png_bytes(shape_image(colour, shape)), "image/png")


@pytest.fixture(scope="module")
def raw_items() -> list[dict]:
    """Text, image, text+image and video+audio+text items, as clients send them."""
    return [
        {"id": "t", "title": "A red circle on white", "tags": ["shapes", "red"]},
        {"id": "i", "image": image_url("blue", "square")},
        {"id": "ti", "title": "green triangle", "image": image_url("green", "triangle")},
        {
            "id": "v",
            "title": "a clip",
            "frames": [image_url("red", "circle"), image_url("blue", "circle")],
            "audio": to_data_url(tone_wav(440, 0.5), "audio/wav"),
        },
    ]


def expected(reference, raw: list[dict | str], dim=None, side="target") -> np.ndarray:
    items = [
        Item(id=str(i), title=r) if isinstance(r, str) else Item(**r) for i, r in enumerate(raw)
    ]
    return reference.embed(items, dim=dim, side=side).vectors


def assert_same(got, want):
    got = np.asarray(got, dtype=np.float32)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.all(np.sum(got * want, axis=1) > 0.999)


# --- the three routes ----------------------------------------------------------------------


def test_v1_text_image_and_mixed_items(client, reference, raw_items):
    raw = ["plain text is a title", *raw_items]
    response = client.post(V1, json={"instances": raw, "parameters": {"dim": 32}})
    assert response.status_code == 200, response.text
    assert_same(response.json()["predictions"], expected(reference, raw, dim=32))


def test_v1_query_side_and_full_size_by_default(client, reference, raw_items):
    response = client.post(V1, json={"instances": raw_items[:2], "parameters": {"side": "query"}})
    assert response.status_code == 200, response.text
    want = expected(reference, raw_items[:2], side="query")
    assert want.shape[1] == max(reference.dims)
    assert_same(response.json()["predictions"], want)
    target = expected(reference, raw_items[:2])
    assert not np.allclose(want, target)  # the side's instruction matters


def test_v1_accepts_json_with_a_charset(client, reference):
    body = json.dumps({"instances": ["café"]}).encode()
    headers = {"content-type": "application/json; charset=utf-8"}
    response = client.post(V1, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert_same(response.json()["predictions"], expected(reference, ["café"]))


def v2_body(values: list[str], **parameters) -> dict:
    body = {"inputs": [{"name": "items", "shape": [len(values)], "datatype": "BYTES"}]}
    body["inputs"][0]["data"] = values
    if parameters:
        body["parameters"] = parameters
    return body


def test_v2_items_as_json_strings_and_plain_text(client, reference, raw_items):
    values = [json.dumps(r) for r in raw_items] + ["just some words"]
    body = v2_body(values, dim=16) | {"id": "req-7"}
    response = client.post(V2, json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["id"] == "req-7" and payload["model_name"] == "sail-embedding"
    (output,) = payload["outputs"]
    assert output["name"] == "embeddings" and output["datatype"] == "FP32"
    assert output["shape"] == [5, 16]
    want = expected(reference, [*raw_items, "just some words"], dim=16)
    assert_same(np.asarray(output["data"]).reshape(output["shape"]), want)


def test_v2_without_an_id_gets_one(client):
    response = client.post(V2, json=v2_body(["no id here"]))
    assert response.status_code == 200, response.text
    assert response.json()["id"]


def test_openai_float_and_base64(client, reference, raw_items):
    raw = ["hello world", raw_items[1], raw_items[3]]
    want = expected(reference, raw, dim=64)
    floats = client.post(OPENAI, json={"model": "sail-embedding", "input": raw, "dimensions": 64})
    assert floats.status_code == 200, floats.text
    payload = floats.json()
    assert payload["object"] == "list" and payload["model"] == "sail-embedding"
    assert [d["index"] for d in payload["data"]] == [0, 1, 2]
    assert all(d["object"] == "embedding" for d in payload["data"])
    assert_same([d["embedding"] for d in payload["data"]], want)

    b64 = client.post(
        OPENAI,
        json={
            "model": "sail-embedding",
            "input": raw,
            "dimensions": 64,
            "encoding_format": "base64",
        },
    )
    assert b64.status_code == 200, b64.text
    decoded = [
        np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in b64.json()["data"]
    ]
    np.testing.assert_array_equal(np.stack(decoded), np.asarray(want, dtype=np.float32))
    np.testing.assert_array_equal(
        np.stack(decoded), np.float32([d["embedding"] for d in payload["data"]])
    )


@pytest.mark.parametrize("dim", [16, 64])
def test_openai_compact_codes_follow_the_float_vectors(client, reference, raw_items, dim):
    raw = ["hello world", raw_items[1], raw_items[3]]
    want = np.asarray(expected(reference, raw, dim=dim), dtype=np.float32)
    codes = {}
    for encoding in ("int8", "binary"):
        body = {"model": "sail-embedding", "input": raw, "dimensions": dim}
        response = client.post(OPENAI, json=body | {"encoding_format": encoding})
        assert response.status_code == 200, response.text
        codes[encoding] = np.asarray([d["embedding"] for d in response.json()["data"]])
    assert codes["int8"].shape == (3, dim) and np.abs(codes["int8"]).max() == 127
    int8 = codes["int8"] / np.linalg.norm(codes["int8"], axis=1, keepdims=True)
    assert (int8 * want).sum(axis=1).min() >= 0.99
    assert codes["binary"].shape == (3, dim // 8) and codes["binary"].max() <= 255
    bits = np.unpackbits(codes["binary"].astype(np.uint8), axis=1)
    np.testing.assert_array_equal(bits, (want > 0).astype(np.uint8))


def test_the_openapi_page_documents_the_request_schemas(client):
    assert client.get("/docs").status_code == 200
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for path, model in (
        ("/v1/models/{model_name}:predict", "V1Request"),
        (OPENAI, "EmbeddingRequest"),
    ):
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": f"#/components/schemas/{model}"}
        assert schemas[model]["additionalProperties"] is False  # unknown fields are refused
    item = schemas["ItemBody"]
    assert {"id", "title", "tags", "image", "frames", "audio"} <= set(item["properties"])
    assert "encoding_format" in schemas["EmbeddingRequest"]["properties"]
    assert "/v2/models/{model_name}/infer" in document["paths"]  # kserve's own v2 schema


def test_openai_single_string_and_usage(client, reference):
    response = client.post(OPENAI, json={"model": "sail-embedding", "input": "one two three"})
    assert response.status_code == 200, response.text
    payload = response.json()
    assert len(payload["data"]) == 1
    assert_same([payload["data"][0]["embedding"]], expected(reference, ["one two three"]))
    tokenizer = reference.processor.tokenizer
    text = reference.processor.prepare(Item(id="0", title="one two three")).text
    n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert payload["usage"] == {"prompt_tokens": n, "total_tokens": n}
    image_only = client.post(
        OPENAI, json={"model": "sail-embedding", "input": [{"image": image_url()}]}
    )
    assert image_only.json()["usage"]["prompt_tokens"] == 0


@pytest.mark.parametrize("route", ["v1", "v2", "openai"])
def test_every_matryoshka_size(client, reference, route):
    for dim in reference.dims:
        if route == "v1":
            r = client.post(V1, json={"instances": ["sizes"], "parameters": {"dim": dim}})
            vector = r.json()["predictions"][0]
        elif route == "v2":
            r = client.post(V2, json=v2_body(["sizes"], dim=dim))
            vector = r.json()["outputs"][0]["data"]
        else:
            r = client.post(
                OPENAI, json={"model": "sail-embedding", "input": "sizes", "dimensions": dim}
            )
            vector = r.json()["data"][0]["embedding"]
        assert r.status_code == 200, r.text
        assert len(vector) == dim
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


# --- batching ------------------------------------------------------------------------------


def test_concurrent_requests_share_forward_passes(server, reference):
    texts = [f"concurrent request number {i}" for i in range(16)]
    before = server.batcher.stats.snapshot()

    async def main():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            return await asyncio.gather(
                *(
                    http.post(
                        OPENAI, json={"model": "sail-embedding", "input": t, "dimensions": 32}
                    )
                    for t in texts
                )
            )

    responses = asyncio.run(main())
    after = server.batcher.stats
    assert all(r.status_code == 200 for r in responses)
    got = [r.json()["data"][0]["embedding"] for r in responses]
    assert_same(got, expected(reference, texts, dim=32))
    assert after.requests - before.requests == 16
    passes = after.forward_passes - before.forward_passes
    assert 1 <= passes < 16, f"{passes} forward passes for 16 requests"


def test_batching_can_be_switched_off(reference):
    from sail.serving.server import build_server

    with build_server(embedder=reference, port=0, max_batch_size=1, max_wait_ms=0) as server:

        async def main():
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                return await asyncio.gather(
                    *(http.post(V1, json={"instances": [f"item {i}"]}) for i in range(6))
                )

        responses = asyncio.run(main())
        assert all(r.status_code == 200 for r in responses)
        assert server.batcher.stats.forward_passes == 6
        assert server.batcher.stats.largest_batch == 1


# --- health, metrics, binding --------------------------------------------------------------


def test_health_metadata_and_metrics(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v1/models/sail-embedding").json()["ready"] is True
    metadata = client.get("/v2/models/sail-embedding").json()
    assert metadata["inputs"][0]["name"] == "items"
    assert metadata["outputs"][0]["name"] == "embeddings"
    client.post(V1, json={"instances": ["count me"]})
    client.post(V1, json={"instances": []})
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert 'sail_serving_requests_total{code="200",route="v1"}' in text
    assert 'sail_serving_requests_total{code="400",route="v1"}' in text
    assert 'sail_serving_items_total{route="v1"}' in text
    assert "sail_serving_batch_size_bucket" in text
    assert "sail_serving_forward_seconds_count" in text
    assert "request_predict_seconds" in text  # kserve's own metrics, same registry


def test_metadata_and_every_response_report_the_served_version(server, client):
    from sail.serving.server import VERSION_HEADER

    assert client.get("/v2/models/sail-embedding").json()["versions"] is None  # a folder
    assert VERSION_HEADER not in client.get("/v2/health/ready").headers
    server.model.version = "7"
    try:
        assert client.get("/v2/models/sail-embedding").json()["versions"] == ["7"]
        responses = [
            client.get("/v2/health/ready"),
            client.post("/v1/models/sail-embedding:predict", json={"instances": ["a duck"]}),
            client.post("/v1/models/sail-embedding:predict", json={"instances": []}),
            client.post("/openai/v1/embeddings", json={"input": "a duck", "model": "x"}),
        ]
        assert [r.status_code // 100 for r in responses] == [2, 2, 4, 4]
        assert {r.headers[VERSION_HEADER] for r in responses} == {"7"}
    finally:
        server.model.version = None


def test_the_version_comes_from_the_flag_the_environment_or_a_pinned_uri(monkeypatch, served):
    from sail.serving.model import SailEmbeddingModel, pinned_version

    assert pinned_version("models:/sail-embedding/12") == "12"
    assert pinned_version("models:/sail-embedding@champion") is None
    assert SailEmbeddingModel(model_uri="models:/sail-embedding/3").version == "3"
    assert SailEmbeddingModel(model_uri="models:/sail-embedding/3", version="4").version == "4"
    monkeypatch.setenv("MODEL_VERSION", "9")  # what the InferenceService sets
    assert served("--model-uri", "/m")[1]["model_version"] == "9"
    monkeypatch.delenv("MODEL_VERSION")
    assert served("--model-uri", "/m")[1]["model_version"] is None


def test_binds_loopback_by_default(server, monkeypatch):
    assert server.host == "127.0.0.1"
    sockets = server._rest._server.servers[0].sockets
    assert {s.getsockname()[0] for s in sockets} == {"127.0.0.1"}

    from sail.serving.server import default_host

    monkeypatch.delenv("HOST", raising=False)
    assert default_host() == "127.0.0.1"
    monkeypatch.setenv("HOST", "0.0.0.0")
    assert default_host() == "0.0.0.0"


def test_host_argument_and_env(reference, monkeypatch):
    from sail.serving.server import build_server

    monkeypatch.setenv("HOST", "::1")
    from_env = build_server(embedder=reference, port=0)
    given = build_server(embedder=reference, host="127.0.0.2", port=0)
    from_env.stop(), given.stop()  # never started: this only stops their batchers
    assert (from_env.host, from_env.url) == ("::1", "http://[::1]:0")
    assert given.host == "127.0.0.2"


# --- model URIs and the command line -------------------------------------------------------


def test_model_uri_resolution(model_dir, monkeypatch, tmp_path):
    from sail.serving.model import resolve_model_dir

    calls = []
    fake = types.ModuleType("sail.tracking.pyfunc")
    fake.model_dir_from_uri = lambda uri: calls.append(uri) or model_dir
    monkeypatch.setitem(sys.modules, "sail.tracking.pyfunc", fake)

    assert resolve_model_dir(model_dir) == model_dir  # a saved folder: no MLflow involved
    assert resolve_model_dir(f"file://{model_dir}") == model_dir
    assert calls == []
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_model_dir(tmp_path / "missing")
    assert resolve_model_dir("models:/sail-embedding@champion") == model_dir
    (tmp_path / "MLmodel").write_text("")  # a local MLflow model folder: MLflow resolves it
    assert resolve_model_dir(tmp_path) == model_dir
    assert calls == ["models:/sail-embedding@champion", str(tmp_path)]


@pytest.fixture
def served(monkeypatch):
    """`sail serve ARGS` -> (model URI, options) it would serve with; the command line is parsed
    for real, `sail.serving.server.serve` records its arguments instead of serving."""
    from typer.testing import CliRunner

    import sail.serving.server as server_module
    from sail.cli import app

    calls = []
    monkeypatch.setattr(server_module, "serve", lambda uri, **options: calls.append((uri, options)))
    monkeypatch.setattr(sys, "argv", ["sail"])  # the command empties sys.argv for kserve
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # never contacted here

    def serve(*args: str):
        result = CliRunner().invoke(app, ["serve", *args], env={"COLUMNS": "200"})
        if result.exit_code:
            return result
        return calls.pop()

    return serve


def test_command_line_arguments(served):
    uri, options = served("--model-uri", "/m", "--port", "9000", "--max-batch-size", "1")
    assert (uri, options["port"], options["max_batch_size"]) == ("/m", 9000, 1)
    assert options["host"] is None and options["max_wait_ms"] == 5.0
    assert not options["limits"].allow_local_paths
    uri, options = served()
    assert uri == "models:/sail-embedding@champion" and options["precision"] == "fp32"
    assert (options["limits"].deadline_s, options["limits"].max_queued_cost) == (30.0, 32_000_000)
    limits = served("--deadline-s", "2.5", "--max-queued-cost", "1000")[1]["limits"]
    assert (limits.deadline_s, limits.max_queued_cost) == (2.5, 1000)
    assert served("--precision", "int8")[1]["precision"] == "int8"
    refused = served("--precision", "fp8")
    assert refused.exit_code == 2 and "'fp8' is not one of 'fp32', 'bf16', 'int8'" in refused.output
