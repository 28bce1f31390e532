"""A submission's arguments, checked against the compiled pipeline before anything reaches KFP.

The parameters (names, types, defaults) come from the package's IR, `root.inputDefinitions`, so
the checks follow the pipeline when it is recompiled; the names this pipeline is known to have get
range checks too.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import yaml

# The Python values each IR parameter type takes; bool is an int to Python, not to KFP.
TYPES: dict[str, tuple[type, ...]] = {
    "STRING": (str,),
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (int, float),
    "BOOLEAN": (bool,),
    "LIST": (list,),
    "STRUCT": (dict,),
}


@dataclass(frozen=True)
class Parameter:
    """One runtime parameter of a compiled pipeline."""

    kind: str
    required: bool
    default: object = None

    def accepts(self, value: object) -> bool:
        if isinstance(value, bool) and self.kind != "BOOLEAN":
            return False
        return isinstance(value, TYPES.get(self.kind, (object,)))

    def normal(self, value: object) -> object:
        """The value in its declared type (the IR stores integer defaults as floats: 0.0)."""
        if self.kind == "NUMBER_INTEGER":
            return int(value)
        if self.kind == "NUMBER_DOUBLE":
            return float(value)
        return value


def parameters(package: Path) -> dict[str, Parameter]:
    """The runtime parameters of a compiled pipeline (the IR is the file's first YAML document)."""
    with open(package) as stream:
        spec = next(yaml.safe_load_all(stream))
    defined = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    return {
        name: Parameter(
            kind=d["parameterType"],
            required="defaultValue" not in d and not d.get("isOptional", False),
            default=d.get("defaultValue"),
        )
        for name, d in defined.items()
    }


def check_arguments(package: Path, arguments: dict) -> dict:
    """The full parameter set, defaults filled in; a ValueError names every bad parameter."""
    known = parameters(package)
    problems = [_unknown(name, known) for name in arguments if name not in known]
    for name, p in known.items():
        if name not in arguments:
            if p.required:
                problems.append(f"{name}: required, and not given")
        elif not p.accepts(arguments[name]):
            value = arguments[name]
            problems.append(f"{name}: {value!r} ({type(value).__name__}) is not {p.kind}")
    _reject(problems)
    full = {
        name: p.normal(arguments.get(name, p.default))
        for name, p in known.items()
        if name in arguments or p.default is not None
    }
    _reject(_range_problems(full))
    return full


def _range_problems(arguments: dict) -> list[str]:
    """Checks of the parameters this pipeline is known to have; absent ones are skipped."""
    from model_code.config import PRESETS, load_preset

    problems = []
    preset = arguments.get("preset")
    if "preset" in arguments and preset not in PRESETS:
        problems.append(f"preset: {preset!r} is not one of {list(PRESETS)}")
    counts = [name for name in arguments if name.endswith("_steps")] + ["data_limit"]
    problems += [f"{n}: {arguments[n]} is negative" for n in counts if arguments.get(n, 0) < 0]
    if not 0 <= arguments.get("gate_tolerance", 0) < 1:
        problems.append(f"gate_tolerance: {arguments['gate_tolerance']} is not in [0, 1)")
    if not -1 < arguments.get("baseline_margin", 0) < 1:
        problems.append(f"baseline_margin: {arguments['baseline_margin']} is not in (-1, 1)")
    if "publish_dim" in arguments and preset in PRESETS:
        try:
            load_preset(preset).check_dim(arguments["publish_dim"])
        except ValueError as error:
            problems.append(f"publish_dim: {error}")
    if problem := _uri_problem(arguments.get("data_uri", "")):
        problems.append(f"data_uri: {problem}")
    if problem := _overrides_problem(arguments.get("stage_overrides", {})):
        problems.append(f"stage_overrides: {problem}")
    return problems


def _reject(problems: list[str]) -> None:
    if problems:
        raise ValueError("bad pipeline arguments: " + "; ".join(problems))


def _unknown(name: str, known: dict) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
    return f"{name}: no such parameter ({hint})"


def _overrides_problem(overrides: dict) -> str | None:
    """None when every stage loads with its overrides ({STAGE: {KEY: VALUE}})."""
    from sail.overrides import check_stage_overrides

    try:
        check_stage_overrides(overrides)
    except ValueError as error:
        return str(error)
    return None


def _uri_problem(uri: str) -> str | None:
    """None for "", a path, a file:// URI or a protocol fsspec knows (nothing is contacted)."""
    scheme, sep, _ = uri.partition("://")
    if not sep or scheme == "file":
        return None
    import fsspec

    try:
        fsspec.get_filesystem_class(scheme)
    except ValueError:
        return f"{uri!r} has a protocol fsspec does not know ({scheme!r})"
    except ImportError:  # a known protocol whose package is missing here (the image decides)
        pass
    return None
