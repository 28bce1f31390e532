"""The hostile suite's page and its handling of a section that raises (no server, no store)."""

from __future__ import annotations

from hostile import __main__ as hostile_main
from hostile.report import render
from hostile.section import Context, Section


def results(*sections: Section) -> dict:
    machine = {"git_commit": "abc1234", "date": "2026-11-30", "cores": 2, "cpu": "a CPU"}
    return {"machine": machine, "seconds": 12.0, "sections": [s.to_dict() for s in sections]}


def test_a_row_that_did_not_hold_fails_its_section_and_the_verdict():
    good = Section("Load", ["requests", "errors", "holds"], note="Valid requests.")
    good.add(640, 0, "yes")
    bad = Section("Bad requests", ["kind", "5xx", "holds"])
    bad.add("a | pipe", 0, "yes")
    bad.add("deep JSON", 2, "NO", ok=False)
    assert good.held and not bad.held
    page = render(results(good, bad))
    assert "**Verdict: did not hold: Bad requests**" in page
    assert "| 640 | 0 | yes |" in page and "| a \\| pipe | 0 | yes |" in page
    assert "**did not hold**" in page and "commit abc1234" in page
    assert "**Verdict: every row held**" in render(results(good))


def test_a_section_that_raises_is_a_failed_table(monkeypatch, tmp_path):
    def broken(context):
        raise RuntimeError("the store did not start")

    monkeypatch.setitem(hostile_main.SECTIONS, "publish", broken)
    context = Context(home=tmp_path, model_dir=tmp_path, work=tmp_path)
    (section,) = hostile_main.run_section("publish", context)
    assert not section.held and section.title == "publish (failed to run)"
    assert section.rows == [["RuntimeError: the store did not start"]]
