"""The Feast feature store on real data prepared small: publish, republish, vector search,
versions side by side, retiring, errors.

Real feast with the local online store (PostgreSQL with pgvector, the store's own server) and
Parquet offline store, in the session's prepared SAIL_HOME. The tiny model publishes the first 400
movies and 12 drawings as v1; later tests add v2.
"""

from __future__ import annotations

import json
import os
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from model_code.factory import save_pretrained

DIM = 32
LIMIT = {"movielens": 400, "openclipart": 12}
VIEWS = ("item_embedding", "item_semantic_id", "user_interest")


def online_tables(home) -> set[str]:
    """The online store's tables."""
    import psycopg

    from sail.feature_store.local_postgres import socket_dir

    socket = socket_dir(home / "feature_store")
    with psycopg.connect(host=socket, dbname="postgres", user="postgres") as db:
        rows = db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {name for (name,) in rows.fetchall()}


ROW = "entity_key, feature_name, value, event_ts"


def online_rows(home, version="v1", columns=ROW) -> dict[str, list[tuple]]:
    """Every row of each of the version's online tables, as stored by feast."""
    import psycopg

    from sail.feature_store.local_postgres import socket_dir

    socket = socket_dir(home / "feature_store")
    tables = online_tables(home)
    with psycopg.connect(host=socket, dbname="postgres", user="postgres") as db:
        return {
            view: db.execute(
                f'SELECT {columns} FROM "{table}" ORDER BY entity_key, feature_name'
            ).fetchall()
            for view in VIEWS
            if (table := f"sail_embedding_{view}__{version}") in tables
        }


