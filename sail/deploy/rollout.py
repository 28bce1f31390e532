"""Rolling a release out to the cluster's InferenceService, waiting for it, rolling it back.

`roll_out(services, desired)`:

- nothing live yet: create `desired` (the rendered manifest, or a rendered overlay with the
  release set) and wait for it to be Ready;
- live already serves the release: wait for it to be Ready, change nothing;
- otherwise JSON-patch only the release fields (`sail.deploy.release`): the live object's
  resources, arguments, image, canary percent, replicas, selectors and tolerations stay. Then wait
  for the new revision to be Ready (`sail.deploy.readiness`) and run the caller's `check` on it.
  When either fails, `roll_back` puts the previous release back and the result says so.

`promote(services, name, release)` gives a release all the traffic at once (`sail model
promote|rollback`): the release patch, if any, and canaryTrafficPercent 100 in one patch; once
Ready its revision is the rolled-out one, and the canary percent goes back to what it was, so the
next release starts as a canary again. A failure rolls back as above.

`services` is an `sail.deploy.api.InferenceServices` (or anything with its get / create / patch /
where): tests pass one bound to a fake API server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from sail.deploy.readiness import observed_generation, predictor_status, readiness
from sail.deploy.release import (
    Release,
    canary_patch,
    canary_percent,
    release_of,
    release_patch,
)

# Per wait. A failed canary costs three waits at most (release, restored model, canary percent
# back): 24 minutes, within the pipeline step's 30.
DEFAULT_READY_TIMEOUT_S = 480.0
DEFAULT_POLL_S = 5.0
Check = Callable[[dict], str | None]  # the Ready object -> None when healthy, else what is wrong


class RolloutError(RuntimeError):
    """The InferenceService does not serve the release."""


class NotReady(RolloutError):
    """Not Ready within the timeout, or its Ready condition failed."""


class CheckFailed(RolloutError):
    """Ready, but the caller's check on the new revision failed."""


class RollbackFailed(RolloutError):
    """The release failed and putting the previous one back did not finish either."""


@dataclass(frozen=True)
class Rollout:
    """What `roll_out` did, and the object as it left it."""

    action: Literal["create", "patch", "unchanged", "rolled back"]
    release: Release  # what was deployed
    previous: Release | None  # what the live object served before (None on create)
    patch: list[dict]  # the JSON patch sent for the release ([] on create / unchanged)
    isvc: dict  # the live object at the end
    report: str  # one line: what happened

    @property
    def rolled_back(self) -> bool:
        return self.action == "rolled back"


def roll_out(
    services: Any,
    desired: dict,
    *,
    timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    poll_s: float = DEFAULT_POLL_S,
    check: Check | None = None,
) -> Rollout:
    """Create or patch the InferenceService to serve `desired`'s release and wait until it is
    Ready (see the module doc); a failed canary is rolled back."""
    name = desired["metadata"]["name"]
    release = release_of(desired)
    live = services.get(name)
    if live is None:
        services.create(desired)
        ready = _ready_and_checked(services, name, timeout_s, poll_s, check, None)
        report = f"{services.where(name)}: created, serving v{release.version}"
        return Rollout("create", release, None, [], ready, report)
    unchanged = f"already serves v{release.version}"
    return _patched(
        services, live, release, release_patch(live, release), unchanged, check, timeout_s, poll_s
    )


def promote(
    services: Any,
    name: str,
    release: Release,
    *,
    timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    poll_s: float = DEFAULT_POLL_S,
) -> Rollout:
    """Serve `release` with all the traffic (see the module doc)."""
    live = services.get(name)
    if live is None:
        raise RolloutError(f"there is no InferenceService {services.where(name)}: deploy first")
    percent = canary_percent(live)
    canary = percent is not None and percent < 100
    patch = release_patch(live, release) + (canary_patch(live, 100) if canary else [])
    unchanged = f"already serves v{release.version} with all traffic"
    rollout = _patched(services, live, release, patch, unchanged, None, timeout_s, poll_s)
    if rollout.action != "patch" or not canary:
        return rollout
    since = _patch(services, name, canary_patch(rollout.isvc, percent))
    ready = wait_until_ready(services, name, timeout_s, poll_s, since)
    return replace(rollout, isvc=ready, report=_patch_report(ready, rollout.previous))


def _patched(
    services: Any,
    live: dict,
    release: Release,
    patch: list[dict],
    unchanged: str,
    check: Check | None,
    timeout_s: float,
    poll_s: float,
) -> Rollout:
    """Send `patch` (nothing when empty: `unchanged` says so), wait for Ready and `check`;
    on a failure put `live`'s release back."""
    name = live["metadata"]["name"]
    previous = release_of(live)
    if not patch:
        ready = _ready_and_checked(services, name, timeout_s, poll_s, check, None)
        return Rollout(
            "unchanged", release, previous, [], ready, f"{services.where(name)} {unchanged}"
        )
    since = _patch(services, name, patch)
    try:
        ready = _ready_and_checked(services, name, timeout_s, poll_s, check, since)
    except (NotReady, CheckFailed) as failure:
        restored = roll_back(services, live, failure, timeout_s=timeout_s, poll_s=poll_s)
        report = f"v{release.version} rolled back to v{previous.version}: {failure}"
        return Rollout("rolled back", release, previous, patch, restored, report)
    return Rollout("patch", release, previous, patch, ready, _patch_report(ready, previous))


