"""Fixtures shared by the tracking and registry tests."""

from __future__ import annotations

import mlflow
import pytest

from model_code.factory import save_pretrained
from sail.tracking.pyfunc import log_model
from sail.tracking.runs import start_pipeline_run, step_run


@pytest.fixture(scope="module")
def logged(tiny, tmp_path_factory):
    """A tiny model folder logged once as a pyfunc, in a step run of a fresh store."""
    root = tmp_path_factory.mktemp("registry")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAIL_HOME", str(root / "home"))
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        model_dir = save_pretrained(*tiny, root / "tiny-model")
        with step_run(start_pipeline_run("pipe-reg", {}), "register") as run_id:
            info = log_model(model_dir)
        yield {"model_dir": model_dir, "info": info, "run_id": run_id, "root": root}
        while mlflow.active_run() is not None:
            mlflow.end_run()