@pytest.fixture(scope="module")
def model_dir(tiny, tmp_path_factory):
    model, processor = tiny
    return save_pretrained(model, processor, tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def published(prepared_home, model_dir):
    from sail.feature_store.publish import publish

    report = publish(model_dir, "v1", dim=DIM, batch_size=64, home=prepared_home, limit=LIMIT)
    return prepared_home, report


def positives(home) -> dict[str, list[str]]:
    """Every MovieLens user's positives, oldest first (history, validation item, test item)."""
    from model_code.data.movielens import load_movielens

    sequences = load_movielens(home / "data" / "movielens")["sequences"]
    return {
        row.user_id: [*row.history, row.validation_item, row.test_item]
        for row in sequences.itertuples()
    }


def test_publish_writes_every_view_online(published):
    from model_code.semantic_ids import ResidualCodebooks, encode
    from sail.feature_store.local_postgres import socket_dir
    from sail.feature_store.publish import codebooks_path
    from sail.feature_store.query import online_features

    home, report = published
    assert report.catalogues == LIMIT
    assert report.rows["item_embedding"] == report.rows["item_semantic_id"] == 412
    movies = {str(i) for i in range(1, 401)}
    users = sum(bool(movies & set(liked)) for liked in positives(home).values())
    assert report.rows["user_interest"] == users
    assert report.online_rows == report.rows
    summary = report.to_dict()
    assert summary["rows/item_embedding"] == 412 and summary["items/openclipart"] == 12
    assert json.loads(json.dumps(summary)) == summary
    rendered = yaml.safe_load((home / "feature_store" / "feature_store.yaml").read_text())
    assert "${" not in json.dumps(rendered)
    assert (
        rendered["online_store"]["type"] == "postgres"
        and rendered["online_store"]["vector_enabled"]
    )
    assert rendered["online_store"]["host"] == socket_dir(home / "feature_store")

    parquet = pd.read_parquet(report.files["item_embedding"]).set_index("item_id")
    assert parquet["event_timestamp"].nunique() == 1
    first_drawing = parquet.index[parquet["catalogue"] == "openclipart"][0]
    items = online_features(item_ids=["50", first_drawing, "nope"], home=home, compact=True)
    assert items["item_id"].tolist() == ["50", first_drawing, "nope"]
    assert items["catalogue"].tolist() == ["movielens", "openclipart", None]
    assert items["model_version"].tolist()[:2] == ["v1", "v1"]
    for row in items.iloc[:2].itertuples():
        assert row.embedding.shape == (DIM,) and row.embedding.dtype == np.float32
        assert np.isclose(np.linalg.norm(row.embedding), 1.0, atol=1e-5)
        np.testing.assert_array_equal(row.embedding, parquet.loc[row.item_id, "embedding"])
        assert row.codes.shape == (3,) and row.semantic_id == "-".join(map(str, row.codes))
        # the compact codes beside the float vector (model_code.compact)
        assert row.embedding_int8.dtype == np.int8 and row.embedding_int8.shape == (DIM,)
        int8 = row.embedding_int8 / np.linalg.norm(row.embedding_int8)
        assert float(int8 @ row.embedding) >= 0.99
        np.testing.assert_array_equal(
            np.unpackbits(row.embedding_binary), (row.embedding > 0).astype(np.uint8)
        )
    assert items["embedding"].iloc[2] is None and items["semantic_id"].iloc[2] is None
    assert items["embedding_int8"].iloc[2] is None and items["embedding_binary"].iloc[2] is None
    plain = online_features(item_ids=["50"], home=home)  # the codes only when asked for
    assert "embedding_int8" not in plain and "embedding" in plain
    codebooks = ResidualCodebooks.load(codebooks_path(home, "v1"))
    np.testing.assert_array_equal(
        encode(codebooks, np.stack(items["embedding"][:2])), np.stack(items["codes"][:2])
    )


def test_bulk_loaded_rows_are_those_feasts_own_materialize_writes(published):
    """Publish loads rows with COPY (`online_tables.copy_rows`); Feast's materialize of the
    same files into the emptied tables must give back the very same rows."""
    from datetime import timedelta

    import psycopg

    from sail.feature_store.local_postgres import socket_dir
    from sail.feature_store.repo import open_store, read_state

    home, _ = published
    every_column = "entity_key, feature_name, value, value_text, vector_value::text, event_ts, "
    every_column += "created_ts"
    ours = online_rows(home, columns=every_column)
    vectors = [row[4] for row in ours["item_embedding"] if row[1] == "embedding"]
    assert len(vectors) == 412 and all(vectors)  # pgvector's copy of every embedding
    with psycopg.connect(host=socket_dir(home / "feature_store"), user="postgres") as db:
        for view in VIEWS:
            db.execute(f'TRUNCATE "sail_embedding_{view}__v1"')
    assert not any(online_rows(home).values())
    stamp = pd.Timestamp(read_state(home)["versions"]["v1"]["event_timestamp"]).to_pydatetime()
    open_store(home).materialize(
        start_date=stamp,
        end_date=stamp + timedelta(milliseconds=1),
        feature_views=[f"{view}__v1" for view in VIEWS],
    )
    assert online_rows(home, columns=every_column) == ours


def test_user_interest_vectors_are_online(published, model_dir):
    import torch

    from model_code.data.catalogue import movielens_items
    from model_code.data.movielens import load_movielens
    from model_code.embed import Embedder
    from model_code.model import truncate
    from model_code.training.stages import load_stage
    from sail.feature_store.query import online_features

    home, report = published
    users = online_features(user_ids=["1", "685"], home=home)
    vector = users["embedding"].iloc[0]
    assert vector.shape == (DIM,) and np.isclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    assert users["model_version"].iloc[0] == "v1"
    assert users["history_length"].iloc[0] == len(positives(home)["1"])
    assert users["embedding"].iloc[1] is None  # user 685 has no positives: no vector
    parquet = pd.read_parquet(report.files["user_interest"]).set_index("user_id")
    np.testing.assert_array_equal(vector, parquet.loc["1", "embedding"])

    # The model's pooler over user 1's ten latest positives among the published movies.
    latest = [item for item in positives(home)["1"] if int(item) <= 400][-10:]
    frame = load_movielens(home / "data" / "movielens")["items"].set_index("item_id")
    embedder = Embedder.from_pretrained(model_dir)
    instruction = load_stage("seq2item").dataset("movielens-sequences").instructions["target"]
    movies = embedder.embed(
        movielens_items(frame.loc[latest].reset_index()), instruction=instruction
    ).vectors
    pooled = embedder.model.pool_sequences(torch.from_numpy(movies), [list(range(len(latest)))])
    np.testing.assert_allclose(vector, truncate(pooled, DIM)[0].detach().numpy(), atol=1e-5)


def test_republish_same_version_leaves_the_same_online_rows(published, model_dir):
    from sail.feature_store.publish import publish

    home, first = published
    before = online_rows(home)
    again = publish(model_dir, "v1", dim=DIM, batch_size=64, home=home, limit=LIMIT)
    after = online_rows(home)
    assert again.event_timestamp == first.event_timestamp
    assert {view: len(rows) for view, rows in after.items()} == {
        # one row per feature: embedding, its int8 and binary codes, version, catalogue, title
        "item_embedding": 412 * 6,
        "item_semantic_id": 412 * 3,
        "user_interest": first.rows["user_interest"] * 3,
    }
    assert after == before  # same keys, same serialized values, same timestamps


@pytest.fixture(scope="module")
def other_model_dir(tiny, tmp_path_factory):
    """The tiny model with every weight nudged: other vectors, same size and views."""
    import copy

    import torch

    model, processor = tiny
    other = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    return save_pretrained(other, processor, tmp_path_factory.mktemp("tiny-other"))


def _which_rows(home, store, old, new) -> list[str]:
    """What one read of a few items, and one of a few users, saw: each 'old', 'new', 'empty' or
    'mixed' (one read is one view's table, read in one statement)."""
    from sail.feature_store.query import online_features

    seen = []
    for kind, ids in (("items", list(old["items"])), ("users", list(old["users"]))):
        argument = "item_ids" if kind == "items" else "user_ids"
        frame = online_features(**{argument: ids}, home=home, store=store)
        rows = set()
        for key, vector in zip(frame.iloc[:, 0], frame["embedding"], strict=True):
            if vector is None:
                rows.add("empty")
            elif np.array_equal(vector, old[kind][key]):
                rows.add("old")
            elif np.array_equal(vector, new[kind][key]):
                rows.add("new")
            else:
                rows.add("other")
        seen.append(rows.pop() if len(rows) == 1 else "mixed")
    return seen


def _vectors(report, items, users) -> dict:
    frames = {
        kind: pd.read_parquet(report.files[view]).set_index(key)["embedding"]
        for kind, view, key in (
            ("items", "item_embedding", "item_id"),
            ("users", "user_interest", "user_id"),
        )
    }
    return {
        "items": {key: frames["items"][key] for key in items},
        "users": {key: frames["users"][key] for key in users},
    }


def test_an_online_versions_republish_is_never_seen_half_done(
    published, model_dir, other_model_dir
):
    """A reader polling v1 while v1 is re-published by another model sees the old rows, then
    the new ones: never an empty table, never a mix of the two. Fails on a publish that drops
    and refills the live tables."""
    import threading

    from sail.feature_store.publish import publish
    from sail.feature_store.repo import open_store

    home, first = published
    items, users = ["50", "1", "400"], ["1", "2"]
    old = _vectors(first, items, users)
    replaced = publish(other_model_dir, "v1", dim=DIM, batch_size=64, home=home, limit=LIMIT)
    new = _vectors(replaced, items, users)
    assert not np.array_equal(old["items"]["50"], new["items"]["50"])
    old, new = new, old  # now going back to the first model's rows, watched
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        store = open_store(home)
        while not done.is_set():
            try:
                seen.extend(_which_rows(home, store, old, new))
            except Exception as error:  # a table dropped under the reader
                seen.append(f"error: {type(error).__name__}")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        again = publish(model_dir, "v1", dim=DIM, batch_size=64, home=home, limit=LIMIT)
    finally:
        done.set()
        reader.join()
    seen.extend(_which_rows(home, open_store(home), old, new))
    assert again.online_rows == again.rows
    assert set(seen) <= {"old", "new"}, f"reads saw {sorted(set(seen))}"
    assert seen[0] == "old" and seen[-1] == "new" and len(seen) > 5
    tables = online_tables(home)
    assert not any("__next" in table for table in tables)  # the staged tables were swapped in
    staged = list((home / "feature_store" / "offline").rglob("*__next*"))
    assert staged == []


def test_an_online_versions_republish_must_keep_its_size(published, model_dir):
    from sail.feature_store.publish import publish

    home, _ = published
    before = online_rows(home)
    with pytest.raises(ValueError, match="v1 is online with size 32, .* a re-publish must keep"):
        publish(model_dir, "v1", dim=16, home=home, limit=LIMIT)
    assert online_rows(home) == before


def test_the_store_lock_is_one_at_a_time_and_a_dead_holder_loses_it(published):
    """A second holder waits, then gets StoreBusy naming the first; once the first holder's
    connection is gone (its process died), the lock is free at once."""
    import threading

    from sail.feature_store.lock import StoreBusy, lock_key, store_lock
    from sail.feature_store.online_tables import connect
    from sail.feature_store.repo import open_store

    home, _ = published
    store = open_store(home)
    holder = connect(store)
    holder.execute("SET application_name = 'crashed publish'")
    holder.execute("SELECT pg_advisory_lock(%s)", [lock_key(store.config.project)])
    errors = []

    def take() -> None:  # another thread: not the holder of this process's lock
        try:
            with store_lock(store, timeout_s=1):
                pass
        except StoreBusy as error:
            errors.append(str(error))

    thread = threading.Thread(target=take)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "'crashed publish'" in errors[0] and "waited 1 s" in errors[0]
    holder.close()  # what the server sees when the holding process is killed
    with store_lock(store, timeout_s=5), store_lock(store, timeout_s=0):  # reentrant
        pass


def test_similar_agrees_with_brute_force_cosine(published):
    from sail.feature_store.query import similar

    home, report = published
    parquet = pd.read_parquet(report.files["item_embedding"])
    vectors = np.stack(parquet["embedding"].to_numpy())
    ids = parquet["item_id"].tolist()
    scores = vectors @ vectors[ids.index("50")]
    expected = [ids[i] for i in np.argsort(-scores) if ids[i] != "50"][:5]

    neighbours = similar("50", 5, home=home)
    assert [n.item_id for n in neighbours] == expected
    got = [n.score for n in neighbours]
    assert got == sorted(got, reverse=True)
    np.testing.assert_allclose(got, [scores[ids.index(i)] for i in expected], atol=1e-5)
    assert neighbours[0].title and neighbours[0].catalogue in ("movielens", "openclipart")
    assert [n.item_id for n in similar("50", 5, home=home)] == expected  # a second search works


def test_unknown_item_is_a_clear_error(published):
    from sail.feature_store.query import NotPublished, similar

    home, _ = published
    with pytest.raises(
        NotPublished,
        match=r"item 99999 is not in the online store; published "
        r"catalogues: movielens \(400 items\), openclipart \(12 items\)",
    ):
        similar("99999", home=home)


@pytest.fixture(scope="module")
def second_version(published, model_dir):
    """v2, a smaller catalogue at another size, published beside v1."""
    from sail.feature_store.publish import publish

    home, _ = published
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "codebook_size")  # 4 items: the codebooks are clamped
        return publish(model_dir, "v2", dim=16, catalogues=["openclipart"], home=home, limit=4)


