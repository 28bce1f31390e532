"""The hostile suite's validation section, on a few corruption kinds of the real data."""

from hostile.section import Context
from hostile.validation import corrupted_data, stop_publishes_nothing

KINDS = ("duplicate_item_id",)


def test_corruptions_are_stopped_by_their_checks_and_the_clean_copy_passes(prepared_home, tmp_path):
    context = Context(home=prepared_home, model_dir=tmp_path / "model", work=tmp_path / "work")
    section = corrupted_data(context, kinds=KINDS)
    assert section.held, section.rows
    assert [row[0] for row in section.rows] == ["none (clean copy)", *KINDS]
    assert all(row[2] == "yes" for row in section.rows[1:]) and section.rows[0][2] == "no"
    assert "values_to_be_unique(item_id)" in section.rows[1][3]
    assert not list((tmp_path / "work" / "validation").iterdir())  # every copy deleted


def test_the_pipeline_case_is_skipped_in_quick_mode(tmp_path):
    context = Context(home=tmp_path, model_dir=tmp_path, work=tmp_path / "work", quick=True)
    section = stop_publishes_nothing(context)
    assert section.held and "skipped" in section.rows[0][1]
