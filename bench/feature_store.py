"""Feature-store suite: online read and vector-search latency, and materialization rows/s.

Everything runs on a copy of `<SAIL_HOME>/feature_store` in a temporary home (its `data/` a
link to the real one, for the titles `similar` reads) without its server's data folder: the
copy's own local PostgreSQL server is filled by applying the default version's views and loading
that version's files, loading again rewrites the online rows, and the real store is left
untouched.

Search quality beside its latency: recall@10 of `similar` against brute-force cosine over the
version's published embeddings (its Parquet file), for a sample of items.

Storage: mean bytes per item of each item_embedding feature in the copy's online table (the
float vector, its int8 and binary codes, the labels).

Materialization is timed directly: the default version's files loaded into its emptied online
tables the way publish loads them (`sail.feature_store.online_tables.copy_rows`). The last
publish's own timings recorded in MLflow (`publish.json`: apply, load and read-back together) are
reported beside it.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from bench.timing import Measurement, interleave

FULL = {"rounds": 100, "materialize": 2, "passes": 2}
SMOKE = {"rounds": 5, "materialize": 1, "passes": 1}
MANY = 100  # items in a batched read
TOP_K = 10


def copy_store(home: Path, target: Path) -> Path:
    """A temporary home holding a copy of the feature store and a link to the data."""
    from sail.feature_store.local_postgres import DATA_DIR

    server_data = shutil.ignore_patterns(DATA_DIR)  # the copy gets a server of its own
    shutil.copytree(
        home / "feature_store", target / "feature_store", symlinks=True, ignore=server_data
    )
    if (home / "data").is_dir():
        (target / "data").symlink_to(home / "data", target_is_directory=True)
    return target


def published_ids(home: Path, view: str, version: str, key: str) -> list[str]:
    path = home / "feature_store" / "offline" / view / f"{version}.parquet"
    return [str(v) for v in pq.read_table(path, columns=[key]).column(0).to_pylist()]


def _timed(fn) -> Measurement:
    began = time.perf_counter()
    fn()
    seconds = time.perf_counter() - began
    return Measurement(1, seconds, [seconds])


def read_variants(
    store, copy: Path, version: str, items: list[str], users: list[str], rng: random.Random
):
    """Each operation as a function of a call count returning a Measurement."""
    from sail.feature_store.query import online_features, similar

    many = rng.sample(items, min(MANY, len(items)))

    def calls(op):
        def run(n: int) -> Measurement:
            total = Measurement()
            for _ in range(n):
                total.add(_timed(op))
            return total

        return run

    def one_item():
        online_features(item_ids=[rng.choice(items)], home=copy, version=version, store=store)

    def many_items():
        online_features(item_ids=many, home=copy, version=version, store=store)

    def search():
        similar(rng.choice(items), k=TOP_K, home=copy, version=version, store=store)

    def one_user():
        online_features(user_ids=[rng.choice(users)], home=copy, version=version, store=store)

    ops = {
        "item features, 1 item": one_item,
        f"item features, {len(many)} items": many_items,
        f"similar, top {TOP_K}": search,
    }
    if users:
        ops["user features, 1 user"] = one_user
    return {name: calls(op) for name, op in ops.items()}, len(many)


def search_recall(store, home: Path, version: str, sample: int, rng: random.Random) -> dict:
    """recall@TOP_K of `similar` against brute-force cosine over the published embeddings
    (`model_code.evaluation.neighbour_recall`: a tie at the cut-off costs no hit)."""
    import numpy as np

    from model_code.evaluation.retrieval import neighbour_recall
    from sail.feature_store.query import similar

    path = home / "feature_store" / "offline" / "item_embedding" / f"{version}.parquet"
    table = pq.read_table(path, columns=["item_id", "embedding"])
    ids = [str(v) for v in table.column("item_id").to_pylist()]
    row_of = {item_id: row for row, item_id in enumerate(ids)}
    vectors = np.asarray(table.column("embedding").to_pylist(), dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    recalls = []
    for row in rng.sample(range(len(ids)), min(sample, len(ids))):
        scores = vectors @ vectors[row]
        scores[row] = -np.inf  # the item itself is never its own neighbour
        found = similar(ids[row], k=TOP_K, home=home, version=version, store=store)
        recalls.append(neighbour_recall(scores, [row_of[n.item_id] for n in found], TOP_K))
    return {"items": len(recalls), "k": TOP_K, "recall": round(float(np.mean(recalls)), 4)}


def materialize(store, home: Path, version: str, record: dict, repeats: int) -> dict:
    """Load the version's files into its emptied online tables `repeats` times, as publish does
    (`sail.feature_store.online_tables.copy_rows`); rows/s of each."""
    import pyarrow.parquet as pq
    from psycopg import sql

    from sail.feature_store.online_tables import connect, copy_rows, table_name
    from sail.feature_store.repo import features_module

    module = features_module()
    views = {view: module.view_name(view, version) for view in record["rows"]}
    files = {view: module.version_file(home / "feature_store", view, version) for view in views}
    rows = sum(record["rows"].values())
    seconds = []
    for _ in range(repeats):
        with connect(store) as connection:
            for name in views.values():
                table = sql.Identifier(table_name(store, name))
                connection.execute(sql.SQL("TRUNCATE {}").format(table))
        began = time.perf_counter()
        for view, name in views.items():
            copy_rows(store, store.get_feature_view(name), pq.read_table(files[view]))
        seconds.append(round(time.perf_counter() - began, 3))
    best = min(seconds)
    return {
        "rows": rows,
        "views": list(views.values()),
        "seconds": seconds,
        "rows_per_s": round(rows / best, 1),
    }


def stored_bytes(store, version: str) -> dict[str, float]:
    """Mean bytes per item of each item_embedding feature in the online table: its serialized
    value, plus the pgvector column where Feast keeps a searchable copy."""
    from psycopg import sql

    from sail.feature_store.online_tables import connect, table_name
    from sail.feature_store.repo import features_module

    view = features_module().view_name("item_embedding", version)
    query = sql.SQL(
        "SELECT feature_name, avg(octet_length(value)), "
        "avg(coalesce(pg_column_size(vector_value), 0)) FROM {} GROUP BY feature_name"
    ).format(sql.Identifier(table_name(store, view)))
    with connect(store) as connection:
        rows = connection.execute(query).fetchall()
    return {
        name: {"value": round(float(value), 1), "vector_value": round(float(vector), 1)}
        for name, value, vector in rows
    }


def recorded_publish(tracking_uri: str | None = None) -> dict | None:
    """rows/s of the feast step (apply, load, read back) as the last pipeline run's publish step
    recorded them."""
    from bench.pipeline import latest_finished, publish_record, step_runs, tracking_store

    client, _ = tracking_store(tracking_uri)
    parent = latest_finished(client) if client is not None else None
    record = publish_record(client, step_runs(client, parent)) if parent is not None else None
    if not record or not record.get("seconds/feast"):
        return None
    rows = sum(v for k, v in record.items() if k.startswith("rows/"))
    seconds = {k.split("/", 1)[1]: v for k, v in record.items() if k.startswith("seconds/")}
    return {
        "model_version": record.get("model_version"),
        "rows": rows,
        "seconds": seconds,
        "total_s": record.get("seconds"),
        "feast_step_rows_per_s": round(rows / record["seconds/feast"], 1),
    }


def run(home: Path | str | None = None, smoke: bool = False, tracking_uri=None) -> dict:
    """The feature-store suite's figures; `status: skipped` when nothing is published."""
    from model_code.paths import sail_home

    if os.environ.get("SAIL_FEAST_CONFIG"):
        return {"status": "skipped", "reason": "SAIL_FEAST_CONFIG names another store"}
    home = Path(home).resolve() if home is not None else sail_home()
    nothing = {"status": "skipped", "reason": f"nothing published in {home / 'feature_store'}"}
    if not (home / "feature_store" / "published.json").is_file():
        return nothing  # checked before importing feast (seconds)
    from sail.feature_store.repo import definitions, open_store, read_state

    state = read_state(home)
    version = state.get("default")
    if version is None:
        return nothing
    record = state["versions"][version]
    settings = SMOKE if smoke else FULL
    items = published_ids(home, "item_embedding", version, "item_id")
    users = []
    if "user_interest" in record["rows"]:
        users = published_ids(home, "user_interest", version, "user_id")
    with tempfile.TemporaryDirectory(prefix="sail-bench-feast-") as tmp:
        copy = copy_store(home, Path(tmp))
        store = open_store(copy)
        store.apply(list(definitions(copy, {version: record}).values()))
        materialize(store, copy, version, record, 1)  # the copy's online tables hold the version
        variants, many = read_variants(store, copy, version, items, users, random.Random(0))
        for op in variants.values():  # warm-up: feast's registry, the connection
            op(2)
        measured = interleave(variants, settings["rounds"], settings["rounds"])
        reads = [{"operation": name, **m.summary()} for name, m in measured.items()]
        materialized = materialize(store, copy, version, record, settings["materialize"])
        recall = search_recall(store, copy, version, settings["rounds"], random.Random(1))
        stored = stored_bytes(store, version)
    return {
        "home": str(home),
        "model_version": version,
        "dim": record["dim"],
        "online_rows": record["rows"],
        "reads": reads,
        "search_recall": recall,
        "stored_bytes_per_item": stored,
        "materialize": materialized,
        "recorded_publish": recorded_publish(tracking_uri),
    }
