"""What a release changes in the InferenceService, and nothing else: the model URI and version.

A release lives in a few fields of the object: the version label and annotation (on the object and
on the predictor's pods), the model URI annotation, and the serving container's environment
(`STORAGE_URI` or `MODEL_URI`, and `MODEL_VERSION`), plus the `--model-uri $(VAR)` argument when
the URI moves from one variable to the other. `release_changes` lists those fields as they should
be; `release_patch` turns the list into a JSON patch (RFC 6902) for the live object, and
`with_release` applies it to a copy of a template (a rendered overlay). Everything else in the
object (resources, device argument, image, canary percent, replicas, node selectors, tolerations)
is left as it is. Pure functions of the objects' JSON.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from sail.deploy.inference_service import (
    URI_KEY,
    URI_VARIABLES,
    VERSION_KEY,
    VERSION_VARIABLE,
    label_value,
    model_uri_variable,
)

CONTAINER = "kserve-container"
_MISSING = object()
_VARIABLE_ARG = re.compile(r"\$\((STORAGE_URI|MODEL_URI)\)")


@dataclass(frozen=True)
class Release:
    """A model URI and the registered version it holds."""

    model_uri: str
    version: str


@dataclass(frozen=True)
class Change:
    """One field set to `value`; `old` is what the object holds there (_MISSING when absent)."""

    path: tuple[str | int, ...]  # keys and list indices; "-" appends to a list
    value: Any
    old: Any = _MISSING


def predictor(isvc: dict) -> dict:
    return (isvc.get("spec") or {}).get("predictor") or {}


def serving_container(isvc: dict) -> tuple[int, dict]:
    """The predictor's model-server container (kserve-container, else the first) and its index."""
    containers = predictor(isvc).get("containers") or []
    if not containers:
        raise ValueError(f"InferenceService {_name(isvc)} has no predictor containers")
    for index, container in enumerate(containers):
        if container.get("name") == CONTAINER:
            return index, container
    return 0, containers[0]


def release_of(isvc: dict) -> Release:
    """The model URI (the container's STORAGE_URI or MODEL_URI) and the version (annotation) an
    InferenceService serves."""
    _, container = serving_container(isvc)
    env = {e.get("name"): e.get("value") for e in container.get("env") or []}
    uri = next((env[v] for v in URI_VARIABLES if env.get(v)), None)
    if uri is None:
        raise ValueError(
            f"InferenceService {_name(isvc)} sets neither STORAGE_URI nor MODEL_URI in its "
            f"{container.get('name')} container: it is not one this deploy step manages"
        )
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    return Release(uri, str(annotations.get(VERSION_KEY) or env.get(VERSION_VARIABLE) or ""))


def canary_percent(isvc: dict) -> int | None:
    return predictor(isvc).get("canaryTrafficPercent")


def release_changes(isvc: dict, release: Release) -> list[Change]:
    """The fields of `isvc` that must change for it to serve `release` (empty when it does)."""
    label = label_value(release.version)
    index, container = serving_container(isvc)
    at = ("spec", "predictor", "containers", index)
    annotations = {VERSION_KEY: release.version, URI_KEY: release.model_uri}
    changes = _map_changes(isvc, ("metadata", "annotations"), annotations)
    changes += _map_changes(isvc, ("metadata", "labels"), {VERSION_KEY: label})
    changes += _map_changes(isvc, ("spec", "predictor", "labels"), {VERSION_KEY: label})
    changes += _env_changes(at, container, release)
    changes += _argument_changes(at, container, model_uri_variable(release.model_uri))
    return changes


def release_patch(isvc: dict, release: Release) -> list[dict]:
    """A JSON patch taking the live `isvc` to `release`: `add`/`replace` on the release fields
    only, each list element it replaces guarded by a `test` of the element it read (so a list
    changed meanwhile fails the patch instead of overwriting the wrong entry)."""
    operations = []
    for change in release_changes(isvc, release):
        pointer = json_pointer(change.path)
        if change.old is _MISSING:
            operations.append({"op": "add", "path": pointer, "value": change.value})
            continue
        if isinstance(change.path[-1], int):
            operations.append({"op": "test", "path": pointer, "value": change.old})
        operations.append({"op": "replace", "path": pointer, "value": change.value})
    return operations


def with_release(template: dict, release: Release) -> dict:
    """A copy of `template` (e.g. the rendered prod overlay's InferenceService) serving
    `release`, every other field as the template has it."""
    isvc = copy.deepcopy(template)
    for change in release_changes(isvc, release):
        _set(isvc, change.path, change.value)
    return isvc


def canary_patch(isvc: dict, percent: int) -> list[dict]:
    """A JSON patch setting the predictor's canaryTrafficPercent."""
    op = "add" if canary_percent(isvc) is None else "replace"
    return [{"op": op, "path": "/spec/predictor/canaryTrafficPercent", "value": percent}]


def json_pointer(path: tuple[str | int, ...]) -> str:
    """RFC 6901: '~' and '/' in keys escaped (label keys hold a '/')."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _name(isvc: dict) -> str:
    meta = isvc.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '?')}".lstrip("/")


def _get(obj: Any, path: tuple) -> Any:
    for key in path:
        if isinstance(obj, dict):
            obj = obj.get(key, _MISSING)
        elif isinstance(obj, list) and isinstance(key, int) and key < len(obj):
            obj = obj[key]
        else:
            return _MISSING
        if obj is _MISSING or obj is None:
            return _MISSING
    return obj


def _set(obj: Any, path: tuple, value: Any) -> None:
    parent = _get(obj, path[:-1]) if len(path) > 1 else obj
    if path[-1] == "-":
        parent.append(value)
    else:
        parent[path[-1]] = value


def _map_changes(isvc: dict, path: tuple, entries: dict[str, str]) -> list[Change]:
    """Entries of the map at `path` set (the whole map added when the object has none)."""
    current = _get(isvc, path)
    if current is _MISSING:
        return [Change(path, dict(entries))]
    return [
        Change((*path, key), value, current.get(key, _MISSING))
        for key, value in entries.items()
        if current.get(key) != value
    ]


def _env_changes(at: tuple, container: dict, release: Release) -> list[Change]:
    """The model URI variable (renamed in place when it moves between STORAGE_URI and
    MODEL_URI) and MODEL_VERSION in the container's environment."""
    env = container.get("env")
    variable = model_uri_variable(release.model_uri)
    wanted = [
        (URI_VARIABLES, {"name": variable, "value": release.model_uri}),
        ((VERSION_VARIABLE,), {"name": VERSION_VARIABLE, "value": release.version}),
    ]
    if env is None:
        return [Change((*at, "env"), [entry for _, entry in wanted])]
    changes = []
    for names, entry in wanted:
        index = next((i for i, e in enumerate(env) if e.get("name") in names), None)
        if index is None:
            changes.append(Change((*at, "env", "-"), entry))
        elif env[index] != entry:
            changes.append(Change((*at, "env", index), entry, env[index]))
    return changes


def _argument_changes(at: tuple, container: dict, variable: str) -> list[Change]:
    """`--model-uri $(VAR)` pointed at the variable that now holds the URI."""
    args = container.get("args") or []
    for index, arg in enumerate(args):
        if _VARIABLE_ARG.fullmatch(arg) and arg != f"$({variable})":
            return [Change((*at, "args", index), f"$({variable})", arg)]
    return []
