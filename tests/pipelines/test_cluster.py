"""The cluster commands' inputs (a KFP API is needed past them: see docs/pipeline.md)."""

import pytest
import typer

from sail.pipeline.cli import parse_params
from sail.pipeline.cluster import kfp_cron, submit
from sail.pipeline.local import PROFILES, pipeline_arguments


def test_cron_gets_kfp_seconds_field():
    assert kfp_cron("0 3 * * 1") == "0 0 3 * * 1"
    assert kfp_cron("30 0 3 * * 1") == "30 0 3 * * 1"
    with pytest.raises(ValueError, match="has 3 fields"):
        kfp_cron("0 3 *")


def test_params_are_typed():
    assert parse_params(["preset=mini", "content1_steps=5", "gate_tolerance=0.02"]) == {
        "preset": "mini",
        "content1_steps": 5,
        "gate_tolerance": 0.02,
    }
    with pytest.raises(typer.BadParameter, match="NAME=VALUE"):
        parse_params(["preset"])


def test_submit_needs_the_compiled_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="make compile"):
        submit("http://127.0.0.1:9", tmp_path / "missing.yaml", {})


def test_profiles_and_arguments_are_checked_before_a_run():
    arguments = pipeline_arguments("tiny", "quick", 0.01, None)
    assert arguments["publish_dim"] == 64 and arguments["content1_steps"] == 2
    assert set(PROFILES["full"]) == set(PROFILES["quick"])
    with pytest.raises(ValueError, match="not a Matryoshka size"):
        pipeline_arguments("mini", "full", 0.01, 100)
    with pytest.raises(ValueError, match="unknown profile"):
        pipeline_arguments("mini", "slow", 0.01, None)
