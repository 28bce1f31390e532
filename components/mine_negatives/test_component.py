"""mine_negatives: JSON negatives per data set, never the item itself."""

import json
from pathlib import Path

from kfp import dsl

from components.mine_negatives.component import mine_negatives


def test_negatives_are_mined_with_the_given_model(data, artifact, trained_tiny):
    model = artifact(dsl.Model, "model")
    model.uri = str(trained_tiny)
    negatives, metrics = artifact(dsl.Dataset, "negatives"), artifact(dsl.Metrics, "metrics")
    mine_negatives.python_func("tiny", data, model, negatives, metrics)
    mined = json.loads(Path(negatives.path).read_text())
    assert set(mined) == {"openclipart"}
    rows = mined["openclipart"]["negatives"]
    assert rows and all(item not in negative for item, negative in rows.items())
    assert 0 <= metrics.metadata["openclipart/f1"] <= 1
