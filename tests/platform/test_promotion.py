"""`sail model list|promote|rollback`: the champion alias, the endpoint (the fake Kubernetes API of
test_rollout) and the catalogue (the real local feature store) move together.

Two versions of the tiny model are registered in a fresh sqlite MLflow store; v1 is the champion,
served with a 10% canary percent by the production-like InferenceService, and both are published
small (the first 50 movies and 4 drawings) with v1 the catalogue's default.
"""

from __future__ import annotations

import pytest
from fake_kube_api import FakeKubeApi
from test_rollout import production

from sail.deploy.api import InferenceServices
from sail.deploy.inference_service import NAMESPACE
from sail.deploy.release import release_of

NAME = "sail-embedding"
LIMIT = {"movielens": 50, "openclipart": 4}
V1, V2 = "models:/sail-embedding/1", "models:/sail-embedding/2"


@pytest.fixture(scope="module")
def registry(logged, prepared_home, tmp_path_factory):
    """Versions 1 (champion) and 2 of `sail-embedding`, both published in a home of their own."""
    from sail.feature_store.publish import publish
    from sail.tracking.registry import move_champion, register

    home = tmp_path_factory.mktemp("promotion-home")
    (home / "data").symlink_to(prepared_home / "data", target_is_directory=True)
    versions = [
        register(logged["info"], pipeline_run_id=f"run-{i}", data_fingerprint="data-1")
        for i in (1, 2)
    ]
    assert versions == ["1", "2"]
    move_champion(NAME, "1")
    for version in versions:
        publish(logged["model_dir"], version, dim=32, home=home, limit=LIMIT)
    return home


@pytest.fixture
def kube():
    with FakeKubeApi(polls_to_ready=1) as api:
        api.seed(production("1", V1, canary=10))
        yield api


def options(kube, home) -> dict:
    services = InferenceServices(NAMESPACE, kube.api_client())
    return {"cluster": True, "services": services, "home": home, "timeout_s": 10, "poll_s": 0}


def listing(kube, home) -> list[tuple]:
    from sail.promotion import versions

    services = InferenceServices(NAMESPACE, kube.api_client())
    rows = versions(cluster=True, services=services, home=home)
    return [(row.version, row.aliases, row.traffic, row.catalogue) for row in rows]


def shares(kube) -> dict[str, int]:
    traffic = kube.live(NAMESPACE, NAME)["status"]["components"]["predictor"]["traffic"]
    found: dict[str, int] = {}
    for target in traffic:
        model = kube.model_of(NAMESPACE, NAME, target["revisionName"])
        found[model] = found.get(model, 0) + target["percent"]
    return found


def test_promote_then_rollback_move_alias_endpoint_and_catalogue_together(registry, kube):
    from sail.feature_store.query import similar
    from sail.promotion import promote, rollback
    from sail.tracking.registry import CHAMPION, version_by_alias

    home = registry
    assert listing(kube, home) == [
        ("2", ("challenger",), 0, "online"),
        ("1", ("champion",), 100, "default"),
    ]

    promoted = promote("2", **options(kube, home))
    assert version_by_alias(NAME, CHAMPION) == "2"
    live = kube.live(NAMESPACE, NAME)
    assert release_of(live).version == "2" and shares(kube) == {V2: 100}
    assert live["spec"]["predictor"]["canaryTrafficPercent"] == 10  # the next release: a canary
    assert promoted.lines() == [
        "champion: 1 -> 2",
        f"serving: {promoted.serving}",
        "catalogue: default 1 -> 2, retired: 1",
    ]
    assert "v1 -> v2, all traffic on sail-embedding-predictor-00002" in promoted.serving
    assert len(similar("50", 3, home=home)) == 3  # v2's rows, the default now

    back = rollback(**options(kube, home))  # to the version v2 replaced
    assert version_by_alias(NAME, CHAMPION) == "1"
    assert release_of(kube.live(NAMESPACE, NAME)).version == "1" and shares(kube) == {V1: 100}
    assert back.catalogue == "brought online: 1, default 2 -> 1, retired: 2"
    assert listing(kube, home) == [
        ("2", ("challenger",), 0, "retired"),
        ("1", ("champion",), 100, "default"),
    ]
    with pytest.raises(LookupError, match="v1 replaced no champion"):
        rollback(**options(kube, home))  # v1 took the alias from no one


def test_a_promotion_the_endpoint_refuses_changes_nothing_else(registry, kube):
    from sail.promotion import PromotionFailed, promote
    from sail.tracking.registry import CHAMPION, version_by_alias

    home = registry
    champion = version_by_alias(NAME, CHAMPION)
    kube.failing.add(V2)
    with pytest.raises(PromotionFailed, match="v2 rolled back to v1: .*catalogue: "):
        promote("2", **options(kube, home))
    assert version_by_alias(NAME, CHAMPION) == champion == "1"
    assert release_of(kube.live(NAMESPACE, NAME)).version == "1" and shares(kube) == {V1: 100}
    with pytest.raises(LookupError, match="sail-embedding has no version 9"):
        promote("9", **options(kube, home))


def test_sail_model_without_a_cluster(registry, monkeypatch):
    from typer.testing import CliRunner

    from sail.cli import app

    monkeypatch.setenv("SAIL_HOME", str(registry))
    runner = CliRunner()
    promoted = runner.invoke(app, ["model", "promote", "2", "--no-cluster"])
    assert promoted.exit_code == 0, promoted.output
    assert promoted.output.splitlines()[-3:] == [  # after feast's materialization progress
        "champion: 1 -> 2",
        "serving: no cluster configured: `make serve MODEL_URI=models:/sail-embedding/2` "
        "serves it here",
        "catalogue: brought online: 2, default 1 -> 2, retired: 1",
    ]
    listed = runner.invoke(app, ["model", "list", "--no-cluster"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[1].split() == ["2", "challenger,", "champion", "-", "-", "default"]
    assert lines[2].split() == ["1", "-", "-", "-", "retired"]
    assert lines[-1].startswith("(no cluster configured")
    missing = runner.invoke(app, ["model", "promote", "9", "--no-cluster"])
    assert missing.exit_code == 2 and "sail-embedding has no version 9" in missing.output
