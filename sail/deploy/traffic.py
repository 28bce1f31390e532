"""Which model versions an InferenceService serves, and each one's share of the traffic.

In Serverless mode the predictor's status lists its traffic targets (`status.components.predictor
.traffic`: a revision and a percent each; during a canary the new revision and the last rolled-out
one). A revision's model version is the version label the release puts on the predictor's pods
(`sail.deploy.release`), which Knative copies onto the Revision. Without traffic targets
(RawDeployment mode, or no status yet) the release in the spec takes all traffic.
"""

from __future__ import annotations

from typing import Any

from sail.deploy.inference_service import VERSION_KEY
from sail.deploy.readiness import predictor_status
from sail.deploy.release import release_of


class UnknownRevision(RuntimeError):
    """A revision that takes traffic but does not say which model version it serves."""


def served_versions(services: Any, isvc: dict) -> dict[str, int]:
    """Model version -> percent of the traffic, for every version that takes some."""
    targets = [t for t in predictor_status(isvc).get("traffic") or [] if t.get("percent")]
    if not targets:
        return {release_of(isvc).version: 100}
    served: dict[str, int] = {}
    for target in targets:
        revision = target["revisionName"]
        version = services.revision_labels(revision).get(VERSION_KEY)
        if not version:
            raise UnknownRevision(
                f"revision {revision} takes {target['percent']}% of the traffic but has no "
                f"{VERSION_KEY} label: it was not deployed by this platform"
            )
        served[version] = served.get(version, 0) + int(target["percent"])
    return served


def stable_version(served: dict[str, int]) -> str:
    """The version taking the most traffic (the last rolled-out one during a canary)."""
    return max(served, key=lambda version: (served[version], version))