def roll_back(
    services: Any,
    before: dict,
    failure: Exception,
    *,
    timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    poll_s: float = DEFAULT_POLL_S,
) -> dict:
    """Put back the release that `before` (the object read before the patch) served.

    Where KServe splits the traffic (`splits_traffic`), the same patch sets the canary to 0%,
    KServe's rollback: all traffic goes to the last rolled-out revision at once, while a revision
    of the previous model starts; once it is Ready the canary percent goes back to `before`'s, so
    the next release starts as a canary again. Returns the restored live object.
    """
    name = before["metadata"]["name"]
    previous = release_of(before)
    percent = canary_percent(before)
    split = splits_traffic(before)
    current = services.get(name)
    if current is None:
        raise RollbackFailed(f"{failure}; cannot roll back: {services.where(name)} is gone")
    patch = release_patch(current, previous) + (canary_patch(current, 0) if split else [])
    since = _patch(services, name, patch) if patch else None
    context = f"{failure}; rolling back to v{previous.version}"
    held = " (canaryTrafficPercent is 0: the last rolled-out revision takes all traffic)"
    restored = _rollback_ready(
        services, name, timeout_s, poll_s, since, context, held if split else ""
    )
    if split:
        since = _patch(services, name, canary_patch(restored, percent))
        restored = _rollback_ready(services, name, timeout_s, poll_s, since, context, "")
    return restored


def splits_traffic(isvc: dict) -> bool:
    """Whether KServe splits a new revision's traffic with the last rolled-out one: a
    canaryTrafficPercent between 0 and 100 and a rolled-out revision (Serverless mode only)."""
    percent = canary_percent(isvc)
    components = predictor_status(isvc)
    return (
        percent is not None
        and 0 < percent < 100
        and bool(components.get("latestRolledoutRevision"))
    )


def wait_until_ready(
    services: Any, name: str, timeout_s: float, poll_s: float, since: int | None = None
) -> dict:
    """Poll the InferenceService until it is Ready (with a status past observedGeneration
    `since`, when a change is awaited); NotReady when its Ready condition fails or at the timeout,
    naming the service, the revision and the condition."""
    deadline = time.monotonic() + timeout_s
    while True:
        isvc = services.get(name)
        if isvc is None:
            raise RolloutError(f"InferenceService {services.where(name)} is gone")
        state = readiness(isvc, since)
        if state.state == "ready":
            return isvc
        where = f"InferenceService {services.where(name)}: revision {state.revision or '(none)'}"
        if state.state == "failed":
            raise NotReady(f"{where} failed: {state.detail}")
        if time.monotonic() >= deadline:
            raise NotReady(f"{where} not Ready after {timeout_s:g} s: {state.detail}")
        time.sleep(poll_s)


def _patch(services: Any, name: str, patch: list[dict]) -> int | None:
    """Send the patch; the observedGeneration the status must pass to describe it (None when the
    patch changes only metadata, which reaches neither the Knative Service nor the Deployment)."""
    patched = services.patch(name, patch)
    changes_spec = any(op["path"].startswith("/spec/") for op in patch if op["op"] != "test")
    return observed_generation(patched) if changes_spec else None


def _ready_and_checked(
    services: Any,
    name: str,
    timeout_s: float,
    poll_s: float,
    check: Check | None,
    since: int | None,
) -> dict:
    ready = wait_until_ready(services, name, timeout_s, poll_s, since)
    if check is not None:
        _run_check(check, ready, services.where(name))
    return ready


def _run_check(check: Check, isvc: dict, where: str) -> None:
    """CheckFailed when `check` reports a problem or raises (a probe that errors is unhealthy)."""
    try:
        problem = check(isvc)
    except Exception as error:
        problem = f"the check raised {error!r}"
    if problem:
        revision = readiness(isvc).revision or "(none)"
        raise CheckFailed(
            f"InferenceService {where}: revision {revision} failed its check: {problem}"
        )


def _rollback_ready(
    services: Any,
    name: str,
    timeout_s: float,
    poll_s: float,
    since: int | None,
    context: str,
    held: str,
) -> dict:
    """Wait for the restored object; RollbackFailed says what failed first and what is left."""
    try:
        return wait_until_ready(services, name, timeout_s, poll_s, since)
    except RolloutError as error:
        raise RollbackFailed(f"{context} did not finish: {error}{held}") from error


def _patch_report(isvc: dict, previous: Release) -> str:
    """`ns/name: v4 -> v5, canary: 10% on revision X, 90% on Y` (or all traffic on X)."""
    release = release_of(isvc)
    meta = isvc["metadata"]
    head = f"{meta.get('namespace')}/{meta['name']}: v{previous.version} -> v{release.version}"
    percent = canary_percent(isvc)
    predictor = predictor_status(isvc)
    revision = predictor.get("latestReadyRevision") or "the new revision"
    stable = predictor.get("latestRolledoutRevision")
    if percent is not None and percent < 100 and stable and stable != revision:
        return f"{head}, canary: {percent}% on {revision}, {100 - percent}% on {stable}"
    return f"{head}, all traffic on {revision}"
