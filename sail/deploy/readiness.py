"""Whether an InferenceService serves its current spec, read from its status (a pure function).

Ready means: the status reflects the change (see below), its `Ready` condition is "True", and in
Serverless mode the latest created revision is the latest ready one (status.components.predictor),
so a canary's new revision is up, not just the previous one. KServe copies status.observedGeneration
from the Knative Service (Serverless) or the Deployment (RawDeployment), not from the
InferenceService's own generation: a status describes a change once its observedGeneration is past
the one the API returned with the change (`reconciled_after`); until then it is the old status.
Failed means: for the latest generation, `Ready` is "False" with a reason or message (Knative's
`RevisionFailed`, a Deployment's `ProgressDeadlineExceeded`); a "False" without either is a
RawDeployment still rolling and counts as pending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Readiness:
    state: Literal["ready", "pending", "failed"]
    revision: str  # the predictor's latest created revision ("" in RawDeployment mode or yet)
    detail: str  # the Ready condition, or what is still awaited


def ready_condition(isvc: dict) -> dict | None:
    conditions = (isvc.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), None)


def describe(condition: dict | None) -> str:
    """`Ready=False (RevisionFailed: ...)`, or that there is no Ready condition."""
    if condition is None:
        return "no Ready condition yet"
    why = ": ".join(str(condition[k]) for k in ("reason", "message") if condition.get(k))
    return f"Ready={condition.get('status')}" + (f" ({why})" if why else "")


def predictor_status(isvc: dict) -> dict:
    """status.components.predictor: the revisions (latest created, ready, rolled out)."""
    return ((isvc.get("status") or {}).get("components") or {}).get("predictor") or {}


def observed_generation(isvc: dict) -> int | None:
    return (isvc.get("status") or {}).get("observedGeneration")


def readiness(isvc: dict, reconciled_after: int | None = None) -> Readiness:
    """Ready, pending or failed (see the module doc), with the revision and the condition.
    `reconciled_after`: the observedGeneration returned with the change (None: none awaited)."""
    components = predictor_status(isvc)
    revision = components.get("latestCreatedRevision") or ""
    observed = observed_generation(isvc)
    if reconciled_after is not None and (observed is None or observed <= reconciled_after):
        return Readiness("pending", revision, f"the change is not reconciled yet ({observed})")
    condition = ready_condition(isvc)
    detail = describe(condition)
    if condition is None:
        return Readiness("pending", revision, detail)
    if condition.get("status") == "False" and (condition.get("reason") or condition.get("message")):
        return Readiness("failed", revision, detail)
    if condition.get("status") != "True":
        return Readiness("pending", revision, detail)
    latest_ready = components.get("latestReadyRevision")
    if revision and latest_ready != revision:
        return Readiness("pending", revision, f"{detail}, but latest ready is {latest_ready}")
    return Readiness("ready", revision, detail)
