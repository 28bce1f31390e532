"""Kubernetes and KServe objects as the clients' typed models, and back, checking every field.

The kubernetes client (and the kserve SDK, generated the same way) turn a dict into a model by
reading the fields they know and trusting the types: a misspelt `readinesProbe` is dropped without a
word, a number where the API wants a string goes through. `from_dict` walks the same model classes
(`openapi_types`, `attribute_map`) and reports instead:

- unknown fields, at any depth;
- wrong shapes (a map where a list belongs, a scalar where an object belongs);
- wrong scalar types (a number for a string field such as an env value, a string for an integer);
  resource quantities (`cpu: 1`) and int-or-string fields (`targetPort`, probe ports) take either;
- required fields left empty (the models' own client-side validation).

With no cluster and no OpenAPI schema on the machine, this is how manifests are validated offline:
the client models are the schema the installed SDKs were generated from.
"""

from __future__ import annotations

import re
from typing import Any

import kubernetes.client.models as k8s_models
from kubernetes.client import ApiClient

# (model class, field) pairs that hold Kubernetes quantities: YAML numbers are valid there.
_QUANTITIES = {
    ("V1ResourceRequirements", "limits"),
    ("V1ResourceRequirements", "requests"),
    ("V1VolumeResourceRequirements", "limits"),
    ("V1VolumeResourceRequirements", "requests"),
    ("V1EmptyDirVolumeSource", "size_limit"),
    ("V1ResourceFieldSelector", "divisor"),
}
_LIST = re.compile(r"list\[(.*)\]")
_DICT = re.compile(r"dict\(([^,]*), (.*)\)")
_SCALARS = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "date": (str,),
    "datetime": (str,),
}


class InvalidObject(ValueError):
    """A dict that does not fit its model class; `problems` lists every field at fault."""

    def __init__(self, klass: str, problems: list[str]):
        self.klass = klass
        self.problems = problems
        super().__init__(f"invalid {klass}: " + "; ".join(problems))


def _kserve_models():
    import kserve.models  # heavy (the whole SDK): only when a KServe type is asked for

    return kserve.models


def model_class(name: str, kserve_first: bool = False) -> type:
    """The model class called `name`: the kubernetes client's, else the kserve SDK's (the other way
    round inside KServe types, whose names could shadow a Kubernetes one)."""
    modules = [lambda: k8s_models, _kserve_models]
    for module in reversed(modules) if kserve_first else modules:
        cls = getattr(module(), name, None)
        if isinstance(cls, type) and hasattr(cls, "openapi_types"):
            return cls
    raise LookupError(f"no kubernetes or kserve model class named {name}")


def model_class_for(obj: dict) -> type | None:
    """The model class for an object's apiVersion and kind (`apps/v1` Deployment -> V1Deployment,
    `serving.kserve.io/v1beta1` InferenceService -> V1beta1InferenceService), or None where neither
    client has one (a PyTorchJob, say)."""
    api_version = str(obj.get("apiVersion", ""))
    version = api_version.rsplit("/", 1)[-1]
    name = version[:1].upper() + version[1:] + str(obj.get("kind", ""))
    try:
        return model_class(name, kserve_first=api_version.startswith("serving.kserve.io/"))
    except LookupError:
        return None


def _is_kserve(cls: type) -> bool:
    return cls.__module__.startswith("kserve.")


def _describe(value: Any) -> str:
    return type(value).__name__ if not isinstance(value, dict) else "a map"


def _convert(data: Any, kind: str, path: str, problems: list[str], ctx: tuple) -> Any:
    """Walk `data` as type `kind` (an openapi type string); ctx = (in a KServe type, quantity)."""
    in_kserve, quantity = ctx
    if data is None:
        return None
    if match := _LIST.fullmatch(kind):
        if not isinstance(data, list):
            problems.append(f"{path}: expected a list, got {_describe(data)}")
            return None
        return [
            _convert(item, match[1], f"{path}[{i}]", problems, ctx) for i, item in enumerate(data)
        ]
    if match := _DICT.fullmatch(kind):
        if not isinstance(data, dict):
            problems.append(f"{path}: expected a map, got {_describe(data)}")
            return None
        return {k: _convert(v, match[2], f"{path}.{k}", problems, ctx) for k, v in data.items()}
    if kind == "object":  # int-or-string, free-form
        return data
    if kind in _SCALARS:
        allowed = (str, int, float) if quantity else _SCALARS[kind]
        if (isinstance(data, bool) and bool not in allowed) or not isinstance(data, allowed):
            problems.append(f"{path}: expected {kind}, got {_describe(data)} {data!r}")
        return data
    cls = model_class(kind, in_kserve)
    if not isinstance(data, dict):
        problems.append(f"{path}: expected a {kind} map, got {_describe(data)}")
        return None
    fields = {key: attr for attr, key in cls.attribute_map.items()}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            problems.append(f"{path}.{key}: unknown field for {kind}")
            continue
        attr = fields[key]
        inner = (_is_kserve(cls), (kind, attr) in _QUANTITIES)
        kwargs[attr] = _convert(
            value, cls.openapi_types[attr], f"{path}.{key}".lstrip("."), problems, inner
        )
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as error:  # the models' required-field checks
        problems.append(f"{path or kind}: {error}")
        return None


def _root(klass: str | type) -> tuple[str, bool]:
    cls = model_class(klass) if isinstance(klass, str) else klass
    return cls.__name__, _is_kserve(cls)


def check(data: dict, klass: str | type) -> list[str]:
    """Every problem `from_dict` would raise for, as a list (empty when `data` fits)."""
    problems: list[str] = []
    name, in_kserve = _root(klass)
    _convert(data, name, "", problems, (in_kserve, False))
    return problems


def from_dict(data: dict, klass: str | type) -> Any:
    """`data` as an instance of the model class `klass` (a class, or a name such as "V1Deployment"),
    or InvalidObject listing every field that does not fit."""
    problems: list[str] = []
    name, in_kserve = _root(klass)
    obj = _convert(data, name, "", problems, (in_kserve, False))
    if problems:
        raise InvalidObject(name, problems)
    return obj


def to_dict(obj: Any) -> Any:
    """A model (or nested models) as plain JSON-ready data, unset fields left out."""
    return ApiClient().sanitize_for_serialization(obj)
