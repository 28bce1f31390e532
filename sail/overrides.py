"""`--set KEY=VALUE`: settings of a stage config replaced for one run.

- `parse_assignments(pairs)` -> {KEY: VALUE}. A VALUE is read as JSON when it is JSON (`5e-5`,
  `8`, `true`, `["vision"]`), else kept as text (`sequence_pooling=transformer`). Pipeline
  parameters (`sail pipeline submit|schedule --param`) are read the same way.
- `stage_overrides(pairs)` -> {STAGE: {KEY: VALUE}} from `STAGE.KEY=VALUE` pairs, each stage
  loaded with its overrides, so a wrong key or type fails before anything runs.
- `check_stage_overrides(overrides)` is that check on a mapping (a pipeline argument).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def parse_assignments(pairs: Sequence[str]) -> dict[str, Any]:
    """KEY=VALUE pairs as a dict (a later KEY wins); a ValueError names a pair without `=`."""
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{pair!r} is not NAME=VALUE (e.g. lr=5e-5)")
        settings[key.strip()] = _value(text)
    return settings


def stage_overrides(pairs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """STAGE.KEY=VALUE pairs as {STAGE: {KEY: VALUE}}, checked (`check_stage_overrides`)."""
    overrides: dict[str, dict[str, Any]] = {}
    for name, value in parse_assignments(pairs).items():
        stage, sep, key = name.partition(".")
        if not sep or not key:
            raise ValueError(f"{name!r} does not name a stage's setting: use STAGE.KEY=VALUE")
        overrides.setdefault(stage, {})[key] = value
    check_stage_overrides(overrides)
    return overrides


def check_stage_overrides(overrides: Mapping[str, Mapping[str, Any]]) -> None:
    """Load each stage with its overrides: a ConfigError names an unknown stage, an unknown key
    or a value of the wrong type."""
    from model_code.training.stages import load_stage

    for stage, settings in overrides.items():
        if not isinstance(settings, Mapping):
            raise ValueError(f"the overrides of stage {stage!r} must be a mapping of settings")
        load_stage(stage, **settings)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
