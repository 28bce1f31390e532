"""The whole schedule, end to end, on the tiny preset and the real data prepared small."""

import json

from typer.testing import CliRunner

from model_code.training.stages import STAGES
from sail.cli import app


def test_schedule_trains_every_stage_and_reports(prepared_home, tmp_path):
    runner = CliRunner()
    out = tmp_path / "schedule"
    result = runner.invoke(app, ["schedule", "--preset", "tiny", "--steps", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert set(results["stages"]) == {"teacher", *STAGES}
    assert set(results["openclipart"]) == {
        "frozen encoders + ridge",
        "content1",
        "content2",
        "content3",
    }
    assert set(results["movielens"]) == {
        "popularity",
        "ID teacher (BPR)",
        "content only",
        "+ seq2item",
        "+ ID2item",
    }
    assert 0.0 <= results["movielens"]["ID teacher (BPR)"]["hr@10"] <= 1.0
    assert results["semantic_ids"]["unique_codes"] > 1
    page = tmp_path / "results.md"
    report = runner.invoke(app, ["report", "--results", str(out / "results.json"), "-o", str(page)])
    assert report.exit_code == 0, report.output
    assert "| ID teacher (BPR) |" in page.read_text()

    evaluated = runner.invoke(
        app, ["eval", "--model", str(out / "id2item" / "model"), "-o", str(tmp_path / "e.json")]
    )
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((tmp_path / "e.json").read_text())
    assert {"openclipart/t2i_recall@10", "movielens/hr@10"} <= set(metrics)
