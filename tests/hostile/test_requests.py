"""The hostile requests section without a server: each kind's bodies are what its name says, the
fuzzer is deterministic, and a row's verdict catches a 500, a crash, a slow answer or a leak."""

from __future__ import annotations

import base64
import io
import json
import wave

import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile

from hostile.requests import (
    MAX_SECONDS,
    ROUTES,
    Answer,
    cases,
    fuzzed,
    holds,
    statuses,
    unexpected_5xx,
)
from model_code.media import declared_samples

MiB = 1024 * 1024
V1 = ROUTES["v1"]


@pytest.fixture(scope="module")
def kinds() -> dict:
    return {case.kind: case for case in cases(quick=True)}


def kind(kinds: dict, prefix: str):
    return next(case for name, case in kinds.items() if name.startswith(prefix))


def v1_item(case) -> dict:
    """The one item of the case's v1 request."""
    body = next(data for path, data in case.requests if path == V1)
    return json.loads(body)["instances"][0]


def media_bytes(case, field: str) -> bytes:
    return base64.b64decode(v1_item(case)[field].split(",", 1)[1])


def test_every_kind_is_bounded_and_on_known_routes(kinds):
    assert len(kinds) == 21
    for name, case in kinds.items():
        assert all(path in ROUTES.values() for path, _ in case.requests), name
        if not name.startswith(("fuzzed", "burst")):
            assert 1 <= len(case.requests) <= 3, name
    assert len(kind(kinds, "fuzzed").requests) == 60
    assert len(kind(kinds, "burst").requests) == kind(kinds, "burst").concurrency == 40
    assert len(next(c for c in cases() if c.kind.startswith("burst")).requests) == 120


@pytest.mark.parametrize(
    "prefix, text", [('title "ﷺ"', "ﷺ" * 2_000_000), ('title "a "', "a " * 3_000_000)]
)
def test_long_titles_are_6_mb_under_the_body_limit(kinds, prefix, text):
    case = kind(kinds, prefix)
    assert case.allowed == (2,)  # cut, not refused
    for _, body in case.requests:
        assert 6_000_000 <= len(body) < 8 * MiB
    assert v1_item(case)["title"] == text


def test_wavs_claim_what_their_kind_says(kinds):
    tiny = media_bytes(kind(kinds, "100-byte WAV"), "audio")
    assert len(tiny) == 100 and wavfile.read(io.BytesIO(tiny))[0] == 20_000_003
    with wave.open(io.BytesIO(media_bytes(kind(kinds, "WAV at 1 Hz"), "audio"))) as slow:
        assert (slow.getframerate(), slow.getnframes()) == (1, 40_000)
    rate, samples = wavfile.read(io.BytesIO(media_bytes(kind(kinds, "float WAV"), "audio")))
    assert rate == 16_000 and samples.dtype == np.float32 and np.isnan(samples).all()


def test_oggs_hold_what_their_kind_says(kinds):
    silence = media_bytes(kind(kinds, "OGG: 11 minutes"), "audio")
    assert len(silence) < 60_000 and declared_samples(silence) == 8000 * 660
    lying = media_bytes(kind(kinds, "OGG: 20 s"), "audio")
    assert declared_samples(lying) == 16000 and kind(kinds, "OGG: 20 s").allowed == (2,)
    assert len(media_bytes(kind(kinds, "OGG cut"), "audio")) == 300


def test_pngs_have_the_sizes_their_kind_says(kinds):
    for prefix, size in [("PNG 1 x 40,000", (1, 40_000)), ("PNG 6000", (6000, 6000))]:
        with Image.open(io.BytesIO(media_bytes(kind(kinds, prefix), "image"))) as image:
            assert image.size == size
    burst = kind(kinds, "burst")
    assert burst.allowed == (2,) and len({id(body) for _, body in burst.requests}) == 1
    body = burst.requests[0][1]
    assert 5_500_000 < len(body) < 8 * MiB
    with Image.open(io.BytesIO(media_bytes(burst, "image"))) as image:
        assert image.size == (1400, 1400) and image.mode == "RGB"


def test_refused_kinds(kinds):
    assert v1_item(kind(kinds, "local path"))["image"].startswith("/")
    assert v1_item(kind(kinds, "http URL"))["image"].startswith("http://")
    assert len(json.loads(kind(kinds, "257 items").requests[0][1])["instances"]) == 257
    assert all(len(body) > 8 * MiB for _, body in kind(kinds, "body over").requests)
    for _, body in kind(kinds, "broken JSON").requests:
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)
    for path, body in kind(kinds, "JSON nested").requests:
        text = json.loads(body)["inputs"][0]["data"][0] if path == ROUTES["v2"] else body.decode()
        assert text.count('{"a":') == 10_000
    assert "colour" in json.loads(kind(kinds, "unknown fields").requests[0][1])["parameters"]
    for name, case in kinds.items():
        if not name.startswith(("title", "fuzzed", "burst", "OGG: 20 s")):
            assert case.allowed == (4,), name


def test_the_fuzzer_is_deterministic_and_breaks_every_body():
    first = fuzzed(7, 200)
    assert first == fuzzed(7, 200) and first != fuzzed(8, 200)
    assert {path for path, _ in first} == set(ROUTES.values())
    parsed = 0
    for _, body in first:
        try:
            json.loads(body)
            parsed += 1
        except (ValueError, RecursionError):
            pass
    assert 0 < parsed < len(first)  # type swaps and huge numbers still parse; the rest do not
    assert any(len(body) > 100_000 for _, body in first)  # nesting 100,000 deep


def answer(status: int | None = 400, seconds: float = 0.1, retry: bool = False, text: str = ""):
    return Answer(status, seconds, retry, text or '{"error": "instances[0]: bad"}')


def test_the_verdict_flags_a_500_a_crash_a_slow_answer_and_a_leak():
    fine = [answer(), answer(413), answer(503, retry=True)]
    assert holds(fine, (4,), crashes=0) and unexpected_5xx(fine) == 0
    assert not holds(fine, (4,), crashes=1)
    assert not holds([*fine, answer(500, text='{"error": "internal error 1"}')], (4,), 0)
    assert unexpected_5xx([answer(500), answer(503), answer(504, retry=True)]) == 2
    assert not holds([answer(503)], (4,), 0)  # no Retry-After: not a shed
    assert not holds([answer(seconds=MAX_SECONDS + 1)], (4,), 0)
    assert not holds([answer(None, text="ReadError")], (2, 4), 0)
    assert not holds([answer(200)], (4,), 0)  # a request that must be refused was answered
    assert holds([answer(200)], (2,), 0) and not holds([answer(400)], (2,), 0)
    leak = answer(400, text='{"error": "Traceback ... RuntimeError: cannot allocate"}')
    assert not holds([leak], (4,), 0)


def test_statuses_are_counted_in_order():
    answers = [answer(503, retry=True), answer(200), answer(None), answer(200)]
    assert statuses(answers) == "none×1, 200×2, 503×1"
