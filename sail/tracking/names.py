"""Metric and tag names that MLflow accepts (alphanumerics, `_ - . /` and spaces)."""

from __future__ import annotations

import numbers
import posixpath
import re

MAX_KEY_LENGTH = 250
_BAD = re.compile(r"[^\w.\- /]")


def metric_name(name: str) -> str:
    """`name` with each character MLflow rejects replaced by `_` and the path normalised.

    `temperature/openclipart` stays as it is; `t2i R@10` becomes `t2i R_10`.
    """
    cleaned = _BAD.sub("_", str(name))
    parts = [p for p in cleaned.split("/") if p not in ("", ".", "..")]
    cleaned = posixpath.normpath("/".join(parts)) if parts else "_"
    return cleaned[:MAX_KEY_LENGTH]


def numeric(value: object) -> float | None:
    """`value` as a float when it is a real number (bools and strings are not), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)
