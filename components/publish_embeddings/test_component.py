"""publish_embeddings: the registered version's vectors land in the online store."""

from kfp import dsl

from components.publish_embeddings.component import publish_embeddings
from sail.feature_store.query import item_features, similar
from sail.tracking.pyfunc import log_model
from sail.tracking.registry import register
from sail.tracking.runs import start_pipeline_run, step_run


def test_registered_version_is_published_and_searchable(data, artifact, trained_tiny):
    with step_run(start_pipeline_run("run-1", {}), "register"):
        info = log_model(trained_tiny / "model")
    version = register(info, pipeline_run_id="run-1", data_fingerprint="sha256:abc")
    metrics = artifact(dsl.Metrics, "metrics")
    publish_embeddings.python_func(data, version, 32, metrics)
    features = item_features(["50"])
    assert len(features["embedding"][0]) == 32
    assert features["model_version"][0] == version
    neighbours = similar("50", 3)
    assert len(neighbours) == 3 and "50" not in [n.item_id for n in neighbours]
    assert all(n.title for n in neighbours)  # titles come from the store, not the data folder
