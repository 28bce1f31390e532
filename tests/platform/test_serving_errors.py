"""Client errors on every route are 4xx with messages naming the problem, never 5xx, and the
server keeps serving (including a property test with random malformed bodies)."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy.io import wavfile

from model_code.data.media_files import ogg_bytes
from model_code.data.synthetic import png_bytes, shape_image
from model_code.factory import save_pretrained
from model_code.items import parse_item
from model_code.media import to_data_url

pytestmark = pytest.mark.filterwarnings("ignore:ORJSONResponse is deprecated")

V1 = "/v1/models/sail-embedding:predict"
V2 = "/v2/models/sail-embedding/infer"
OPENAI = "/openai/v1/embeddings"
ROUTES = {"v1": V1, "v2": V2, "openai": OPENAI}
MAX_BYTES = 256 * 1024
MAX_ITEMS = 8


@pytest.fixture(scope="module")
def server(tiny, tmp_path_factory):
    from sail.serving.limits import Limits
    from sail.serving.server import build_server

    folder = save_pretrained(*tiny, tmp_path_factory.mktemp("serving-errors") / "model")
    limits = Limits(max_request_bytes=MAX_BYTES, max_items=MAX_ITEMS)
    server = build_server(folder, port=0, max_wait_ms=2, limits=limits).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def body_for(route: str, inputs, **parameters) -> dict:
    """A request for `route` with `inputs` (a list of items/strings) and parameters."""
    if route == "v1":
        body = {"instances": inputs}
        if parameters:
            body["parameters"] = parameters
        return body
    if route == "v2":
        values = [v if isinstance(v, str) else json.dumps(v) for v in inputs]
        body = {"inputs": [{"name": "items", "shape": [len(values)], "datatype": "BYTES"}]}
        body["inputs"][0]["data"] = values
        if parameters:
            body["parameters"] = parameters
        return body
    body = {"model": "sail-embedding", "input": inputs}
    if "dim" in parameters:
        body["dimensions"] = parameters.pop("dim")
    return body | parameters


def message(response: httpx.Response) -> str:
    payload = response.json()
    error = payload.get("error", payload.get("detail"))
    if isinstance(error, dict):
        return error["message"]
    return error if isinstance(error, str) else json.dumps(error)


def check_4xx(response: httpx.Response, status: int | tuple[int, ...], *words: str) -> str:
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, response.text
    text = message(response)
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
    return text


def works(client) -> None:
    response = client.post(OPENAI, json={"model": "sail-embedding", "input": "still serving"})
    assert response.status_code == 200, response.text


# --- each kind of bad request --------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_malformed_json(client, route):
    response = client.post(
        ROUTES[route], content=b'{"instances": [', headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    if route == "openai":
        check_4xx(response, 400, "not valid JSON")


DEEP = '{"a":' * 10_000 + "1" + "}" * 10_000  # JSON nested 10,000 levels
DEEP_BODIES = {
    "v1": '{"instances": [%s]}',
    "v2": '{"inputs": [{"name": "items", "shape": [1], "datatype": "BYTES", "data": [%s]}]}',
    "openai": '{"model": "sail-embedding", "input": [%s]}',
}


@pytest.mark.parametrize("route", ROUTES)
def test_json_nested_too_deeply_is_a_400(client, route):
    """As the body, and (v2) as a BYTES element holding an item: both were 500s (a
    RecursionError in json.loads) on the OpenAI and v2 routes."""
    response = client.post(
        ROUTES[route],
        content=DEEP_BODIES[route] % DEEP,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    if route == "v2":
        response = client.post(ROUTES[route], json=body_for("v2", [DEEP]))
        check_4xx(response, 400, "nested too deeply")


def test_unknown_fields_are_named(client):
    check_4xx(client.post(OPENAI, json=body_for("openai", ["x"], colour="red")), 400, "colour")
    assert client.post(OPENAI, json=body_for("openai", ["x"], colour=1)).json()["error"][
        "param"
    ] == ("colour")
    check_4xx(client.post(V1, json={"instances": ["x"], "instance": 1}), 400, "instance")
    check_4xx(client.post(V1, json=body_for("v1", ["x"], dimension=16)), 400, "dimension")
    check_4xx(client.post(V2, json=body_for("v2", ["x"], dimension=16)), 400, "dimension")
    check_4xx(
        client.post(V1, json={"instances": [{"title": "x", "colour": "red"}]}),
        400,
        "instances[0]",
        "colour",
    )


@pytest.mark.parametrize("route", ROUTES)
def test_empty_input(client, route):
    check_4xx(client.post(ROUTES[route], json=body_for(route, [])), 400, "empty")
    check_4xx(client.post(ROUTES[route], json=body_for(route, ["   "])), 400, "blank")


def test_missing_input(client):
    check_4xx(client.post(V1, json={"parameters": {"dim": 16}}), 400, "instances")
    check_4xx(client.post(OPENAI, json={"model": "sail-embedding"}), 400, "input")


@pytest.mark.parametrize("route", ROUTES)
def test_too_many_items(client, route):
    inputs = [f"text {i}" for i in range(MAX_ITEMS + 1)]
    check_4xx(client.post(ROUTES[route], json=body_for(route, inputs)), 400, f"at most {MAX_ITEMS}")


@pytest.mark.parametrize("route", ROUTES)
def test_oversize_body(client, route):
    big = ["x" * (MAX_BYTES // 4)] * 5
    check_4xx(client.post(ROUTES[route], json=body_for(route, big)), 413, "too large")


def test_oversize_chunked_body(client):
    def chunks():
        yield b'{"instances": ["'
        for _ in range(40):
            yield b"y" * 8192
        yield b'"]}'

    response = client.post(V1, content=chunks(), headers={"content-type": "application/json"})
    check_4xx(response, 413, "too large")


@pytest.mark.parametrize("route", ROUTES)
def test_bad_data_url_and_undecodable_image(client, route):
    good = "fine text"
    not_base64 = {"id": "img-1", "image": "data:image/png;base64,@@not base64@@"}
    text = check_4xx(client.post(ROUTES[route], json=body_for(route, [good, not_base64])), 400)
    assert "[1]" in text and "img-1" in text and "image" in text
    junk = to_data_url(b"these bytes are no PNG", "image/png")
    text = check_4xx(
        client.post(ROUTES[route], json=body_for(route, [{"id": "j", "image": junk}])), 400
    )
    assert "[0]" in text and "'image'" in text and "not a readable image" in text


def test_bad_frames_and_audio_are_named(client):
    frame = to_data_url(png_bytes(shape_image("red", "circle")), "image/png")
    mp3 = "data:audio/wav;base64," + base64.b64encode(b"ID3" + b"\0" * 64).decode()
    response = client.post(
        OPENAI,
        json=body_for("openai", ["ok", {"id": "v", "frames": [frame, "data:,"], "audio": mp3}]),
    )
    text = check_4xx(response, 400, "input[1]")
    assert "frames" in text or "audio" in text


def _wav(samples: np.ndarray, rate: int) -> str:
    buffer = io.BytesIO()
    wavfile.write(buffer, rate, samples)
    return to_data_url(buffer.getvalue(), "audio/wav")


def _ogg(silent_seconds: float | None = None, cut_to: int | None = None) -> str:
    """Two seconds of a tone as an OGG Vorbis data URL (its first `cut_to` bytes), or
    `silent_seconds` of silence at 8 kHz (eleven minutes are 40 KB)."""
    if silent_seconds is not None:
        stream = ogg_bytes(np.zeros(int(silent_seconds * 8000), np.float32), 8000)
    else:
        tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(32000) / 16000)
        stream = ogg_bytes(tone.astype(np.float32), 16000)[:cut_to]
    return to_data_url(stream, "audio/ogg")


@pytest.mark.parametrize("route", ROUTES)
def test_ogg_audio_is_embedded(client, route):
    response = client.post(ROUTES[route], json=body_for(route, [{"id": "s", "audio": _ogg()}]))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("route", ROUTES)
def test_media_that_would_cost_too_much_get_a_400_naming_why(client, route):
    """Found by the hostile run: each of these once crashed the server, leaked an allocation
    error or answered 500 with the exception text."""
    nan = np.zeros(1600, np.float32)
    nan[3] = np.nan
    strip = io.BytesIO()
    Image.new("RGB", (1, 40_000), "white").save(strip, format="PNG")
    cases = {
        "sample rate 20000003 Hz is not supported": {
            "audio": _wav(np.zeros(50, np.int16), 20_000_003)
        },
        "sample rate 1 Hz is not supported": {"audio": _wav(np.zeros(40_000, np.int16), 1)},
        "non-finite samples": {"audio": _wav(nan, 16000)},
        "the long side may be at most": {"image": to_data_url(strip.getvalue(), "image/png")},
        "audio is 660 s long; at most 600 s": {"audio": _ogg(silent_seconds=660)},
        "unreadable OGG audio": {"audio": _ogg(cut_to=200)},
    }
    for problem, media in cases.items():
        response = client.post(ROUTES[route], json=body_for(route, [{"id": "m", **media}]))
        text = check_4xx(response, 400, problem, "'m'")
        assert "Traceback" not in text and "allocate" not in text
    works(client)


@pytest.mark.parametrize("route", ROUTES)
def test_local_paths_are_refused(client, route, tmp_path):
    image = tmp_path / "secret.png"
    image.write_bytes(png_bytes(shape_image("red", "circle")))
    response = client.post(ROUTES[route], json=body_for(route, [{"image": str(image)}]))
    check_4xx(response, 400, "[0]", "data: URLs")


@pytest.mark.parametrize("route", ROUTES)
def test_unsupported_dimensions(client, route):
    text = check_4xx(client.post(ROUTES[route], json=body_for(route, ["x"], dim=7)), 400, "7")
    assert "[16, 32, 64]" in text
    check_4xx(client.post(ROUTES[route], json=body_for(route, ["x"], dim="16")), (400, 422))


def test_encoding_format_xml(client):
    response = client.post(OPENAI, json=body_for("openai", ["x"], encoding_format="xml"))
    check_4xx(response, 400, "encoding_format")


def test_other_openai_problems(client):
    response = client.post(OPENAI, json={"model": "gpt-4", "input": "x"})
    assert check_4xx(response, 404, "gpt-4", "sail-embedding")
    check_4xx(client.post(OPENAI, json=body_for("openai", [[1, 2, 3]])), 400, "input")
    check_4xx(client.post(OPENAI, json=body_for("openai", ["x"], side="left")), 400, "side")


def test_bad_side_instruction_and_text(client):
    check_4xx(client.post(V1, json=body_for("v1", ["x"], side="left")), 400, "side")
    check_4xx(client.post(V1, json=body_for("v1", ["x"], instruction="")), 400, "instruction")
    long = " ".join(["word"] * 200)
    check_4xx(client.post(V1, json=body_for("v1", ["x"], instruction=long)), 400, "tokens")
    # A lone surrogate survives JSON parsing but no tokenizer takes it.
    lone = b'{"model": "sail-embedding", "input": ["ok", "bad \\ud800 text"]}'
    response = client.post(OPENAI, content=lone, headers={"content-type": "application/json"})
    check_4xx(response, 400, "input[1]", "Unicode")
    # Text that is empty once cleaned (control characters only) has no usable modality.
    check_4xx(client.post(V1, json={"instances": ["\u200b\u0001"]}), 400, "no usable modality")


def test_v2_shape_problems(client):
    def v2(**input_fields):
        base = {"name": "items", "shape": [1], "datatype": "BYTES", "data": ["x"]}
        return client.post(V2, json={"inputs": [base | input_fields]})

    check_4xx(v2(name="texts"), 400, "items")
    check_4xx(v2(datatype="FP32", data=[1.0]), 400, "BYTES")
    check_4xx(v2(shape=[3]), 400, "shape")
    check_4xx(v2(data=[{"title": "x"}]), 400, "items[0]")
    check_4xx(v2(data=['{"title": '], shape=[1]), 400, "items[0]", "JSON")
    response = client.post(V2, json={"inputs": [{"name": "items"}]})
    assert response.status_code == 422
    response = client.post(V2, json=body_for("v2", ["x"]) | {"outputs": [{"name": "logits"}]})
    check_4xx(response, 400, "logits")


def test_a_full_queue_answers_503_on_every_route(server, client):
    batcher, gate = server.batcher, threading.Event()
    run_batch, limit = batcher.run, batcher.max_queued_items

    def held(key, items):
        gate.wait(30)
        return run_batch(key, items)

    batcher.run, batcher.max_queued_items = held, 1
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(httpx.post, server.url + OPENAI, json=body_for("openai", ["a"]))
            while batcher.waiting_items < 1:
                time.sleep(0.01)
            for route, path in ROUTES.items():
                response = client.post(path, json=body_for(route, ["one more"]))
                assert response.status_code == 503, (route, response.text)
                assert response.headers["retry-after"] == "1"
                assert "retry later" in message(response)
            gate.set()
            assert first.result().status_code == 200
    finally:
        gate.set()
        batcher.run, batcher.max_queued_items = run_batch, limit
    works(client)


def _hold(batcher):
    """Replace the batcher's run with one that records each batch's titles and waits for the
    returned gate; returns (gate, batches, restore)."""
    run_batch, gate, batches = batcher.run, threading.Event(), []

    def held(key, items):
        batches.append([item.title for item in items])
        gate.wait(30)
        return run_batch(key, items)

    batcher.run = held

    def restore():
        gate.set()
        batcher.run = run_batch

    return gate, batches, restore


def test_work_that_would_cost_too_much_is_shed_with_503(server, client):
    """The queue bound weighs an item by what it decodes to: a 2000 x 2000 PNG of a few KB
    costs 4,000,000 units and is shed while work waits; a short text still queues."""
    batcher = server.batcher
    gate, batches, restore = _hold(batcher)
    budget = batcher.max_queued_cost
    batcher.max_queued_cost = 1_000_000
    big = Image.new("RGB", (2000, 2000), "white")
    image = {"id": "big", "image": to_data_url(png_bytes(big), "image/png")}
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(httpx.post, server.url + OPENAI, json=body_for("openai", ["a"]))
            while batcher.waiting_items < 1:
                time.sleep(0.01)
            for route, path in ROUTES.items():
                response = client.post(path, json=body_for(route, [image]))
                assert response.status_code == 503, (route, response.text)
                assert response.headers["retry-after"] == "1"
                assert "cost units" in message(response) and "retry later" in message(response)
            small = pool.submit(httpx.post, server.url + V1, json=body_for("v1", ["fits"]))
            while batcher.waiting_items < 2:
                time.sleep(0.01)
            gate.set()
            assert first.result().status_code == small.result().status_code == 200
        assert ["big"] not in batches and None not in [t for b in batches for t in b]
    finally:
        restore()
        batcher.max_queued_cost = budget
    works(client)


def test_a_request_past_its_deadline_gets_504_and_its_items_never_run(server, client):
    batcher, limits = server.batcher, server.model.limits
    gate, batches, restore = _hold(batcher)
    server.model.limits = dataclasses.replace(limits, deadline_s=0.5)
    skipped = batcher.stats.skipped_items
    try:
        with ThreadPoolExecutor(4) as pool:
            first = pool.submit(httpx.post, server.url + OPENAI, json=body_for("openai", ["held"]))
            while not batches:
                time.sleep(0.01)
            late = {
                route: pool.submit(httpx.post, server.url + path, json=body_for(route, [route]))
                for route, path in ROUTES.items()
            }
            responses = [first.result(), *(future.result() for future in late.values())]
        for response in responses:
            assert response.status_code == 504, response.text
            assert response.headers["retry-after"] == "1"
            assert "deadline of 0.5 s" in message(response)
        gate.set()
        deadline = time.monotonic() + 10
        while batcher.stats.skipped_items < skipped + 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert batcher.stats.skipped_items == skipped + 3
        assert batches == [["held"]]  # the late requests' items never reached the model
    finally:
        restore()
        server.model.limits = limits
    works(client)


def test_the_server_still_works_after_errors(client):
    works(client)


# --- property: random malformed bodies never give a 5xx -------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", "x", "{", "{}", '{"title": 1}', "data:image/png;base64,AAAA"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
FIELDS = {
    "v1": ["instances", "parameters", "dim", "side", "instruction", "id", "title", "image"],
    "v2": ["inputs", "parameters", "id", "outputs", "name", "shape", "datatype", "data"],
    "openai": ["model", "input", "dimensions", "encoding_format", "user", "side", "instruction"],
}


def mutated_valid(route: str):
    """A valid request with some values replaced by random JSON."""
    value = json_values | st.just(None)
    if route == "v1":
        return st.fixed_dictionaries(
            {"instances": st.one_of(value, st.lists(value | st.just("ok"), max_size=3))},
            optional={
                "parameters": st.one_of(
                    value, st.fixed_dictionaries({}, optional={"dim": value, "side": value})
                )
            },
        )
    if route == "v2":
        tensor = st.fixed_dictionaries(
            {
                "name": st.just("items") | value,
                "shape": st.just([1]) | value,
                "datatype": st.just("BYTES") | value,
                "data": st.just(["ok"]) | value,
            },
            optional={"parameters": value},
        )
        return st.fixed_dictionaries(
            {"inputs": st.lists(tensor, max_size=2) | value},
            optional={"id": value, "parameters": value, "outputs": value},
        )
    return st.fixed_dictionaries(
        {"model": st.just("sail-embedding") | value, "input": st.just("ok") | value},
        optional={"dimensions": value, "encoding_format": value, "user": value},
    )


def bodies(route: str):
    structured = st.dictionaries(st.sampled_from(FIELDS[route]), json_values, max_size=4)
    as_json = st.one_of(json_values, structured, mutated_valid(route)).map(
        lambda v: json.dumps(v).encode()
    )
    return st.one_of(as_json, as_json, as_json, st.binary(max_size=40))


@pytest.mark.parametrize("route", ROUTES)
def test_random_malformed_bodies_never_give_5xx(client, route):
    @settings(
        max_examples=100,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(body=bodies(route))
    def check(body: bytes):
        response = client.post(
            ROUTES[route], content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code < 500, (body, response.text)

    check()
    works(client)


def test_an_item_the_model_fails_on_fails_only_its_own_request(server, client, monkeypatch):
    """The batch is retried item by item; the failing item's request gets a 500 whose body
    holds no exception text, and the items batched with it still get their vectors."""
    from sail.serving.model import ModelFailure

    model = server.model._embedder().model
    forward = model.forward

    def failing_forward(inputs):
        if "poison" in inputs.item_ids:
            raise RuntimeError("secret detail 42")
        return forward(inputs)

    monkeypatch.setattr(model, "forward", failing_forward)
    items = [
        parse_item({"id": "fine", "title": "a cat"}),
        parse_item({"id": "poison", "title": "x"}),
    ]
    results = server.model._run_batch((16, "Represent the item."), items)
    assert results[0][0].shape == (16,) and isinstance(results[1], ModelFailure)
    for route in ROUTES:
        bad = client.post(ROUTES[route], json=body_for(route, [{"id": "poison", "title": "x"}]))
        assert bad.status_code == 500 and "internal error" in message(bad)
        assert "secret" not in bad.text and "RuntimeError" not in bad.text
        works(client)


def test_liveness_fails_once_the_batcher_has_stopped(tiny, tmp_path):
    from sail.serving.server import build_server

    server = build_server(save_pretrained(*tiny, tmp_path / "model"), port=0).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert client.get("/v2/health/live").status_code == 200
            server.model.batcher.close()
            response = client.get("/v2/health/live")
            assert response.status_code == 503 and "not live" in response.text
    finally:
        server.stop()
