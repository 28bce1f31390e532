"""Step profiles and the readable title of a pipeline run."""

from model_code.training.stages import load_stage
from sail.pipeline.profiles import (
    PROFILES,
    profile_of,
    readable_parameters,
    run_title,
    stage_steps,
)


def _parameters(steps, preset="mini"):
    return {"preset": preset, **{f"{stage}_steps": count for stage, count in steps.items()}}


def test_a_profile_is_recognised_from_the_steps_kfp_hands_over_as_text():
    as_text = {stage: f"{count}.0" for stage, count in PROFILES["full"].items()}
    assert profile_of(_parameters(as_text)) == "full"
    assert profile_of(_parameters(PROFILES["quick"])) == "quick"


def test_other_steps_name_the_counts_with_stage_defaults_resolved():
    steps = {**PROFILES["full"], "content1": 0}
    default = load_stage("content1").steps
    assert stage_steps(_parameters(steps))["content1"] == default
    assert profile_of(_parameters(steps)) == f"steps {default}/10/15/15/600"


def test_the_title_has_preset_profile_and_start_time_in_utc():
    title = run_title(_parameters(PROFILES["quick"], "base"), started=1796000000)
    assert title == "base · quick · 2026-11-30 00:53 UTC"


def test_whole_numbers_lose_the_decimal_point_kfp_gives_them():
    given = {"content1_steps": "45.0", "baseline_margin": "0.01", "data_uri": "", "dim": 128}
    assert readable_parameters(given) == {
        "content1_steps": "45",
        "baseline_margin": "0.01",
        "data_uri": "",
        "dim": "128",
    }
