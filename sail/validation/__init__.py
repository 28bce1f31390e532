"""Great Expectations validation of the prepared data sets under `$SAIL_HOME/data`.

`validate_prepared_data(data_root, docs_dir=None, policy=None, now=None)` checks every table of
both data sets and returns a `ValidationReport`; `check(report)` raises `DataValidationError` when
anything failed. The windows values must fall in come from a `ValidationPolicy` (`load_policy()`,
`policy.py`). What is checked is listed in docs/data.md ("Validation"). Great Expectations takes
seconds to import, so the runner is imported on first use of `validate_prepared_data`.
"""

from sail.validation.policy import ValidationPolicy, load_policy
from sail.validation.report import (
    DataValidationError,
    ExpectationFailure,
    ValidationReport,
    check,
)

__all__ = [
    "DataValidationError",
    "ExpectationFailure",
    "ValidationPolicy",
    "ValidationReport",
    "check",
    "load_policy",
    "validate_prepared_data",
]


def __getattr__(name: str):
    """Import the runner (and Great Expectations) on first use of `validate_prepared_data`."""
    if name == "validate_prepared_data":
        from sail.validation.run import validate_prepared_data

        return validate_prepared_data
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
