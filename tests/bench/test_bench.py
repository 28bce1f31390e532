"""`python -m bench` in smoke mode: every suite on tiny or synthetic things. The figures'
structure is checked and every ratio is finite and positive; speed is never asserted."""

from __future__ import annotations

import json
import math
import os
import time

import pytest

from bench import compact, feature_store, pipeline, precision, serving, step_profile, training
from bench.__main__ import main
from bench.report import PLOT, plot_serving, render
from bench.report import compact_section as render_compact
from bench.report import precision_section as render_precision
from bench.report import training_section as render_training
from bench.timing import Measurement, abba, interleave, percentile, ratio


def positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


# --- helpers -------------------------------------------------------------------------------


def test_timing_helpers():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert math.isnan(percentile([], 99))
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(1.0, 0.0) is None and ratio(None, 1.0) is None and ratio(math.nan, 1) is None
    assert abba(["a", "b"], 3) == ["a", "b", "b", "a", "a", "b"]
    calls = []

    def variant(name):
        def run(n):
            calls.append((name, n))
            return Measurement(n, 0.5, [0.5])

        return run

    merged = interleave({"a": variant("a"), "b": variant("b")}, total=5, rounds=2)
    assert calls == [("a", 3), ("b", 3), ("b", 2), ("a", 2)]
    assert merged["a"].items == 5 and merged["a"].seconds == 1.0
    summary = merged["b"].summary()
    assert summary["items_per_s"] == 5.0 and summary["requests"] == 2
    calls.clear()
    merged = interleave({"a": variant("a"), "b": variant("b")}, {"a": 1, "b": 4}, rounds=2)
    assert calls == [("a", 1), ("b", 2), ("b", 2)]
    assert merged["a"].items == 1 and merged["b"].items == 4


# --- serving and training: the smoke presets ----------------------------------------------


@pytest.fixture(scope="module")
def serving_results():
    return serving.run(smoke=True, threads=2)


@pytest.fixture(scope="module")
def training_results():
    return training.run(smoke=True, threads=2)  # two training processes: about a minute


def test_serving_smoke_measures_every_variant(serving_results):
    rows = serving_results["rows"]
    assert set(serving_results["items"]) == {"text", "text+image"}
    cell = {(r["kind"], r["variant"], r["concurrency"]): r for r in rows}
    assert len(cell) == len(rows)
    for kind, levels in serving.SMOKE_COUNTS.items():
        for concurrency, count in levels.items():
            for variant in ("b", "c"):
                row = cell[kind, variant, concurrency]
                assert row["items"] == row["requests"] == count
        expected = {"a32", "a1", "d32", "d1"} if kind == "text" else {"a32", "a1"}
        in_process = {r["variant"] for r in rows if r["kind"] == kind and r["concurrency"] is None}
        assert in_process == expected
    most = serving.SMOKE_COUNTS["text"][32]
    assert cell["text", "f", 32]["items"] == cell["text", "f", 32]["requests"] == most
    for variant in ("b16", "f16"):  # 16 items per request: the c=32 count in requests of 16
        assert cell["text", variant, 8]["items"] == most
        assert cell["text", variant, 8]["requests"] == most // serving.PER_REQUEST
    assert not any(r["variant"].startswith(("e", "f")) for r in rows if r["kind"] != "text")
    for row in rows:
        assert positive(row["items_per_s"]) and positive(row["p50_ms"])
        assert row["p99_ms"] >= row["p50_ms"]
        if row["concurrency"] is not None:  # HTTP cells: both processes were busy
            assert positive(row["client_cores"]) and positive(row["server_cores"])
            assert row["client_cores"] + row["server_cores"] < 2 * os.cpu_count()
    per_item, per_request = [], []
    for entry in serving_results["ratios"]:
        (per_request if entry.get("per_request") else per_item).append(entry)
    assert len(per_item) == 6 and len(per_request) == 1
    for entry in per_item:
        assert positive(entry["b_over_a"]) and positive(entry["b_over_c"])
        assert positive(entry["b_over_d"]) == (entry["kind"] == "text")
    # a smoke run starts no infinity-emb, so nothing is divided by it
    assert all(entry["b_over_e"] is None for entry in serving_results["ratios"])
    assert "infinity-emb" in next(iter(serving_results["not_measured"]))


