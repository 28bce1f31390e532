"""The champion gate's rule, on validation metrics of one data snapshot; it fails closed.

A version is promoted only when, for every primary metric (higher is better):
- its value is a number (missing or NaN refuses);
- it beats the frozen baseline's value on the same data by `baseline_margin`;
- it is not worse than the champion's value on the same data by more than `tolerance` (a
  champion whose figures on this data are unknown refuses: the caller re-evaluates it first).

Test metrics are reported beside the decision, never used to make it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

PRIMARY_METRICS = ("openclipart/t2i_recall@10", "movielens/hr@10")
SPLIT = "validation"


@dataclass(frozen=True)
class GatePolicy:
    """What the gate compares and how much room it gives."""

    primary: tuple[str, ...] = PRIMARY_METRICS
    baseline_margin: float = 0.01  # must beat each frozen baseline by this much
    tolerance: float = 0.01  # may be this much worse than the champion

    def __post_init__(self):
        if not self.primary:
            raise ValueError("the gate needs at least one primary metric")
        for name in ("baseline_margin", "tolerance"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not -1 < value < 1:
                raise ValueError(f"{name} must be a number in (-1, 1), got {value!r}")
        if self.tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance}")


DEFAULT_POLICY = GatePolicy()


@dataclass(frozen=True)
class Check:
    """One comparison: `metric` of the candidate against `against` (a baseline or the champion)."""

    metric: str
    against: str
    value: float | None
    bound: float | None
    passed: bool
    problem: str | None = None  # why it could not be compared

    def line(self) -> str:
        if self.problem:
            return f"{self.metric}: {self.problem}"
        relation = ">=" if self.passed else "<"
        return f"{self.metric} {self.value:.4f} {relation} {self.bound:.4f} ({self.against})"


@dataclass
class GateDecision:
    """The verdict, its reason (citing the validation figures) and every comparison made."""

    promoted: bool
    reason: str
    checks: list[Check] = field(default_factory=list)
    champion: str | None = None
    split: str = SPLIT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    candidate: Mapping[str, float],
    baselines: Mapping[str, float],
    champion: Mapping[str, float] | None = None,
    champion_version: str | None = None,
    policy: GatePolicy = DEFAULT_POLICY,
) -> GateDecision:
    """Apply the rule (see the module doc) to validation metrics already on the same data."""
    checks = []
    for metric in policy.primary:
        value = _number(candidate.get(metric))
        baseline = _number(baselines.get(metric))
        checks.append(_check(metric, value, baseline, policy.baseline_margin, "frozen baseline"))
        if champion is not None:
            old = _number(champion.get(metric))
            label = f"champion v{champion_version}"
            checks.append(_check(metric, value, old, -policy.tolerance, label))
    failed = [check for check in checks if not check.passed]
    if failed:
        reason = "refused: " + "; ".join(check.line() for check in failed)
        return GateDecision(False, reason, checks, champion_version)
    versus = f"champion v{champion_version}" if champion is not None else "no champion yet"
    passed = "; ".join(check.line() for check in checks)
    return GateDecision(True, f"promoted ({versus}): {passed}", checks, champion_version)


def _check(metric, value, reference, offset, against) -> Check:
    if value is None:
        return Check(metric, against, None, None, False, "the candidate's value is missing or NaN")
    if reference is None:
        problem = f"{against} has no value on this data"
        return Check(metric, against, value, None, False, problem)
    bound = reference + offset
    return Check(metric, f"{against} {reference:.4f} {offset:+g}", value, bound, value >= bound)


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)
