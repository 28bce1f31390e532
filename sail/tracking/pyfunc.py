"""The model as an MLflow pyfunc: logging it, predicting with it, finding its model folder again.

The pyfunc carries the saved model folder (`save_pretrained`) as its artifact `model`; predict
takes a DataFrame with a column `item` (item JSON objects, as dicts or strings) and/or `text`, and
params `dim` and `side`, and returns float32 unit vectors [n, dim].
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

from model_code.config import ModelConfig
from model_code.factory import CONFIG_FILE
from model_code.items import Item, ItemError, parse_item
from sail.tracking.store import connect

logger = logging.getLogger(__name__)

ARTIFACT_KEY = "model"
# What loading and predicting imports, all on PyPI (tests/platform/test_pyfunc_environment.py
# checks the list against the modules a load and a prediction actually import).
RUNTIME_PACKAGES = (
    "torch",
    "transformers",
    "safetensors",
    "numpy",
    "scipy",
    "pandas",
    "pillow",
    "tqdm",
    "efficientnet-lite-pytorch",
)
# This project's packages travel with the model as code (its `code/` folder), not as a pin.
CODE_PACKAGES = ("model_code", "sail")
ENTRY_FILE = Path(__file__).with_name("pyfunc_entry.py")
EXAMPLE_ITEM = {"id": "example", "title": "a red circle", "tags": ["red", "circle"]}


class ModelUriError(LookupError):
    """A model URI that names no model (unknown alias, version, run or folder)."""


class SailEmbeddingPyfunc(mlflow.pyfunc.PythonModel):
    """Embeds items (column `item`) or plain texts (column `text`) with the logged model folder."""

    def load_context(self, context) -> None:
        from model_code.embed import Embedder

        self.embedder = Embedder.from_pretrained(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(self, context, model_input, params: dict[str, Any] | None = None) -> np.ndarray:
        params = params or {}
        dim = params.get("dim")
        items = items_from_frame(_as_frame(model_input))
        result = self.embedder.embed(
            items,
            dim=None if dim is None else int(dim),
            side=str(params.get("side", "target")),
            progress=False,
        )
        return result.vectors


def items_from_frame(frame: pd.DataFrame) -> list[Item]:
    """One Item per row: `item` (a dict or a JSON string) if set, else `text` as a title.

    An item without an id gets `row-<index>`.
    """
    if "item" not in frame.columns and "text" not in frame.columns:
        raise ValueError(
            f"model input needs a column `item` (item JSON objects) or `text`; "
            f"got columns {list(frame.columns)}"
        )
    items = []
    for index, row in enumerate(frame.to_dict("records")):
        record, text = _present(row.get("item")), _present(row.get("text"))
        try:
            if record is not None:
                if isinstance(record, str | bytes):
                    record = json.loads(record)
                if isinstance(record, dict) and "id" not in record:
                    record = {"id": f"row-{index}", **record}
                items.append(parse_item(record))
            elif text is not None:
                items.append(parse_item({"id": f"row-{index}", "title": str(text)}))
            else:
                raise ItemError(None, None, "neither `item` nor `text` is set")
        except (ItemError, json.JSONDecodeError) as error:
            raise ValueError(f"model input row {index}: {error}") from error
    return items


def signature(model_dir: Path) -> ModelSignature:
    """Inputs `item` (any JSON object or string) and `text` (string), both optional per column;
    params `dim` (default: the full size) and `side` (default `target`); output float32 [n, dim].
    """
    config = ModelConfig.load(Path(model_dir) / CONFIG_FILE)
    return ModelSignature(
        inputs=Schema(
            [ColSpec(AnyType(), "item", required=False), ColSpec("string", "text", required=False)]
        ),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1))]),
        params=ParamSchema(
            [ParamSpec("dim", "long", int(config.embed_dim)), ParamSpec("side", "string", "target")]
        ),
    )


def pip_requirements() -> list[str]:
    """Exact pins of the runtime packages, from the installed versions."""
    pins = []
    for name in RUNTIME_PACKAGES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            logger.warning("%s is not installed; left out of the model's requirements", name)
            continue
        pins.append(f"{name}=={version.split('+')[0]}")
    return pins


def log_model(model_dir: Path, name: str = "model", **kwargs: Any) -> ModelInfo:
    """Log the model folder as a pyfunc in the active run (see `step_run`); returns its ModelInfo.

    The folder travels as the artifact `model`; the model code is this project's packages,
    shipped in the model's `code/` folder (models-from-code, no pickle), so the environment
    needs only the pinned PyPI requirements. Extra kwargs go to mlflow's log_model.
    """
    model_dir = Path(model_dir)
    if not (model_dir / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{model_dir} is not a saved model (no {CONFIG_FILE})")
    with tempfile.TemporaryDirectory() as tmp:
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(ENTRY_FILE),
            artifacts={ARTIFACT_KEY: str(model_dir)},
            code_paths=code_paths(Path(tmp)),
            signature=signature(model_dir),
            input_example=pd.DataFrame({"item": [EXAMPLE_ITEM]}),
            pip_requirements=pip_requirements(),
            **kwargs,
        )


def code_paths(into: Path) -> list[str]:
    """Copies of this project's packages (sources and package data, no bytecode) in `into`."""
    paths = []
    for package in CODE_PACKAGES:
        source = Path(importlib.import_module(package).__file__).parent
        target = Path(into) / package
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        paths.append(str(target))
    return paths