def test_a_new_version_goes_online_beside_the_default_one(published, second_version):
    from sail.feature_store.query import NotPublished, online_features, similar
    from sail.feature_store.repo import read_state

    home, first = published
    assert second_version.event_timestamp > first.event_timestamp
    state = read_state(home)
    assert state["default"] == "v1"
    assert [v for v, r in state["versions"].items() if r["online"]] == ["v1", "v2"]
    counts = {view: len(rows) for view, rows in online_rows(home, "v2").items()}
    assert counts == {"item_embedding": 4 * 6, "item_semantic_id": 4 * 3}  # no user view
    assert {view: len(rows) for view, rows in online_rows(home).items()} == {
        "item_embedding": 412 * 6,
        "item_semantic_id": 412 * 3,
        "user_interest": first.rows["user_interest"] * 3,
    }
    assert len(similar("50", 10, home=home)) == 10  # the default, v1, is untouched
    with pytest.raises(NotPublished, match="openclipart \\(4 items\\) \\(model_version v2\\)"):
        similar("50", home=home, version="v2")
    drawing = pd.read_parquet(second_version.files["item_embedding"])["item_id"].iloc[0]
    neighbours = similar(drawing, 10, home=home, version="v2")
    assert len(neighbours) == 3
    items = online_features(item_ids=[drawing], home=home, version="v2")
    assert items["model_version"].tolist() == ["v2"] and items["embedding"][0].shape == (16,)
    with pytest.raises(NotPublished, match="model version v3 was never published"):
        similar(drawing, home=home, version="v3")


