"""Steps in scratch homes, and the audit that finds steps meeting through a folder.

The whole pipeline's audit comes back clean in tests/pipelines/test_local_run.py; here two small
steps through kfp.local show that a deliberately shared path is caught, while the same hand-over
through an artifact is not.
"""

import os
import tempfile
from pathlib import Path

import pytest
from kfp import dsl, local

from model_code.paths import DATA_ENV, data_dir, sail_home
from sail.pipeline.isolation import AUDIT_ENV, current_scope, find_sharing, step_scope


def test_a_step_runs_in_a_scratch_home_that_is_deleted(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    cwd, home = os.getcwd(), sail_home()
    with step_scope("train_x", tmp_path / "data") as scope:
        assert current_scope() == scope
        assert sail_home() == scope.scratch / "home" and Path.cwd() == scope.scratch / "work"
        assert Path(tempfile.gettempdir()) == scope.scratch / "tmp"
        assert data_dir() == (tmp_path / "data").resolve()
        (scope.scratch / "home" / "left.txt").write_text("gone with the step")
    assert not scope.scratch.exists() and current_scope() is None
    assert os.getcwd() == cwd and sail_home() == home and DATA_ENV not in os.environ
    assert Path(tempfile.gettempdir()) != scope.scratch / "tmp"


def test_the_scratch_home_is_deleted_when_the_step_fails(tmp_path):
    with pytest.raises(RuntimeError), step_scope("failing") as scope:
        raise RuntimeError("boom")
    assert not scope.scratch.exists()


@dsl.component(base_image="python:3.11")
def write_note(shared: str, note: dsl.Output[dsl.Artifact]):
    """Hands a note on through `shared` when it is a path, else through its output artifact."""
    from pathlib import Path

    from sail.pipeline.isolation import step_scope

    with step_scope("writer"):
        target = Path(shared) if shared else Path(note.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("hello")
        if shared:
            Path(note.path).write_text("see the shared folder")


@dsl.component(base_image="python:3.11")
def read_note(shared: str, note: dsl.Input[dsl.Artifact]) -> str:
    from pathlib import Path

    from sail.pipeline.isolation import step_scope

    with step_scope("reader"):
        return (Path(shared) if shared else Path(note.path)).read_text()


@dsl.pipeline
def hand_over(shared: str):
    written = write_note(shared=shared)
    read_note(shared=shared, note=written.outputs["note"])


@pytest.mark.parametrize("through_a_folder", [False, True])
def test_the_audit_catches_a_deliberately_shared_path(tmp_path, monkeypatch, through_a_folder):
    root, audit = tmp_path / "pipeline-root", tmp_path / "audit"
    shared = tmp_path / "shared" / "note.txt"
    monkeypatch.setenv(AUDIT_ENV, str(audit))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    hand_over(shared=str(shared) if through_a_folder else "")
    findings = find_sharing(audit, [root])
    if through_a_folder:
        assert f"reader read {shared}, written by writer" in findings
        assert f"writer left {shared}" in findings
    else:
        assert findings == []