@pytest.mark.slow
def test_training_smoke_compares_deepspeed_with_plain(training_results):
    rows = training_results["rows"]
    assert [(r["stage"], r["engine"]) for r in rows] == [
        ("content2", "deepspeed"),
        ("content2", "plain"),
    ]
    for row in rows:
        assert positive(row["samples_per_s"]) and positive(row["peak_rss_mb"])
        assert row["peak_rss_mb"] >= row["rss_before_training_mb"] > 0
        assert len(row["losses"]) == training.SMOKE_STEPS[0] + training.SMOKE_STEPS[1]
        assert row["torch_threads"] == 2
    (entry,) = training_results["ratios"]
    assert positive(entry["samples_per_s_ds_over_plain"])
    assert positive(entry["peak_rss_ds_over_plain"])
    # same batches, weights and optimiser: the two engines compute the same losses
    assert entry["max_loss_difference"] < 1e-3
    (plain,) = [row for row in training_results["rows"] if row["engine"] == "plain"]
    parts = training_results["profiles"]["content2"]
    assert set(parts) == {*step_profile.PARTS, "step"}
    assert all(seconds >= 0 for seconds in parts.values())
    for busy in ("tokenise and collate", "fuser (text and fusion)", "backward", "optimizer step"):
        assert positive(parts[busy]), busy
    # the parts cover the step: their sum is near the step the clock measured
    assert 0.7 * plain["step_s"] < parts["step"] < 1.3 * plain["step_s"]
    page = "\n".join(render_training(training_results))
    assert "| content2 | deepspeed |" in page and "| fuser (text and fusion) |" in page


def test_precision_smoke_measures_every_precision_against_fp32():
    results = precision.run(smoke=True, threads=2)
    assert results["precisions"][0] == "fp32" and "int8" in results["precisions"]
    for kind, rows in results["speed"].items():
        assert set(rows) == set(results["precisions"]), kind
        assert rows["fp32"]["vs_fp32"] == 1.0
        for row in rows.values():
            assert positive(row["items_per_s"]) and positive(row["vs_fp32"])
    assert results["quality"] == {"status": "skipped (smoke)"}
    page = "\n".join(render_precision(results))
    assert "## Inference precision (CPU)" in page and "| text | int8 |" in page
    assert "Quality: skipped (smoke)" in page


