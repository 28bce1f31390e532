"""The Dockerfile's structure, read as text: `make test` never builds the image (`make image` and
`make image-check` do, in minutes), so what can be checked without a build is checked here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each stage (FROM to the next FROM)."""
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def test_the_base_is_a_build_argument_with_a_registry_default():
    first = instructions()[0]
    assert first[0] == "ARG" and first[1].startswith("BASE_IMAGE=")
    default = first[1].split("=", 1)[1]
    assert re.fullmatch(r"[\w.-]+(/[\w.-]+)+:[\w.-]+", default)  # a registry reference, tagged
    assert stages()[0][0] == ("FROM", "${BASE_IMAGE} AS base")


def test_multi_stage_with_the_build_tools_in_the_builder_only():
    built = stages()
    names = [stage[0][1] for stage in built]
    assert names == ["${BASE_IMAGE} AS base", "base AS builder", "base"]
    builder, runtime = built[1], built[2]
    assert any("build-essential" in args for op, args in builder if op == "RUN")
    runtime_text = " ".join(args for _, args in runtime)
    assert "build-essential" not in runtime_text and "ninja" not in runtime_text
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime


def test_no_build_tools_and_no_pip_cache_reach_the_runtime():
    """What `make image-check` verifies in a built image ("no compiler on PATH"), read here: the
    stages the runtime is made of install no compiler, pip keeps no cache, and the code is
    installed without building or fetching anything."""
    base, _, runtime = stages()
    tools = re.compile(r"build-essential|\b(gcc|g\+\+|clang|cmake|ninja-build|python3-dev)\b")
    for op, args in base + runtime:
        assert not (op == "RUN" and tools.search(args)), args
    assert any(op == "ENV" and "PIP_NO_CACHE_DIR=1" in args for op, args in base)
    installs = [args for op, args in runtime if op == "RUN" and "pip install" in args]
    assert installs and all("--no-deps" in args for args in installs)
    assert ".venv-checkov/" in (ROOT / ".dockerignore").read_text().split()


def test_the_runtime_runs_as_a_non_root_user_with_sail_home_on_a_volume():
    runtime = stages()[-1]
    users = [args for op, args in runtime if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(op == "VOLUME" and "/var/lib/sail" in args for op, args in runtime)
    assert any(op == "ENV" and "SAIL_HOME=/var/lib/sail" in args for op, args in runtime)


def test_no_moving_tags_and_no_hard_coded_wheel_index():
    text = (ROOT / "Dockerfile").read_text()
    assert ":latest" not in text and "download.pytorch.org/whl/cpu" not in text
    assert "--index-url" not in text.replace('${TORCH_INDEX:+--index-url "$TORCH_INDEX"}', "")
    assert ("ARG", "TORCH_INDEX=") in instructions()  # empty: pip's configured indexes


def test_code_is_copied_after_every_dependency_is_installed():
    """A code-only change rebuilds the last layers only."""
    runtime = stages()[-1]
    code = runtime.index(("COPY", ". ."))
    venv = runtime.index(("COPY", "--from=builder /opt/venv /opt/venv"))
    assert venv < code and [op for op, _ in runtime[code + 1 :]] == ["RUN", "ARG", "ENV", "USER"]
    copied = [args for op, args in stages()[1] if op == "COPY"]
    assert copied == ["requirements/ requirements/", "pyproject.toml ./"]  # the builder: no code
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git/", ".venv/", ".sail/", "tests/"} <= set(ignored)


@pytest.mark.parametrize(
    "script", ["build-image.sh", "base-image.sh", "image-check.sh", "image-selfcheck.sh"]
)
def test_image_scripts_stop_on_errors(script):
    text = (ROOT / "scripts" / script).read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
