"""Output artifacts written whole or not at all."""

import pytest

from sail.pipeline.outputs import staged, write_output


def test_an_output_appears_only_when_complete(tmp_path):
    target = tmp_path / "model"
    with staged(target) as partial:
        partial.mkdir()
        (partial / "weights").write_text("w")
        assert not target.exists()
    assert (target / "weights").read_text() == "w" and not partial.exists()


def test_a_failed_attempt_leaves_nothing_and_a_rerun_starts_clean(tmp_path):
    target = tmp_path / "negatives.json"
    write_output(target, "old")
    with pytest.raises(RuntimeError), staged(target) as partial:
        partial.write_text("half")
        raise RuntimeError("killed")
    assert not target.exists() and not partial.exists()
    write_output(target, "new")
    assert target.read_text() == "new"


def test_a_resumable_output_keeps_its_partial_folder(tmp_path):
    target = tmp_path / "run"
    with pytest.raises(RuntimeError), staged(target, resume=True) as partial:
        partial.mkdir()
        (partial / "checkpoint").write_text("step 100")
        raise RuntimeError("killed")
    with staged(target, resume=True) as again:
        assert (again / "checkpoint").read_text() == "step 100"
    assert (target / "checkpoint").is_file() and not again.exists()
