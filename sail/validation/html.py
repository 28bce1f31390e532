"""A self-contained HTML page of every check and its outcome (no scripts, no external assets)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from sail.validation.report import CheckOutcome, ValidationReport

STYLE = """
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; margin-bottom: 2em; width: 100%; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eee; }
.pass { color: #17692c; font-weight: bold; }
.fail { color: #b00020; font-weight: bold; }
td.detail { font-family: monospace; font-size: 90%; }
.note { color: #555; font-size: 85%; }
"""


def write_html(
    report: ValidationReport, outcomes: list[CheckOutcome], path: Path, gx_docs: str | None
) -> None:
    """Write the page to `path`: a summary, then one table of checks per data table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    status = "passed" if report.success else f"failed ({len(report.failures)} failed checks)"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Prepared data validation</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Prepared data validation</h1>",
        f'<p class="{"pass" if report.success else "fail"}">Validation {escape(status)}</p>',
    ]
    if gx_docs:
        link = f'<a href="{escape(gx_docs)}">{escape(gx_docs)}</a>'
        parts.append(f"<p>Great Expectations data docs: {link}</p>")
    parts.append(_summary(report))
    for table in dict.fromkeys(o.table for o in outcomes):
        parts.append(f"<h2>{escape(table)}</h2>")
        parts.append(_checks([o for o in outcomes if o.table == table]))
    parts.append("</body></html>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


def _summary(report: ValidationReport) -> str:
    rows = "".join(
        f"<tr><td>{escape(table)}</td><td>{report.tables.get(table, '')}</td>"
        f"<td>{counts['evaluated']}</td><td>{counts['passed']}</td><td>{counts['failed']}</td></tr>"
        for table, counts in report.statistics.items()
    )
    header = "<tr><th>table</th><th>rows</th><th>checks</th><th>passed</th><th>failed</th></tr>"
    return f"<table>{header}{rows}</table>"


def _checks(outcomes: list[CheckOutcome]) -> str:
    header = "<tr><th>expectation</th><th>column</th><th>outcome</th><th>observed</th></tr>"
    rows = "".join(
        f"<tr><td>{escape(o.expectation)}{_note(o.description)}</td>"
        f"<td>{escape(o.column or '')}</td>"
        f'<td class="{"pass" if o.success else "fail"}">{"PASS" if o.success else "FAIL"}</td>'
        f'<td class="detail">{escape(o.detail)}</td></tr>'
        for o in outcomes
    )
    return f"<table>{header}{rows}</table>"


def _note(description: str) -> str:
    return f'<br><span class="note">{escape(description)}</span>' if description else ""
