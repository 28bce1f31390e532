"""checkov's policy checks on the rendered overlays and the Dockerfile, offline.

checkov lives in a venv of its own (`make setup` makes .venv-checkov from requirements/checkov.txt;
$CHECKOV names another binary). Every failed check must be in manifests/checkov.yaml with a reason,
and every entry there must still fail something.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.platform.test_manifests import KUBECTL, _render

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = Path(os.environ.get("CHECKOV") or ROOT / ".venv-checkov" / "bin" / "checkov")
OVERLAYS = ["overlays/local", "overlays/prod"]

pytestmark = [
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed"),
    pytest.mark.skipif(not CHECKOV.exists(), reason=f"{CHECKOV} is missing: run `make setup`"),
]


def checkov(*args: str) -> list[tuple[str, str]]:
    """(check id, resource) of every check that fails."""
    done = subprocess.run(
        [str(CHECKOV), *args, "--skip-download", "--compact", "--quiet", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=os.environ | {"BC_SKIP_MAPPING": "TRUE"},
    )
    assert done.returncode in (0, 1), done.stderr  # 1: some check failed
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    for report in reports:
        summary = report["summary"]
        assert summary["parsing_errors"] == 0 and summary["passed"] > 0, summary
    return [
        (failed["check_id"], failed["resource"])
        for report in reports
        for failed in report["results"]["failed_checks"]
    ]


def test_every_failed_check_is_a_documented_skip(tmp_path):
    for overlay in OVERLAYS:
        (tmp_path / f"{overlay.split('/')[1]}.yaml").write_text(_render(overlay))
    failed = checkov("-d", str(tmp_path), "--framework", "kubernetes")
    failed += checkov("-f", str(ROOT / "Dockerfile"), "--framework", "dockerfile")
    skips = yaml.safe_load((ROOT / "manifests" / "checkov.yaml").read_text())["skips"]
    for check, skip in skips.items():
        assert len(skip["reason"].split()) >= 8, f"{check}: say why"

    def skipped(check: str, resource: str) -> bool:
        return check in skips and resource in skips[check].get("resources", [resource])

    unexpected = sorted({(c, r) for c, r in failed if not skipped(c, r)})
    assert not unexpected, f"checkov fails (fix it, or skip it with a reason): {unexpected}"
    stale = set(skips) - {check for check, _ in failed}
    assert not stale, f"manifests/checkov.yaml skips checks that pass now: {stale}"