def test_a_query_searches_only_the_rows_of_the_version_that_embedded_it(published, second_version):
    from sail.feature_store.query import VersionMismatch, search

    home, first = published
    v1 = pd.read_parquet(first.files["item_embedding"])
    v2 = pd.read_parquet(second_version.files["item_embedding"])
    query = v2["embedding"].iloc[0]
    hits = search(query, "v2", 10, home=home)
    assert {hit.item_id for hit in hits} == set(v2["item_id"])  # 4 rows, not v1's 412
    assert hits[0].item_id == v2["item_id"].iloc[0] and hits[0].score == pytest.approx(1.0)
    full = np.concatenate([v1.set_index("item_id").loc["50", "embedding"], np.ones(8)])
    assert search(full, "v1", 1, home=home)[0].item_id == "50"  # the Matryoshka prefix
    with pytest.raises(
        VersionMismatch, match="model version v7, whose rows are not published .*online: v1"
    ):
        search(query, "v7", home=home)
    with pytest.raises(ValueError, match="has 16 values; model version v1 publishes 32"):
        search(query, "v1", home=home)


def test_sail_search_embeds_with_the_server_and_searches_its_versions_rows(
    published, second_version, model_dir, monkeypatch
):
    from typer.testing import CliRunner

    from sail.cli import app
    from sail.serving.server import build_server

    home, first = published
    monkeypatch.setenv("SAIL_HOME", str(home))
    v1 = set(pd.read_parquet(first.files["item_embedding"])["item_id"])
    runner = CliRunner()
    with build_server(model_dir, port=0, model_version="v1") as server:
        found = runner.invoke(app, ["search", "--text", "a space opera", "--server", server.url])
        assert found.exit_code == 0, found.output
        lines = found.output.strip().splitlines()
        assert lines[0] == "model version v1" and len(lines) == 11
        assert {line.split()[2] for line in lines[1:]} <= v1
        asked = ["search", "--text", "a duck", "--server", server.url, "--version", "v2"]
        refused = runner.invoke(app, asked)
        assert refused.exit_code == 2
        assert "embeds with model version v1, not v2" in refused.output
        server.model.version = "v9"  # a server whose version has no rows online
        refused = runner.invoke(app, ["search", "--text", "a duck", "--server", server.url])
        assert refused.exit_code == 2
        assert "model version v9, whose rows are not published" in refused.output
        server.model.version = "v1"
    gone = runner.invoke(app, ["search", "--text", "a duck", "--server", server.url])
    assert gone.exit_code == 2 and "no embedding server at" in gone.output


