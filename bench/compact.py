"""Compact suite: int8 and binary embeddings at each Matryoshka size (`model_code.compact`).

- Storage: bytes per item of each code.
- Quality: the evaluation suite on the validation split (openclipart text<->image R@10, MovieLens
  HR@10) with both sides coded, against float vectors of the same size. Needs the data
  prepared; smoke mode skips it.
- Search: top-10 over the catalogue's codes in-process (numpy; brute force, one query at a time,
  interleaved in one ABBA sequence after a warm-up): latency per query and recall@10 against
  float brute force at the full size (`model_code.evaluation.neighbour_recall`: a tie at the
  cut-off costs no hit). The catalogue is every prepared item (MovieLens movies and
  openclipart drawings), embedded as the publish step embeds it; smoke mode embeds generated
  items with the tiny model.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.serving import resolve_model
from bench.timing import Measurement, interleave, percentile
from model_code.compact import ENCODINGS, bytes_per_vector, encode, top_k
from model_code.evaluation.retrieval import neighbour_recall

logger = logging.getLogger(__name__)

TOP_K = 10
FULL = {"queries": 200, "rounds": 2}
SMOKE = {"queries": 20, "rounds": 1}
QUALITY = ("openclipart/t2i_recall@10", "openclipart/i2t_recall@10", "movielens/hr@10")


def run(model_uri: str | None = None, smoke: bool = False, threads: int | None = None) -> dict:
    """The compact suite's figures (see the module doc)."""
    from model_code.embed import Embedder

    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    plan = SMOKE if smoke else FULL
    with tempfile.TemporaryDirectory(prefix="sail-bench-compact-") as tmp:
        model_dir, model_source = resolve_model(model_uri, smoke, Path(tmp))
        embedder = Embedder.from_pretrained(model_dir)
        dims = list(embedder.model.config.matryoshka_dims)
        vectors, catalogue = catalogue_vectors(embedder, smoke)
        search = search_figures(vectors, dims, plan)
        quality = {"status": "skipped (smoke)"} if smoke else _quality(embedder, dims)
    return {
        "model": model_source,
        "threads": threads,
        "dims": dims,
        "encodings": list(ENCODINGS),
        "storage": {str(dim): {e: bytes_per_vector(dim, e) for e in ENCODINGS} for dim in dims},
        "catalogue": catalogue,
        "search": search,
        "quality": quality,
    }


def catalogue_vectors(embedder, smoke: bool) -> tuple[np.ndarray, str]:
    """Full-size unit vectors of the catalogue (every prepared item, or generated items)."""
    if not smoke:
        from model_code.data.catalogue import catalogue_items
        from model_code.evaluation.suite import catalogue_instructions

        try:
            parts = [
                embedder.embed(
                    catalogue_items(name),
                    instruction=catalogue_instructions(name)["target"],
                    progress=False,
                ).vectors
                for name in ("movielens", "openclipart")
            ]
            vectors = np.concatenate(parts)
            return vectors, f"{len(vectors):,} prepared items (MovieLens movies, openclipart)"
        except FileNotFoundError as error:  # DataNotPrepared is one
            logger.info("compact: generated items instead of the catalogue: %s", error)
    from model_code.data.synthetic import mixed_items

    vectors = embedder.embed(mixed_items(256), progress=False).vectors
    return vectors, f"{len(vectors)} generated items (tiny model)"


def search_figures(vectors: np.ndarray, dims: list[int], plan: dict) -> list[dict]:
    """Per size and encoding: p50/p99 ms of a top-10 query and recall@10 against float brute
    force at the full size; queries are catalogue rows (each excluded from its own answer)."""
    rng = random.Random(0)
    queries = rng.sample(range(len(vectors)), min(plan["queries"], len(vectors)))
    exact = {q: _exact_scores(vectors, q) for q in queries}
    variants, found = {}, {}
    for dim in dims:
        for encoding in ENCODINGS:
            codes = encode(vectors, encoding, dim)
            name = f"{encoding}@{dim}"
            found[name] = {}
            variants[name] = _searcher(codes, encoding, queries, found[name])
    for variant in variants.values():
        variant(1)  # warm-up
    measured = interleave(variants, len(queries), plan["rounds"])
    rows = []
    for name, measurement in measured.items():
        encoding, dim = name.split("@")
        hits = [neighbour_recall(exact[q], found[name][q], TOP_K) for q in queries]
        rows.append(
            {
                "dim": int(dim),
                "encoding": encoding,
                "queries": len(measurement.latencies),
                "p50_ms": round(percentile(measurement.latencies, 50) * 1000, 4),
                "p99_ms": round(percentile(measurement.latencies, 99) * 1000, 4),
                "recall_at_10": round(float(np.mean(hits)), 4),
            }
        )
    return rows


def _searcher(codes: np.ndarray, encoding: str, queries: list[int], found: dict):
    """Top-10 searches for the next `n` queries (cycling), each timed."""
    cursor = [0]

    def run(n: int) -> Measurement:
        total = Measurement()
        for _ in range(n):
            query = queries[cursor[0] % len(queries)]
            cursor[0] += 1
            began = time.perf_counter()
            hits = top_k(codes[query], codes, encoding, TOP_K + 1)
            seconds = time.perf_counter() - began
            found[query] = _without(hits, query)
            total.add(Measurement(1, seconds, [seconds]))
        return total

    return run


def _exact_scores(vectors: np.ndarray, query: int) -> np.ndarray:
    """Every catalogue row's float cosine to the query row, the query itself excluded (-inf)."""
    scores = vectors.astype(np.float64) @ vectors[query].astype(np.float64)
    scores[query] = -np.inf
    return scores


def _without(hits: np.ndarray, query: int) -> list[int]:
    return [int(h) for h in hits if h != query][:TOP_K]


def _quality(embedder, dims: list[int]) -> dict:
    """Validation figures per size and encoding, and their change against float."""
    from model_code.data.movielens import load_movielens
    from model_code.data.openclipart import load_openclipart
    from model_code.evaluation.suite import movielens_next_item, openclipart_retrieval

    try:
        pairs, tables = load_openclipart("validation"), load_movielens()
    except FileNotFoundError as error:  # DataNotPrepared is one
        return {"status": "not measured", "reason": f"{error}; run `make data`"}
    keys = {"dims": tuple(dims), "encodings": ENCODINGS}
    retrieval = openclipart_retrieval(embedder, pairs, **keys)
    movies = movielens_next_item(embedder, tables, "validation", **keys)
    figures = []
    for dim in dims:
        for encoding in ENCODINGS:
            report = {f"openclipart/{k}": v for k, v in retrieval[dim, encoding].items()}
            report |= {f"movielens/{k}": v for k, v in movies[dim, encoding].items()}
            figures.append(
                {"dim": dim, "encoding": encoding}
                | {metric: round(float(report[metric]), 4) for metric in QUALITY}
            )
    floats = {row["dim"]: row for row in figures if row["encoding"] == "float"}
    for row in figures:
        row["change"] = {m: round(row[m] - floats[row["dim"]][m], 4) for m in QUALITY}
    return {"status": "ok", "split": "validation", "figures": figures}