def model_dir_from_uri(
    uri: str, dst_path: Path | None = None, tracking_uri: str | None = None
) -> Path:
    """The saved model folder behind `uri`.

    A local model folder (holding config.json) is returned as it is; a local pyfunc folder gives
    its artifact folder; `models:/name@alias`, `models:/name/3`, `runs:/<id>/model`, ... are
    downloaded (into `dst_path`, default a new temporary folder). Raises ModelUriError naming
    `uri` when it resolves to nothing.
    """
    parsed = urlparse(str(uri))
    if parsed.scheme in ("", "file"):
        local = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(uri)
        if (local / CONFIG_FILE).is_file():
            return local
        if (local / "MLmodel").is_file():
            return _artifact_folder(local, uri)
        raise ModelUriError(f"{uri}: not a model folder (no {CONFIG_FILE}) nor an MLflow model")
    connect(tracking_uri)
    try:
        root = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=str(uri), dst_path=None if dst_path is None else str(dst_path)
            )
        )
    except MlflowException as error:
        message = f"cannot resolve model URI {uri!r}: {error.message}"
        if parsed.scheme == "models" and "@" in parsed.netloc + parsed.path:
            from sail.tracking.registry import rejection

            name = (parsed.netloc + parsed.path).strip("/").split("@", 1)[0]
            message += f" ({rejection(name) or 'the alias exists'})"
        raise ModelUriError(message) from error
    if (root / CONFIG_FILE).is_file():
        return root
    return _artifact_folder(root, uri)


def _artifact_folder(root: Path, uri: str) -> Path:
    """The `model` artifact inside a pyfunc folder, found through its MLmodel file."""
    if not (root / "MLmodel").is_file():
        raise ModelUriError(f"{uri}: resolved to {root}, which holds no MLmodel file")
    flavor = Model.load(str(root / "MLmodel")).flavors.get("python_function", {})
    relative = flavor.get("artifacts", {}).get(ARTIFACT_KEY, {}).get("path")
    if relative is None or not (root / relative / CONFIG_FILE).is_file():
        raise ModelUriError(f"{uri}: the MLflow model at {root} carries no sail model folder")
    return root / relative


def _as_frame(model_input: Any) -> pd.DataFrame:
    """A DataFrame as it is; rows `{"item": ...}` / `{"text": ...}`, or bare item dicts."""
    if isinstance(model_input, pd.DataFrame):
        return model_input
    rows = [model_input] if isinstance(model_input, dict) else list(model_input)
    if all(isinstance(row, dict) and {"item", "text"} & set(row) for row in rows):
        return pd.DataFrame(rows)
    return pd.DataFrame({"item": rows})


def _present(value: Any) -> Any:
    """None for a missing cell (None or NaN), else the value."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value
