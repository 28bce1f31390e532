"""Hostile requests against the real model server (`python -m sail.serving` in its own process).

Bad requests, by kind: each kind's bodies (huge titles, WAV and PNG headers that claim huge
sizes, file paths and URLs as media, too many items, broken JSON, an oversize body, fuzzed
bodies, a burst of 6 MB images...) are sent to the v1, v2 and OpenAI routes; the server must
answer each with a 4xx (a 200 where the request is valid), or a 503/504 with Retry-After under
overload, within `MAX_SECONDS`, without exception text, and stay alive. Then load: valid text
requests at concurrency 32 on the OpenAI route, with no errors.
"""

from __future__ import annotations

import io
import json
import random
import re
import resource
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from scipy.io import wavfile

from bench.server_load import ServerProcess
from bench.timing import percentile
from hostile.section import Context, Section
from model_code.data.media_files import ogg_bytes
from model_code.data.synthetic import png_bytes, with_claimed_length
from model_code.media import to_data_url

ROUTES = {
    "v1": "/v1/models/sail-embedding:predict",
    "v2": "/v2/models/sail-embedding/infer",
    "openai": "/openai/v1/embeddings",
}
MiB = 1024 * 1024
MAX_SECONDS = 15.0  # the slowest answer a row may take
ADDRESS_SPACE = 6 * 1024 * MiB  # the server's RLIMIT_AS
TIMEOUT_S = 60.0
FUZZ_SEED = 20240601
LEAK = re.compile(r"Traceback|File \"|\b[A-Z]\w*(Error|Exception)\b|allocate")
COLUMNS = ["kind", "requests", "statuses", "5xx", "crashes", "max s", "RSS growth MB", "holds"]
LOAD_COLUMNS = [
    "requests", "concurrency", "errors", "p50 ms", "p99 ms", "requests/s",
    "RSS before MB", "RSS after MB", "holds",
]  # fmt: skip


# --- bodies ---------------------------------------------------------------------------------


def body(route: str, inputs: list, **parameters) -> bytes:
    """A request for `route` ("v1", "v2", "openai") as UTF-8 JSON (non-ASCII kept as is)."""
    if route == "v1":
        data: dict = {"instances": inputs} | ({"parameters": parameters} if parameters else {})
    elif route == "v2":
        values = [v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in inputs]
        tensor = {"name": "items", "shape": [len(values)], "datatype": "BYTES", "data": values}
        data = {"inputs": [tensor]} | ({"parameters": parameters} if parameters else {})
    else:
        data = {"model": "sail-embedding", "input": inputs}
        if "dim" in parameters:
            parameters["dimensions"] = parameters.pop("dim")
        data |= parameters
    return json.dumps(data, ensure_ascii=False).encode()


def every_route(item, **parameters) -> list[tuple[str, bytes]]:
    """One request per route with `item` as its only input."""
    return [(path, body(route, [item], **parameters)) for route, path in ROUTES.items()]


