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
    smaller = ("16-d", "32-d")  # tiny's Matryoshka sizes below the full 64
    assert set(results["openclipart"]) == {
        "frozen encoders + ridge",
        "frozen encoders + ridge (alpha 30)",
        "content1",
        "content2",
        "content3",
        "final",
        *(f"{row} · {dim}" for row in ("content3", "final") for dim in smaller),
    }
    assert set(results["movielens"]) == {
        "frozen MiniLM",
        "popularity",
        "ID teacher (BPR)",
        "content only",
        "+ seq2item",
        "+ ID2item",
        *(f"{row} · {dim}" for row in ("content only", "+ ID2item") for dim in smaller),
    }
    full, cut = results["movielens"]["+ ID2item"], results["movielens"]["+ ID2item · 16-d"]
    assert full != cut  # the sizes are measured, not copied
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