def test_retiring_drops_a_versions_rows_and_bringing_it_back_restores_them(
    published, second_version
):
    from sail.feature_store.online import bring_online, retire, set_default
    from sail.feature_store.query import VersionMismatch, search
    from sail.feature_store.repo import read_state

    home, _ = published
    before = online_rows(home, "v2")
    with pytest.raises(ValueError, match="the default version v1 must stay online"):
        retire({"v2"}, home=home)
    assert retire({"v1"}, home=home) == ["v2"]
    assert not any(table.endswith("__v2") for table in online_tables(home))
    query = pd.read_parquet(second_version.files["item_embedding"])["embedding"].iloc[0]
    with pytest.raises(VersionMismatch, match="model version v2, whose rows are not online"):
        search(query, "v2", home=home)
    assert read_state(home)["versions"]["v2"]["retired"]

    bring_online("v2", home=home)
    assert online_rows(home, "v2") == before
    assert set_default("v2", home=home) == "v1"
    assert retire({"v2"}, home=home) == ["v1"]
    assert read_state(home)["default"] == "v2" and online_rows(home, "v1") == {}


def test_the_catalogue_follows_what_the_endpoint_serves(published, second_version):
    """After the retire test: v2 online and the default, v1 retired."""
    from sail.feature_store.online import follow
    from sail.feature_store.query import similar
    from sail.feature_store.repo import read_state

    home, _ = published
    canary = follow(["v1", "v2"], "v1", home=home)  # v1 stable, v2 a canary
    assert (canary.default, canary.brought_online, canary.retired) == (("v2", "v1"), ["v1"], [])
    assert canary.summary() == "default v2 -> v1, brought online: v1"
    assert len(similar("50", 3, home=home)) == 3
    promoted = follow(["v2"], "v2", home=home)
    assert promoted.summary() == "default v1 -> v2, retired: v1"
    assert follow(["v2"], "v2", home=home).summary() == "unchanged (default v2)"
    unknown = follow(["v3"], "v3", home=home)
    assert (
        unknown.summary() == "default v2 -> None, retired: v2, served but never published here: v3"
    )
    assert read_state(home)["default"] is None


