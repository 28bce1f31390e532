import json
import subprocess
import sys

import numpy as np
from typer.testing import CliRunner

from model_code.data.synthetic import mixed_items
from model_code.items import write_jsonl
from sail.cli import app

runner = CliRunner()


def test_sail_embed_tiny_on_a_mixed_file(tmp_path):
    write_jsonl(mixed_items(8, media_dir=tmp_path / "media"), tmp_path / "items.jsonl")
    out = tmp_path / "out" / "emb.npy"
    result = runner.invoke(
        app,
        [
            "embed",
            "--preset",
            "tiny",
            "-i",
            str(tmp_path / "items.jsonl"),
            "-o",
            str(out),
            "--dim",
            "32",
        ],
    )
    assert result.exit_code == 0, result.output
    vectors = np.load(out)
    assert vectors.shape == (8, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (tmp_path / "out" / "emb.ids.txt").read_text().split() == [f"syn-{i}" for i in range(8)]


def test_sail_embed_reports_bad_items_or_skips_them(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text(
        json.dumps({"id": "ok", "title": "fine"})
        + "\n"
        + json.dumps({"id": "mp3", "audio": "data:audio/wav;base64,SUQzAwAAAAAAAA=="})
        + "\n"
    )
    args = ["embed", "--preset", "tiny", "-i", str(path), "-o", str(tmp_path / "e.npy")]
    failed = runner.invoke(app, args)
    assert failed.exit_code == 2
    assert "error: item 'mp3', field 'audio'" in failed.output
    skipped = runner.invoke(app, [*args, "--skip-bad"])
    assert skipped.exit_code == 0
    assert "skipped 1 bad item" in skipped.output
    assert np.load(tmp_path / "e.npy").shape == (1, 64)


def test_sail_embed_refuses_an_unknown_size(tmp_path):
    write_jsonl(mixed_items(2), tmp_path / "items.jsonl")
    result = runner.invoke(
        app,
        [
            "embed",
            "--preset",
            "tiny",
            "-i",
            str(tmp_path / "items.jsonl"),
            "-o",
            str(tmp_path / "e.npy"),
            "--dim",
            "48",
        ],
    )
    assert result.exit_code == 2
    assert "dimension 48 is not a Matryoshka size" in result.output


def test_console_script_is_installed():
    result = subprocess.run(
        [sys.executable, "-m", "sail", "--help"], capture_output=True, text=True, check=True
    )
    assert "embed" in result.stdout and "data" in result.stdout


def test_sail_train_tiny_runs_on_generated_data_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--preset", "tiny", "--stage", "content2", "--steps", "2", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "trained content2 for 2 steps" in result.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2]
    again = runner.invoke(app, [*args, "--resume", str(out)])
    assert again.exit_code == 0, again.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_sail_train_names_a_bad_stage(tmp_path):
    result = runner.invoke(
        app,
        ["train", "--preset", "tiny", "--stage", "content7", "--out", str(tmp_path)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 2
    assert "'content7' is not one of 'content1', 'content2'" in result.output


def test_sail_train_set_replaces_stage_settings_and_names_a_bad_one(tmp_path):
    args = ["train", "--preset", "tiny", "--stage", "content1", "--out", str(tmp_path / "run")]
    bad = runner.invoke(app, [*args, "--set", "lr=fast", "--set", "shuffle=true"])
    assert bad.exit_code == 2
    assert "lr: input should be a valid number, got 'fast'" in bad.output
    assert "unknown key 'shuffle'" in bad.output
    assert not (tmp_path / "run").exists()  # refused before training
    assert runner.invoke(app, [*args, "--set", "lr"]).exit_code == 2  # not KEY=VALUE
    settings = ["--set", "batch_size=4", "--set", "checkpoint_every=1", "--steps", "2"]
    trained = runner.invoke(app, [*args, *settings])
    assert trained.exit_code == 0, trained.output
    assert "trained content1 for 2 steps" in trained.output
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert "step1" in checkpoints, checkpoints  # checkpoint_every=1 took effect (default 100)


def test_presets_stages_profiles_and_precisions_are_choice_lists():
    for args, choices in (
        (["train", "--stage", "content1", "--out", "x", "--preset", "base"], "'base' is not one"),
        (["embed", "-i", "a", "-o", "b", "--precision", "fp8"], "'fp8' is not one of 'fp32'"),
        (["pipeline", "run", "--profile", "slow"], "'slow' is not one of 'full', 'quick'"),
    ):
        result = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert result.exit_code == 2 and choices in result.output, result.output
