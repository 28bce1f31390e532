from model_code.evaluation.report import render_results, write_report

RESULTS = {
    "preset": "mini",
    "split": "test",
    "date": "2026-11-26",
    "cores": 2,
    "stages": {
        "teacher": {"seconds": 8.0},
        "content1": {"steps": 60, "seconds": 200.5, "final_loss": 3.2},
    },
    "openclipart": {
        "frozen encoders + ridge": {
            "t2i_recall@1": 0.1,
            "t2i_recall@10": 0.45,
            "i2t_recall@1": 0.2,
        },
    },
    "movielens": {"popularity": {"hr@10": 0.0594, "ndcg@10": 0.0285}},
    "semantic_ids": {
        "levels": 2,
        "codebook_size": 8,
        "relative_error_per_level": [0.5, 0.25],
        "collision_rate": 0.125,
        "unique_codes": 7,
    },
}


def test_tables_hold_every_figure_and_leave_missing_ones_blank():
    text = render_results(RESULTS)
    assert "| frozen encoders + ridge | 0.100 |  | 0.450 | 0.200 |  |  |" in text
    assert "| popularity | 0.059 | 0.029 |" in text
    assert "| content1 | 60 | 200.5 | 3.2 |" in text
    assert "Total training time: 3.5 minutes." in text
    assert "0.500, 0.250" in text and "collision rate 0.125" in text


def test_write_report(tmp_path):
    import json

    path = tmp_path / "results.json"
    path.write_text(json.dumps(RESULTS))
    out = write_report(path, tmp_path / "docs" / "results.md")
    assert out.read_text().startswith("# Results")