def wav(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    wavfile.write(buffer, rate, samples)
    return buffer.getvalue()


def png(width: int, height: int) -> bytes:
    return png_bytes(Image.new("RGB", (width, height), "white"))


@cache
def noise_png(side: int = 1400) -> bytes:
    """A PNG of RGB noise, which does not compress: about 5.9 MB at 1400 x 1400."""
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return png_bytes(Image.fromarray(pixels))


def media(kind: str, data: bytes, mime: str) -> dict:
    return {"id": "m", kind: to_data_url(data, mime)}


def v2_shapes() -> list[tuple[str, bytes]]:
    """v2 tensors whose shape, datatype or data do not fit."""
    path, base = ROUTES["v2"], {"name": "items", "shape": [1], "datatype": "BYTES", "data": ["x"]}
    bad = [{"shape": [3]}, {"shape": [1, -1]}, {"datatype": "FP32", "data": [1.0]}]
    return [(path, json.dumps({"inputs": [base | b]}).encode()) for b in bad]


def nested(depth: int = 10_000) -> list[tuple[str, bytes]]:
    """Bodies whose item nests `depth` objects deep (v2: inside its item's JSON string)."""
    deep = '{"a":' * depth + "1" + "}" * depth
    v1 = f'{{"instances": [{deep}]}}'.encode()
    openai = f'{{"model": "sail-embedding", "input": [{deep}]}}'.encode()
    return [(ROUTES["v1"], v1), (ROUTES["v2"], body("v2", [deep])), (ROUTES["openai"], openai)]


# --- the fuzzer -----------------------------------------------------------------------------

SWAPS = [None, True, 0, -1, 1.5, "", "x", [], {}, [1, "a"], {"a": 1}, "data:image/png;base64,"]
HUGE = ["1e400", "-1e400", "1e-400", "9" * 5000, str(2**64), "NaN", "Infinity", "-0"]


def valid(route: str) -> dict:
    """A valid request for `route`, as a fresh tree to mutate."""
    return json.loads(body(route, ["a red circle", {"id": "m1", "title": "A duck", "tags": ["t"]}]))


def _slots(tree, found: list) -> list:
    """Every (container, key) in `tree`, the places a value can be replaced."""
    pairs = tree.items() if isinstance(tree, dict) else enumerate(tree)
    for key, value in pairs:
        found.append((tree, key))
        if isinstance(value, dict | list):
            _slots(value, found)
    return found


def _replaced(rng: random.Random, tree: dict, text: str) -> bytes:
    """`tree` with one random value replaced by the raw JSON `text`."""
    container, key = rng.choice(_slots(tree, []))
    container[key] = "\0marker\0"
    return json.dumps(tree).replace('"\\u0000marker\\u0000"', text).encode()


def mutate(rng: random.Random, route: str) -> bytes:
    """A valid body for `route` broken one way: truncated, a value of another type, deep
    nesting, a huge number, or random bytes."""
    tree, how = valid(route), rng.choice(["truncate", "swap", "nest", "huge", "bytes"])
    if how == "truncate":
        data = json.dumps(tree).encode()
        return data[: rng.randrange(len(data))]
    if how == "swap":
        return _replaced(rng, tree, json.dumps(rng.choice(SWAPS)))
    if how == "nest":
        depth = rng.choice([100, 1_000, 10_000, 100_000])
        open_, close = rng.choice([("[", "]"), ('{"a":', "}")])
        return _replaced(rng, tree, open_ * depth + "1" + close * depth)
    if how == "huge":
        return _replaced(rng, tree, rng.choice(HUGE))
    data = json.dumps(tree).encode()
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.randbytes(rng.randrange(1, 200)) + data[at:]


def fuzzed(seed: int, count: int) -> list[tuple[str, bytes]]:
    """`count` malformed bodies over the three routes, the same for the same seed."""
    rng = random.Random(seed)
    routes = [rng.choice(list(ROUTES)) for _ in range(count)]
    return [(ROUTES[route], mutate(rng, route)) for route in routes]


# --- the kinds ------------------------------------------------------------------------------


@dataclass
class Case:
    """A kind of request: its bodies as (path, bytes), the answers it may get (by status class:
    4 refused, 2 answered), and how many are sent at once."""

    kind: str
    requests: list[tuple[str, bytes]]
    allowed: tuple[int, ...] = (4,)
    concurrency: int = 1


def cases(quick: bool = False) -> Iterator[Case]:
    """Every kind, built as it is needed (some bodies are 6 MB)."""
    yield Case('title "ﷺ" x 2,000,000 (6 MB)', every_route({"title": "ﷺ" * 2_000_000}), (2,))
    yield Case('title "a " x 3,000,000 (6 MB)', every_route({"title": "a " * 3_000_000}), (2,))
    tiny_wav = wav(np.zeros(28, np.int16), 20_000_003)
    yield Case("100-byte WAV at 20,000,003 Hz", every_route(media("audio", tiny_wav, "audio/wav")))
    slow_wav = wav(np.zeros(40_000, np.int16), 1)
    yield Case("WAV at 1 Hz, 40,000 samples", every_route(media("audio", slow_wav, "audio/wav")))
    nan_wav = wav(np.full(1600, np.nan, np.float32), 16_000)
    yield Case("float WAV of NaN samples", every_route(media("audio", nan_wav, "audio/wav")))
    long_ogg = ogg_bytes(np.zeros(8000 * 660, np.float32), 8000)
    yield Case(
        "OGG: 11 minutes of silence in 40 KB", every_route(media("audio", long_ogg, "audio/ogg"))
    )
    tone = (0.3 * np.sin(np.arange(16000 * 20) / 7)).astype(np.float32)
    lying = with_claimed_length(ogg_bytes(tone, 16000), 16000)
    yield Case(
        "OGG: 20 s whose last page claims 1 s",
        every_route(media("audio", lying, "audio/ogg")),
        (2,),
    )
    cut = ogg_bytes(tone, 16000)[:300]
    yield Case("OGG cut inside its first pages", every_route(media("audio", cut, "audio/ogg")))
    yield Case("PNG 1 x 40,000", every_route(media("image", png(1, 40_000), "image/png")))
    yield Case("PNG 6000 x 6000", every_route(media("image", png(6000, 6000), "image/png")))
    yield Case("local path as media", every_route({"id": "m", "image": "/etc/hostname"}))
    yield Case("http URL as media", every_route({"id": "m", "image": "http://127.0.0.1:9/x.png"}))
    items = [f"text {i}" for i in range(257)]
    yield Case("257 items", [(p, body(r, items)) for r, p in ROUTES.items()])
    dims = [(ROUTES[r], body(r, ["x"], dim=d)) for r, d in [("v1", 7), ("v2", 0), ("openai", "16")]]
    yield Case('bad dimensions (7, 0, "16")', dims)
    yield Case("bad v2 shape or datatype", v2_shapes())
    yield Case("broken JSON", [(path, b'{"instances": [') for path in ROUTES.values()])
    yield Case("JSON nested 10,000 deep", nested())
    over = ["x" * MiB] * 9
    yield Case("body over 8 MiB", [(p, body(r, over)) for r, p in ROUTES.items()])
    yield Case("unknown fields", every_route("x", colour="red"))
    count = 60 if quick else 300
    yield Case(f"fuzzed bodies (seed {FUZZ_SEED})", fuzzed(FUZZ_SEED, count), (2, 4))
    burst = 40 if quick else 120
    image = body("v1", [media("image", noise_png(), "image/png")])
    shots = [(ROUTES["v1"], image)] * burst
    yield Case(f"burst: {burst} concurrent 6 MB noise PNGs", shots, (2,), burst)


# --- sending and judging --------------------------------------------------------------------


@dataclass
class Answer:
    """What one request got: its status (None: no answer), seconds, Retry-After, body text."""

    status: int | None
    seconds: float
    retry_after: bool = False
    text: str = ""


def send(url: str, requests: list[tuple[str, bytes]], concurrency: int = 1) -> list[Answer]:
    """Post every body, `concurrency` at a time; one at a time, each on a new connection (the
    server closes a connection after a 500, which would fail the next request on it)."""
    keep = concurrency if concurrency > 1 else 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=keep)
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=url, timeout=TIMEOUT_S, limits=limits, headers=headers) as client:

        def one(request: tuple[str, bytes]) -> Answer:
            began = time.perf_counter()
            try:
                response = client.post(request[0], content=request[1])
            except httpx.HTTPError as error:
                return Answer(None, time.perf_counter() - began, text=type(error).__name__)
            seconds = time.perf_counter() - began
            retry = "retry-after" in response.headers
            return Answer(response.status_code, seconds, retry, response.text[:2000])

        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(one, requests))