def test_nothing_published_is_a_clear_error(tmp_path):
    from sail.feature_store.query import NotPublished, online_features, similar

    with pytest.raises(NotPublished, match="nothing is published in"):
        similar("50", home=tmp_path)
    with pytest.raises(ValueError, match="exactly one of item_ids and user_ids"):
        online_features(home=tmp_path)


def test_a_store_from_before_versioned_views_reads_as_nothing_online(tmp_path):
    from sail.feature_store.query import NotPublished, similar
    from sail.feature_store.repo import read_state

    store = tmp_path / "feature_store"
    store.mkdir()
    record = {"dim": 128, "event_timestamp": "2026-11-01T00:00:00+00:00", "rows": {}}
    (store / "published.json").write_text(json.dumps({"online": "3", "versions": {"3": record}}))
    state = read_state(tmp_path)
    assert state == {"default": None, "versions": {"3": {**record, "online": False}}}
    with pytest.raises(NotPublished, match="no default version in .* \\(no version is online\\)"):
        similar("50", home=tmp_path)
    with pytest.raises(NotPublished, match="model version 3 is not online"):
        similar("50", home=tmp_path, version="3")


def test_publish_checks_its_arguments_first(tmp_path, model_dir):
    from model_code.config import ConfigError
    from sail.feature_store.publish import publish

    for bad in ("../v1", "1.0", "v" * 25):  # it names tables: no dots, at most 24 characters
        with pytest.raises(ValueError, match="model_version must be"):
            publish(model_dir, bad, dim=DIM, home=tmp_path)
    with pytest.raises(ValueError, match="catalogues must name some of"):
        publish(model_dir, "v1", dim=DIM, catalogues=["imdb"], home=tmp_path)
    with pytest.raises(ConfigError, match="not a Matryoshka size"):
        publish(model_dir, "v1", dim=128, home=tmp_path)
    assert not (tmp_path / "feature_store").exists()


@pytest.mark.parametrize(
    "config", ["feature_repo/production.yaml.example", "manifests/base/feast/feature_store.yaml"]
)
def test_production_configs_use_the_local_store_type_with_vector_search(config, monkeypatch):
    from pathlib import Path

    from feast.repo_config import RepoConfig

    root = Path(__file__).resolve().parents[2]
    local = yaml.safe_load((root / "feature_repo" / "feature_store.yaml").read_text())
    text = (root / config).read_text()
    for variable in set(re.findall(r"\$\{(\w+)\}", text)):
        monkeypatch.setenv(variable, "s3://bucket/registry.pb" if "REGISTRY" in variable else "x")
    settings = yaml.safe_load(os.path.expandvars(text))
    settings["offline_store"] = {"type": "file"}  # the warehouse clients are not installed here
    store = RepoConfig(repo_path=root, **settings).online_store
    assert settings["online_store"]["type"] == local["online_store"]["type"] == "postgres"
    assert type(store).__name__ == "PostgreSQLOnlineStoreConfig" and store.vector_enabled
    assert store.db_schema == "feast_online"
