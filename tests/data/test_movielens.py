import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from model_code.data import movielens
from model_code.data.movielens import (
    TABLES,
    load_movielens,
    prepare_movielens,
    split_leave_last_out,
)
from model_code.data.storage import DataNotPrepared, MissingSourceData


def ratings(*rows: tuple[str, str, int, int]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The full real prepare, written where SAIL_HOME says, and loaded back."""
    home = tmp_path_factory.mktemp("sail_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAIL_HOME", str(home))
        manifest = prepare_movielens()
        tables = load_movielens()
    return home / "data" / "movielens", manifest, tables


@pytest.fixture(scope="module")
def held_out(prepared):
    """Per sequence user: (timestamp, numeric item id) keys of history, validation and test."""
    _, _, tables = prepared
    order = {
        (row.user_id, row.item_id): (row.timestamp, int(row.item_id))
        for row in tables["interactions"].itertuples()
    }
    return [
        ([order[user, item] for item in history], order[user, validation], order[user, test])
        for user, history, validation, test in tables["sequences"].itertuples(index=False)
    ]


def test_real_counts(prepared):
    _, manifest, tables = prepared
    assert len(tables["items"]) == 1682 and manifest["items"] == 1682
    assert len(tables["users"]) == 943 and manifest["users"] == 943
    assert len(tables["interactions"]) == 100_000 and manifest["interactions"]["total"] == 100_000
    counts = tables["interactions"]["split"].value_counts()
    assert manifest["interactions"] == {
        "train": counts["train"],
        "validation": counts["validation"],
        "test": counts["test"],
        "total": 100_000,
    }
    assert manifest["users_with_sequences"] == len(tables["sequences"])
    assert counts["validation"] == counts["test"] == len(tables["sequences"])


def test_schemas_on_disk(prepared):
    out, _, _ = prepared
    for name, schema in TABLES.items():
        assert pq.read_schema(out / f"{name}.parquet").remove_metadata() == schema


def test_test_after_validation_after_history(held_out):
    for history, validation, test in held_out:
        assert test > validation
        assert all(item < validation for item in history)
        assert test[0] >= validation[0] and all(item[0] <= validation[0] for item in history)
        assert history == sorted(history)


def test_held_out_rows_are_not_train(prepared):
    _, _, tables = prepared
    split = tables["interactions"].set_index(["user_id", "item_id"])["split"]
    users = tables["sequences"]["user_id"]
    validation = list(zip(users, tables["sequences"]["validation_item"], strict=True))
    test = list(zip(users, tables["sequences"]["test_item"], strict=True))
    assert (split[validation] == "validation").all()
    assert (split[test] == "test").all()
    assert set(split[split != "train"].index) == set(validation) | set(test)


def test_history_is_every_train_positive(prepared):
    _, _, tables = prepared
    interactions = tables["interactions"]
    train_positives = interactions[
        (interactions["rating"] >= 4) & (interactions["split"] == "train")
    ]
    by_user = train_positives.groupby("user_id")["item_id"].agg(set)
    for user, history in zip(tables["sequences"].user_id, tables["sequences"].history, strict=True):
        assert set(history) == by_user.get(user, set()) and len(history) == len(set(history))


def test_negatives_and_users_with_few_positives_stay_train(prepared):
    _, _, tables = prepared
    interactions = tables["interactions"]
    assert (interactions.loc[interactions["rating"] < 4, "split"] == "train").all()
    without = set(tables["users"].user_id) - set(tables["sequences"].user_id)
    assert without  # user 685 has no rating above 3
    positives = interactions[interactions["rating"] >= 4].groupby("user_id").size()
    assert all(positives.get(user, 0) < 3 for user in without)
    assert (interactions.loc[interactions["user_id"].isin(without), "split"] == "train").all()


def test_load_round_trips(prepared):
    out, manifest, tables = prepared
    again = load_movielens(root=out)
    assert set(again) == {"items", "users", "interactions", "sequences"}
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(again[name], frame)
    items = again["items"]
    assert str(items["year"].dtype) == "Int64" and items["year"].isna().sum() == 2
    assert items.set_index("item_id").loc["1", "genres"] == ["Animation", "Children's", "Comedy"]
    assert isinstance(again["sequences"]["history"].iloc[0], list)
    assert again["users"].dtypes.to_dict() == {
        "user_id": object,
        "age": "int64",
        "gender": object,
        "occupation": object,
    }
    assert json.loads((out / "manifest.json").read_text()) == manifest


def test_ties_in_time_break_on_numeric_item_id():
    raw = ratings(
        ("1", "10", 5, 100),
        ("1", "9", 4, 100),
        ("1", "3", 5, 50),
        ("1", "7", 2, 200),
        ("1", "8", 4, 90),
        ("2", "1", 5, 10),
        ("2", "2", 5, 20),
    )
    interactions, sequences = split_leave_last_out(raw)
    assert sequences.to_dict("records") == [
        {"user_id": "1", "history": ["3", "8"], "validation_item": "9", "test_item": "10"}
    ]
    assert list(interactions["split"]) == ["test", "validation"] + ["train"] * 5


def test_load_before_prepare_names_the_cli(tmp_path):
    with pytest.raises(DataNotPrepared, match="sail data prepare"):
        load_movielens(root=tmp_path / "movielens")


def test_missing_recbole_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(movielens, "package_dir", lambda name: None)
    with pytest.raises(
        MissingSourceData, match=r"pip install --no-deps --target .*recbole==1\.2\.1.*make setup"
    ):
        prepare_movielens(out_dir=tmp_path)


def test_missing_files_name_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(movielens, "package_dir", lambda name: tmp_path)
    with pytest.raises(MissingSourceData, match=r"ml-100k\.inter.*pip install --no-deps"):
        movielens.source_dir()