def shed(answer: Answer) -> bool:
    """A 503 or 504 with Retry-After: the right answer to overload."""
    return answer.status in (503, 504) and answer.retry_after


def unexpected_5xx(answers: list[Answer]) -> int:
    return sum(a.status is not None and a.status >= 500 and not shed(a) for a in answers)


def holds(answers: list[Answer], allowed: tuple[int, ...], crashes: int) -> bool:
    """Every answer allowed (or shed), none slow, none with exception text, no crash."""
    fitting = all(shed(a) or (a.status is not None and a.status // 100 in allowed) for a in answers)
    quiet = not any(a.status != 200 and LEAK.search(a.text) for a in answers)
    fast = max((a.seconds for a in answers), default=0.0) < MAX_SECONDS
    return crashes == 0 and fitting and quiet and fast and unexpected_5xx(answers) == 0


def statuses(answers: list[Answer]) -> str:
    """e.g. "200×45, 503×75" (no answer: "none")."""
    counts = Counter(a.status or 0 for a in answers)
    return ", ".join(f"{s or 'none'}×{n}" for s, n in sorted(counts.items()))


# --- the server -----------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """The process's resident memory (VmRSS), MB; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


@dataclass
class PeakRss:
    """The peak RSS of `pid`, sampled every 50 ms in a thread while in the `with` block."""

    pid: int
    before: float = 0.0
    peak: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> PeakRss:
        self.before = self.peak = rss_mb(self.pid)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb(self.pid))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def start_server(model_dir: Path, folder: Path) -> ServerProcess:
    """The server in its own process (log in a fresh subfolder of `folder`), under the address
    space cap, once ready."""
    log_dir = folder / f"server-{len(list(folder.glob('server-*')))}"
    server = ServerProcess(model_dir, max_batch_size=32, threads=2, log_dir=log_dir).start()
    resource.prlimit(server.process.pid, resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    server.wait_ready()
    return server


def alive(server: ServerProcess) -> bool:
    """The process runs and /v2/health/live answers 200."""
    if server.process is None or server.process.poll() is not None:
        return False
    try:
        return httpx.get(server.url + "/v2/health/live", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


# --- the sections ---------------------------------------------------------------------------


def bad_requests(context: Context, server: ServerProcess) -> tuple[Section, ServerProcess]:
    """One row per kind; a server that died is restarted for the next kind."""
    began = time.monotonic()
    section = Section("Bad requests", COLUMNS, note=BAD_NOTE)
    for case in cases(context.quick):
        with PeakRss(server.process.pid) as rss:
            answers = send(server.url, case.requests, case.concurrency)
        crashes = int(not alive(server))
        ok = holds(answers, case.allowed, crashes)
        seconds = max(a.seconds for a in answers)
        growth = rss.peak - rss.before
        cells = [case.kind, len(answers), statuses(answers), unexpected_5xx(answers), crashes]
        section.add(*cells, f"{seconds:.2f}", f"{growth:.0f}", "yes" if ok else "NO", ok=ok)
        if crashes:
            server.stop()
            server = start_server(context.model_dir, context.folder("requests"))
    section.seconds = round(time.monotonic() - began, 1)
    return section, server


def load(context: Context, server: ServerProcess) -> Section:
    """Valid one-text requests at concurrency 32 on the OpenAI route."""
    began = time.monotonic()
    count = 160 if context.quick else 640
    requests = [(ROUTES["openai"], body("openai", [f"a red circle {i}"])) for i in range(count)]
    before = rss_mb(server.process.pid)
    wall = time.perf_counter()
    answers = send(server.url, requests, 32)
    wall = time.perf_counter() - wall
    errors = sum(a.status != 200 for a in answers)
    latencies = [a.seconds for a in answers if a.status == 200]
    section = Section("Load at concurrency 32", LOAD_COLUMNS, note=LOAD_NOTE)
    p50, p99 = (percentile(latencies, q) * 1000 for q in (50, 99))
    figures = [f"{p50:.0f}", f"{p99:.0f}", f"{count / wall:.1f}"]
    rss = [f"{before:.0f}", f"{rss_mb(server.process.pid):.0f}"]
    section.add(count, 32, errors, *figures, *rss, "yes" if errors == 0 else "NO", ok=errors == 0)
    section.seconds = round(time.monotonic() - began, 1)
    return section


def run(context: Context) -> list[Section]:
    """Start the server, send every kind of bad request, then the load; two Sections."""
    server = start_server(context.model_dir, context.folder("requests"))
    try:
        send(server.url, every_route("warm up"))
        bad, server = bad_requests(context, server)
        return [bad, load(context, server)]
    finally:
        server.stop()


BAD_NOTE = (
    "Each kind of bad request is sent to the real server (`python -m sail.serving`, its own "
    f"process, address space capped at {ADDRESS_SPACE // (1024 * MiB)} GiB), mostly once per route "
    "(v1, v2, OpenAI); fuzzed bodies are valid ones truncated, with a value of another type, "
    "nested 100 to 100,000 deep, with huge numbers or random bytes. A row holds when every "
    "answer is a 4xx (a 200 where the request is valid: a long title is cut, not refused; the "
    "burst's admitted images), or a 503/504 with Retry-After (overload shed), none takes "
    f"{MAX_SECONDS:.0f} s or more, no body holds exception text, and /v2/health/live still "
    "answers (else the crash is counted and the server restarted). 5xx counts the others."
)
LOAD_NOTE = (
    "One-text requests on the OpenAI route, 32 in flight at once, after the bad requests on the "
    "same server process; holds when every request gets a 200."
)
