"""What a validation run returns: per-check outcomes, failures, the report and its error."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class CheckOutcome:
    """One evaluated check (a Great Expectations expectation or a file check) and what it saw."""

    table: str
    expectation: str
    column: str | None
    success: bool
    detail: str
    description: str = ""  # what the check means, where the suite says


@dataclass
class ExpectationFailure:
    """A failed check: table (`<data set>/<table>`), expectation, column, what was seen."""

    table: str
    expectation: str
    column: str | None
    detail: str

    def __str__(self) -> str:
        where = f" on column {self.column}" if self.column else ""
        return f"{self.table}: {self.expectation} failed{where}: {self.detail}"


@dataclass
class ValidationReport:
    """Outcome of `validate_prepared_data`.

    `tables` holds the row count of every table that could be read; `statistics` maps each table to
    the number of checks `evaluated`, `passed` and `failed`; `docs_dir` is the folder holding the
    HTML report (`index.html`) when one was asked for; `policy` holds the validation policy as
    `configured` and its windows as `resolved` at the moment of validation.
    """

    success: bool
    failures: list[ExpectationFailure]
    tables: dict[str, int]
    statistics: dict = field(default_factory=dict)
    docs_dir: Path | None = None
    policy: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-serialisable copy."""
        data = asdict(self)
        data["docs_dir"] = str(self.docs_dir) if self.docs_dir is not None else None
        return data


class DataValidationError(ValueError):
    """The prepared data failed validation; `.report` is the full `ValidationReport`."""

    def __init__(self, report: ValidationReport):
        self.report = report
        lines = "\n".join(f"  {failure}" for failure in report.failures)
        super().__init__(
            f"Prepared data failed validation ({len(report.failures)} failed checks):\n{lines}"
        )


def check(report: ValidationReport) -> None:
    """Raise `DataValidationError` unless every check in `report` passed."""
    if not report.success:
        raise DataValidationError(report)


def build_report(
    outcomes: list[CheckOutcome], tables: dict[str, int], docs_dir: Path | None, policy: dict
) -> ValidationReport:
    """Summarise outcomes into a report (statistics per table, failures in check order)."""
    statistics: dict[str, dict[str, int]] = {}
    for outcome in outcomes:
        counts = statistics.setdefault(outcome.table, {"evaluated": 0, "passed": 0, "failed": 0})
        counts["evaluated"] += 1
        counts["passed" if outcome.success else "failed"] += 1
    failures = [
        ExpectationFailure(o.table, o.expectation, o.column, o.detail)
        for o in outcomes
        if not o.success
    ]
    return ValidationReport(
        success=not failures,
        failures=failures,
        tables=tables,
        statistics=statistics,
        docs_dir=docs_dir,
        policy=policy,
    )