def test_compact_smoke_times_and_scores_every_code():
    results = compact.run(smoke=True, threads=2)
    dims = results["dims"]
    cells = {(row["dim"], row["encoding"]): row for row in results["search"]}
    assert set(cells) == {(d, e) for d in dims for e in ("float", "int8", "binary")}
    full = dims[-1]
    assert cells[full, "float"]["recall_at_10"] == 1.0  # the float search is the brute force
    for row in cells.values():
        assert positive(row["p50_ms"]) and row["p99_ms"] >= row["p50_ms"]
        assert 0 <= row["recall_at_10"] <= 1
    assert cells[full, "int8"]["recall_at_10"] >= 0.9
    assert results["storage"][str(full)] == {"float": 4 * full, "int8": full, "binary": full // 8}
    assert results["quality"] == {"status": "skipped (smoke)"}
    page = "\n".join(render_compact(results))
    assert "## Compact embeddings" in page and f"| {full} | binary | {full // 8} |" in page


def test_page_and_plot_from_smoke_results(serving_results, tmp_path):
    results = {
        "mode": "smoke",
        "machine": {
            "cpu": "test cpu",
            "cores": 2,
            "memory_gib": 1.0,
            "torch_threads": 2,
            "date": "2026-01-01T00:00:00+00:00",
            "load_average": [0.5, 0.5, 0.5],
            "versions": {"torch": "x"},
        },
        "suites": {
            "serving": serving_results,
            "pipeline": {"status": "skipped", "reason": "no FINISHED pipeline run"},
        },
    }
    json.dumps(results)  # JSON-ready
    page = render(results)
    assert "Do not edit by hand" in page
    assert "## Serving" in page and "## Training" in page and PLOT.as_posix() in page
    assert "Not measured (skipped): no FINISHED pipeline run" in page
    assert "## Training\n\nNot measured yet" in page  # a suite not run keeps its heading
    plot = plot_serving(serving_results, tmp_path / PLOT)
    assert plot.is_file() and plot.read_bytes()[:4] == b"\x89PNG"


# --- pipeline: a temporary MLflow store with a finished run ----------------------------------


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch):
    monkeypatch.setenv("SAIL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def fake_pipeline_run(uri: str, run_id: str, status: str = "FINISHED") -> str:
    """A parent run with nested step runs, as the pipeline's steps record them."""
    import mlflow

    from sail.tracking.runs import finish_pipeline_run, start_pipeline_run, step_run

    parent = start_pipeline_run(run_id, {"preset": "tiny"}, tracking_uri=uri)
    for step in ("validate-data", "evaluate", "publish"):
        time.sleep(0.02)  # orchestration between steps
        with step_run(parent, step, tracking_uri=uri):
            if step == "evaluate":
                mlflow.log_metrics(
                    {
                        "test/model/openclipart/t2i_recall_10": 0.25,
                        "test/model/movielens/hr_10": 0.03,
                        "test/frozen baselines/movielens/hr_10": 0.04,
                    }
                )
            if step == "publish":
                summary = {"model_version": "1", "seconds": 2.0, "seconds/feast": 0.5}
                summary.update({"rows/item_embedding": 40, "rows/user_interest": 10})
                mlflow.log_dict(summary, "publish.json")
    time.sleep(0.02)
    finish_pipeline_run(parent, status, tracking_uri=uri)
    return parent


def test_pipeline_suite_reads_the_latest_finished_run(tracking_uri):
    import mlflow

    assert pipeline.run(tracking_uri=tracking_uri)["status"] == "skipped"  # no store yet
    finished = fake_pipeline_run(tracking_uri, "p1")
    fake_pipeline_run(tracking_uri, "p2", status="FAILED")  # newer, but not finished
    client = mlflow.MlflowClient(tracking_uri)
    client.create_registered_model("sail-embedding")
    version = client.create_model_version("sail-embedding", "file:///tmp/none", run_id=finished)
    client.set_registered_model_alias("sail-embedding", "champion", version.version)
    tag = ("sail.metrics.test", '{"movielens/hr_10": 0.03}')
    client.set_model_version_tag("sail-embedding", version.version, *tag)

    result = pipeline.run(tracking_uri=tracking_uri)
    assert result["run_id"] == finished
    assert list(result["steps"]) == ["validate-data", "evaluate", "publish"]
    overhead = result["total_s"] - result["sum_of_steps_s"]
    assert result["overhead_s"] == pytest.approx(overhead, abs=0.02)
    assert result["total_s"] >= result["sum_of_steps_s"] >= 0
    assert result["quality"]["test_metrics"] == {
        "openclipart": {"t2i_recall_10": 0.25},
        "movielens": {"hr_10": 0.03},
        "movielens (frozen baseline)": {"hr_10": 0.04},
    }
    assert result["quality"]["champion"] == {
        "version": str(version.version),
        "metrics": {"test/movielens/hr_10": 0.03},
    }
    assert result["publish"]["rows/item_embedding"] == 40
    recorded = feature_store.recorded_publish(tracking_uri)
    assert recorded["rows"] == 50 and recorded["feast_step_rows_per_s"] == 100.0


def test_cli_writes_results_and_page(tmp_path, monkeypatch):
    monkeypatch.setenv("SAIL_HOME", str(tmp_path / "empty-home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "out"
    for suite in ("pipeline", "feature_store"):
        assert main(["--suite", suite, "--smoke", "--out-dir", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "smoke" and results["machine"]["cores"] >= 1
    assert list(results["suites"]) == ["pipeline", "feature_store"]  # both kept, in order
    for suite in results["suites"].values():
        assert suite["status"] == "skipped" and suite["reason"]
        assert suite["measured_at"] and suite["seconds"] >= 0
        assert suite["cpu"] == results["machine"]["cpu"]  # a kept suite keeps where it ran
    page = (out / "benchmarks.md").read_text()
    assert page.startswith("# Benchmarks") and "## Feature store" in page
    assert not (tmp_path / "empty-home" / "mlflow").exists()  # nothing created by reading


# --- feature store: a tiny model published on the real data, prepared small -----------------


@pytest.mark.slow
def test_feature_store_suite_on_a_tiny_publish(prepared_home, tiny, tmp_path):
    from model_code.factory import save_pretrained
    from sail.feature_store.publish import publish

    home = tmp_path / "home"
    home.mkdir()
    (home / "data").symlink_to(prepared_home / "data", target_is_directory=True)
    model_dir = save_pretrained(*tiny, tmp_path / "tiny-model")
    publish(model_dir, "v1", dim=32, home=home, limit={"movielens": 60, "openclipart": 4})
    before = _store_state(home)

    result = feature_store.run(home=home, smoke=True)
    assert result["model_version"] == "v1" and result["dim"] == 32
    operations = {row["operation"]: row for row in result["reads"]}
    assert set(operations) == {
        "item features, 1 item",
        "item features, 64 items",
        "similar, top 10",
        "user features, 1 user",
    }
    for row in operations.values():
        assert row["requests"] == feature_store.SMOKE["rounds"]
        assert positive(row["p50_ms"]) and row["p99_ms"] >= row["p50_ms"]
    assert result["materialize"]["rows"] == sum(result["online_rows"].values())
    assert positive(result["materialize"]["rows_per_s"])
    assert result["search_recall"] == {"items": 5, "k": 10, "recall": 1.0}  # exact search
    stored = result["stored_bytes_per_item"]
    assert stored["embedding"]["vector_value"] >= 4 * 32  # pgvector: 4 bytes a value
    # the codes' serialized values: 32 bytes of int8 and 4 of bits, plus a few of framing
    assert 32 <= stored["embedding_int8"]["value"] < 40
    assert 4 <= stored["embedding_binary"]["value"] < 12
    assert stored["embedding_binary"]["vector_value"] == 0
    assert _store_state(home) == before  # the real store was not touched: the suite ran on a copy


def _store_state(home):
    """The store folder's files (its server's data folder aside, which the server itself keeps
    writing) and the latest write to each of its online tables."""
    import psycopg

    from sail.feature_store.local_postgres import data_dir, socket_dir

    store = home / "feature_store"
    files = {
        path: path.stat().st_mtime_ns
        for path in store.rglob("*")
        if path.is_file() and data_dir(store) not in path.parents
    }
    with psycopg.connect(host=socket_dir(store), dbname="postgres", user="postgres") as db:
        tables = [
            row[0]
            for row in db.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'sail_embedding_%'"
            )
        ]
        written = {t: db.execute(f'SELECT max(created_ts) FROM "{t}"').fetchone() for t in tables}
    return files, written


@pytest.mark.slow
def test_serving_items_come_from_the_prepared_catalogues(prepared_home):
    from bench.serving_items import image_items, text_items

    texts, source = text_items(smoke=False)
    assert "MovieLens" in source and len(texts) == 256 and texts[0].title
    images, source = image_items(smoke=False)
    assert "openclipart" in source and images
    assert all(item.image.startswith("data:image/png;base64,") for item in images)


@pytest.mark.slow
def test_training_every_stage_in_smoke_mode():
    result = training.run(smoke=True, threads=2, stages=training.STAGES)
    assert [r["stage"] for r in result["ratios"]] == list(training.STAGES)
    engines = [r["engine"] for r in result["rows"]]
    assert engines[:4] == ["deepspeed", "plain", "plain", "deepspeed"]  # ABBA per stage
    for entry in result["ratios"]:
        assert positive(entry["samples_per_s_ds_over_plain"])
        assert entry["max_loss_difference"] < 1e-3
