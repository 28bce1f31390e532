"""Turn Great Expectations validation results into `CheckOutcome`s with a readable detail."""

from __future__ import annotations

import numpy as np

from sail.validation.report import CheckOutcome

EXAMPLES = 5  # unexpected values / rows quoted per failure
EXAMPLE_CHARS = 80  # characters of one quoted value
IGNORED_KWARGS = {"column", "column_list", "batch_id", "result_format"}
FALLBACK = {"expect_column_to_exist": ("column present", "column missing")}  # GE gives no details


def outcome_of(table: str, result) -> CheckOutcome:
    """One `ExpectationValidationResult` as an outcome of `table`."""
    config = result.expectation_config
    kwargs = dict(config.kwargs)
    column = kwargs.get("column") or ",".join(kwargs.get("column_list") or []) or None
    derived = bool((config.meta or {}).get("derived_check"))
    passed, failed = FALLBACK.get(config.type, ("as expected", "not as expected"))
    detail = _detail(result.result or {}, result.exception_info or {}, column if derived else None)
    detail = detail or (passed if result.success else failed)
    expected = (config.description if derived else _expected(kwargs)) or ""
    if expected and not result.success:
        detail = f"{detail}; expected {expected}"
    return CheckOutcome(
        table, config.type, column, bool(result.success), detail, config.description or ""
    )


def _detail(result: dict, exception_info: dict, hidden: str | None) -> str:
    """What the expectation observed: counts and examples, an observed value, or the error.

    `hidden` is a column left out of the examples (a derived check's always-False value).
    """
    if error := _exception_message(exception_info):
        return f"could not be evaluated: {error}"
    if missing := result.get("partial_missing_list"):
        return f"no rows hold {_short(missing)}"
    if "unexpected_count" in result:
        count, total = result["unexpected_count"], result.get("element_count", "?")
        text = f"{count} of {total} values unexpected"
        if result.get("missing_count"):
            text += f" ({result['missing_count']} null, not counted)"
        if count:
            text += f", e.g. {_examples(result, hidden)}"
        return text
    if "observed_value" in result:
        text = f"observed {_short(result['observed_value'])}"
        mismatched = (result.get("details") or {}).get("mismatched")
        if mismatched:
            text += "; " + ", ".join(f"{k}: {_short(v)}" for k, v in mismatched.items())
        return text
    return ""


def _examples(result: dict, hidden: str | None) -> str:
    """Unexpected rows named by their key columns when known, else the unexpected values."""
    rows = result.get("partial_unexpected_index_list") or []
    if rows and isinstance(rows[0], dict):
        shown = [
            "(" + ", ".join(f"{k}={visible_value(v)}" for k, v in row.items() if k != hidden) + ")"
            for row in rows
        ]
    else:
        values = result.get("partial_unexpected_list") or []
        shown = [_short(repr(_plain(v)), EXAMPLE_CHARS) for v in values]
    return ", ".join(shown[:EXAMPLES]) + (" ..." if len(shown) > EXAMPLES else "")


def _exception_message(info: dict) -> str | None:
    """The first error message in GE's exception info (flat, or keyed by metric)."""
    if info.get("raised_exception"):
        return str(info.get("exception_message")).splitlines()[0]
    for value in info.values():
        if isinstance(value, dict) and (
            value.get("exception_message") or value.get("raised_exception")
        ):
            return str(value.get("exception_message")).splitlines()[0]
    return None


def _expected(kwargs: dict) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in kwargs.items() if k not in IGNORED_KWARGS)


def visible_value(value: object) -> str:
    """A key value as a failure quotes it: shortened, and as a literal with escapes when it is
    blank, has surrounding whitespace or holds unprintable characters (so a line break shows)."""
    value = _plain(value)
    hidden = isinstance(value, str) and (
        not value.strip() or value != value.strip() or not value.isprintable()
    )
    return _short(repr(value) if hidden else value, EXAMPLE_CHARS)


def _plain(value: object) -> object:
    """numpy scalars as Python values, so examples print as `7`, not `np.int64(7)`."""
    return value.item() if isinstance(value, np.generic) else value


def _short(value: object, limit: int = 160) -> str:
    if isinstance(value, list | tuple | set | frozenset):
        text = "[" + ", ".join(str(_plain(v)) for v in value) + "]"
    else:
        text = str(_plain(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."
