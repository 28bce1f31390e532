"""Moving a registered version into production by hand: the alias, the endpoint and the catalogue
together (`sail model list|promote|rollback`).

`promote(version)`:

1. the version's catalogue rows go online (from its published files, else published now from the
   registered model), so queries it embeds find their rows before it serves any;
2. on a cluster, the InferenceService serves it with all traffic (`sail.deploy.rollout.promote`:
   its revision is rolled out, the canary percent kept for the next release; a failure rolls
   back and stops here). Without a cluster nothing serves on its own: `make serve` serves the
   champion;
3. `champion` points at it (the version records the one it replaced);
4. the catalogue follows what serves (`sail.feature_store.online.follow`): the version is the
   default, versions no revision serves are retired.

`rollback(to=None)` is `promote` of `to`, by default the version the champion replaced, without
recording a replacement (so repeated rollbacks walk back). `versions()` lists every version with
its aliases, gate verdict, share of the traffic and catalogue state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sail.deploy.deploy import cluster_configured
from sail.deploy.inference_service import NAME, NAMESPACE
from sail.deploy.release import Release
from sail.deploy.rollout import DEFAULT_POLL_S, DEFAULT_READY_TIMEOUT_S, Rollout
from sail.deploy.traffic import served_versions
from sail.tracking.registry import CHAMPION, GATE_TAG, MODEL_NAME

logger = logging.getLogger(__name__)

PUBLISH_DIM = 128  # a version published by `promote` (the pipeline's default size)


class PromotionFailed(RuntimeError):
    """The endpoint did not take the version and serves the previous one again."""


@dataclass(frozen=True)
class VersionRow:
    """One registered version as `sail model list` shows it."""

    version: str
    aliases: tuple[str, ...]
    gate: str  # promoted / rejected / "" (never gated)
    traffic: int | None  # percent of the endpoint's traffic; None without a cluster
    catalogue: str  # "default", "online", "retired", "" (never published here)


@dataclass
class Promotion:
    """What `promote` or `rollback` changed, one line per part."""

    version: str
    alias: tuple[str | None, str]  # the champion before, after
    serving: str
    catalogue: str

    def lines(self) -> list[str]:
        before, after = self.alias
        alias = f"{before or 'none'} -> {after}" if before != after else f"unchanged ({after})"
        return [f"champion: {alias}", f"serving: {self.serving}", f"catalogue: {self.catalogue}"]


def promote(
    version: str,
    *,
    cluster: bool | None = None,
    services: Any = None,
    home: Path | str | None = None,
    remember: bool = True,
    timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    poll_s: float = DEFAULT_POLL_S,
) -> Promotion:
    """Make `version` the champion, serve it with all traffic and make its rows the default
    catalogue (see the module doc). `services`: the InferenceServices client on a cluster
    (default: from the kubeconfig or the pod's account)."""
    from sail.deploy.traffic import stable_version
    from sail.feature_store.online import follow
    from sail.tracking.registry import move_champion
    from sail.tracking.store import connect

    connect()
    version = _check_registered(str(version))
    ensured = _ensure_online(version, home)
    if cluster is None:
        cluster = cluster_configured()
    if cluster:
        services = services or _services()
        rollout = _serve(services, version, timeout_s, poll_s)
        served = served_versions(services, rollout.isvc)
        serving = rollout.report
    else:
        rollout, served = None, {version: 100}
        serving = (
            f"no cluster configured: `make serve MODEL_URI=models:/{MODEL_NAME}/{version}` "
            "serves it here"
        )
    if rollout is not None and rollout.rolled_back:
        catalogue = follow(served, stable_version(served), home)
        raise PromotionFailed(f"{rollout.report}; catalogue: {catalogue.summary()}")
    before = move_champion(MODEL_NAME, version, remember=remember)
    catalogue = ", ".join([*ensured, follow(served, version, home).summary()])
    return Promotion(version, (before, version), serving, catalogue)


def rollback(to: str | None = None, **options) -> Promotion:
    """Promote `to`, by default the version the champion replaced (see the module doc)."""
    from sail.tracking.registry import replaced_champion, version_by_alias
    from sail.tracking.store import connect

    connect()
    if to is None:
        champion = version_by_alias(MODEL_NAME, CHAMPION)
        if champion is None:
            raise LookupError(f"{MODEL_NAME} has no champion to roll back from")
        to = replaced_champion(MODEL_NAME, champion)
        if to is None:
            raise LookupError(
                f"v{champion} replaced no champion: name the version to roll back to (--to)"
            )
    return promote(to, remember=False, **options)


def versions(*, cluster: bool | None = None, services: Any = None, home=None) -> list[VersionRow]:
    """Every registered version, newest first, with its aliases, gate verdict, traffic share
    (on a cluster) and catalogue state."""
    import mlflow

    from sail.feature_store.repo import read_state
    from sail.tracking.store import connect

    connect()
    client = mlflow.MlflowClient()
    found = client.search_model_versions(f"name = '{MODEL_NAME}'")
    aliases: dict[str, list[str]] = {}
    if found:  # search results leave the aliases out; the registered model has them all
        for alias, version in client.get_registered_model(MODEL_NAME).aliases.items():
            aliases.setdefault(str(version), []).append(alias)
    served: dict[str, int] | None = None
    if cluster is None:
        cluster = cluster_configured()
    if cluster:
        services = services or _services()
        live = services.get(NAME)
        served = served_versions(services, live) if live is not None else {}
    state = read_state(home)
    rows = [
        VersionRow(
            version=str(mv.version),
            aliases=tuple(sorted(aliases.get(str(mv.version), ()))),
            gate=(mv.tags or {}).get(GATE_TAG, ""),
            traffic=None if served is None else served.get(str(mv.version), 0),
            catalogue=_catalogue_state(state, str(mv.version)),
        )
        for mv in found
    ]
    return sorted(rows, key=lambda row: int(row.version), reverse=True)


def _catalogue_state(state: dict, version: str) -> str:
    record = state["versions"].get(version)
    if record is None:
        return ""
    if not record.get("online"):
        return "retired"
    return "default" if state.get("default") == version else "online"


def _check_registered(version: str) -> str:
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow.MlflowClient().get_model_version(MODEL_NAME, version).version)
    except MlflowException:
        raise LookupError(f"{MODEL_NAME} has no version {version}") from None


def _ensure_online(version: str, home) -> list[str]:
    """The version's rows online: brought back from its files, else published now; what was
    done, as a catalogue change."""
    from sail.feature_store.online import bring_online
    from sail.feature_store.repo import read_state

    record = read_state(home)["versions"].get(version)
    if record is not None:
        if record.get("online"):
            return []
        bring_online(version, home)
        return [f"brought online: {version}"]
    from sail.feature_store.publish import publish
    from sail.tracking.pyfunc import model_dir_from_uri

    logger.info("v%s was never published here: publishing it (%d-d)", version, PUBLISH_DIM)
    model_dir = model_dir_from_uri(f"models:/{MODEL_NAME}/{version}")
    publish(model_dir, version, dim=PUBLISH_DIM, home=home)
    return [f"published: {version}"]


def _serve(services: Any, version: str, timeout_s: float, poll_s: float) -> Rollout:
    from sail.deploy.rollout import promote as promote_release

    release = Release(f"models:/{MODEL_NAME}/{version}", version)
    return promote_release(services, NAME, release, timeout_s=timeout_s, poll_s=poll_s)


def _services() -> Any:
    from sail.deploy.api import InferenceServices

    return InferenceServices(NAMESPACE)
