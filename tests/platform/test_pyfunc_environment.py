"""The logged pyfunc model's environment: it loads and predicts without this project installed,
from its own `code/` folder and its pinned requirements alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import mlflow
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Loads and predicts, recording each module that the shipped code itself imports (the importing
# frame's file is under the model's code/ folder), then names the distributions providing them.
LOAD_AND_PREDICT = """
import json, sys
from importlib import metadata
code = sys.argv[1] + "/code/"
imported = set()

def record(event, args):
    if event == "import":
        frame = sys._getframe(1)
        while frame and frame.f_code.co_filename.startswith("<frozen"):
            frame = frame.f_back
        if frame and frame.f_code.co_filename.startswith(code):
            imported.add(args[0].split(".")[0])

sys.addaudithook(record)
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
vectors = model.predict(pd.DataFrame({"text": ["a red circle"]}), params={"dim": 32})
owners = metadata.packages_distributions()
third_party = imported - set(sys.stdlib_module_names) - {"sail", "model_code"}
print(json.dumps({
    "shape": list(vectors.shape),
    "sail": sys.modules["sail"].__file__,
    "model_code": sys.modules["model_code"].__file__,
    "modules": sorted(third_party),
    "distributions": sorted({d for top in third_party for d in owners.get(top, [top])}),
}))
"""


@pytest.fixture(scope="module")
def model_folder(logged):
    """The logged tiny model, downloaded to a plain folder."""
    uri = logged["info"].model_uri
    return Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(logged["root"] / "dl")))


def test_requirements_pin_only_published_distributions(model_folder):
    requirements = (model_folder / "requirements.txt").read_text().split()
    names = {canonicalize_name(Requirement(line).name) for line in requirements}
    assert "sail-embedding-platform" not in names
    assert {"torch", "mlflow", "efficientnet-lite-pytorch"} <= names
    assert all("==" in line for line in requirements), requirements
    shipped = {path.name for path in (model_folder / "code").iterdir()}
    assert shipped == {"model_code", "sail"}
    assert not list((model_folder / "code").rglob("__pycache__"))
    assert (model_folder / "code/model_code/presets/tiny.json").is_file()  # package data too


def test_loads_and_predicts_without_the_project_installed(model_folder, tmp_path):
    """Site-packages without its .pth files (so no editable install of this project), run
    outside the checkout: the model's own code folder is all of this project there is. Every
    distribution that code imports is a requirement or a dependency of one."""
    site_packages = sysconfig.get_paths()["purelib"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SAIL_"))}
    env["PYTHONPATH"] = site_packages
    result = subprocess.run(
        [sys.executable, "-S", "-c", LOAD_AND_PREDICT, str(model_folder)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["shape"] == [1, 32]
    code = str(model_folder / "code")
    assert report["sail"].startswith(code) and report["model_code"].startswith(code)
    requirements = (model_folder / "requirements.txt").read_text().split()
    installed = _closure(Requirement(line).name for line in requirements)
    missing = {canonicalize_name(d) for d in report["distributions"]} - installed
    assert "efficientnet_lite_pytorch" in report["modules"], report["modules"]
    assert not missing, f"imported but not required: {sorted(missing)}"


def _closure(names) -> set[str]:
    """The distributions `names` install: themselves and their dependencies, transitively (extras
    not requested are left out)."""
    seen: set[str] = set()
    todo = [canonicalize_name(name) for name in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return seen
