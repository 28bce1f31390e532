"""Step profiles of the pipeline and the readable title of a run made from its parameters."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from model_code.training.stages import STAGES

# Steps per stage. `full` is what `make run` trains (sized for 2 CPU cores); `quick` is for
# demos and tests; 0 would mean the stage config's own count.
PROFILES: dict[str, dict[str, int]] = {
    "full": {"content1": 45, "content2": 10, "content3": 15, "seq2item": 15, "id2item": 600},
    "quick": {stage: 2 for stage in STAGES},
}


def stage_steps(parameters: Mapping[str, object]) -> dict[str, int]:
    """Steps per stage from pipeline parameters (`<stage>_steps`; 0: the stage config's count).

    Values may arrive as text ("45", "45.0"), as KFP hands parameters to a component."""
    from model_code.training.stages import load_stage

    return {stage: count or load_stage(stage).steps for stage, count in _given(parameters).items()}


def profile_of(parameters: Mapping[str, object]) -> str:
    """The profile whose steps per stage the parameters give, else `steps 45/10/15/15/600`."""
    given = _given(parameters)
    for name, steps in PROFILES.items():
        if steps == given:
            return name
    return "steps " + "/".join(str(count) for count in stage_steps(parameters).values())


def run_title(parameters: Mapping[str, object], started: float | None = None) -> str:
    """`mini · full · 2026-11-29 17:50 UTC`: preset, profile and start time of a pipeline run."""
    moment = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    return f"{parameters.get('preset', 'mini')} · {profile_of(parameters)} · {moment}"


def readable_parameters(parameters: Mapping[str, object]) -> dict[str, str]:
    """Parameters as text, whole numbers without the ".0" KFP gives them ("45.0" -> "45")."""
    readable = {}
    for key, value in parameters.items():
        text = str(value)
        if re.fullmatch(r"-?\d+\.0", text):
            text = text[:-2]
        readable[key] = text
    return readable


def _given(parameters: Mapping[str, object]) -> dict[str, int]:
    """Steps per stage as the parameters give them (0: the stage config's count)."""
    return {stage: int(float(parameters.get(f"{stage}_steps", 0) or 0)) for stage in STAGES}
