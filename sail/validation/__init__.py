"""Great Expectations validation of the prepared data sets under `$SAIL_HOME/data`.

`validate_prepared_data(data_root, docs_dir=None)` checks every table of both data sets and
returns a `ValidationReport`; `check(report)` raises `DataValidationError` when anything failed.
What is checked is listed in docs/data.md ("Validation"). Great Expectations takes seconds to
import, so the runner is imported on first use of `validate_prepared_data`.
"""

from sail.validation.report import (
    DataValidationError,
    ExpectationFailure,
    ValidationReport,
    check,
)

__all__ = [
    "DataValidationError",
    "ExpectationFailure",
    "ValidationReport",
    "check",
    "validate_prepared_data",
]


def __getattr__(name: str):
    """Import the runner (and Great Expectations) on first use of `validate_prepared_data`."""
    if name == "validate_prepared_data":
        from sail.validation.run import validate_prepared_data

        return validate_prepared_data
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
