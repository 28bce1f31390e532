"""The request schema on its own: what it accepts, and 400s naming the field and position."""

from __future__ import annotations

import pytest

from sail.serving.limits import Limits, RequestError
from sail.serving.schema import Checks, EmbeddingRequest, V1Request, V2Request, parse

CHECKS = Checks(Limits(max_items=3), dims=(16, 32, 64))


def problem(model, data, checks=CHECKS) -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse(model, data, checks)
    return caught.value


def test_strings_objects_and_ids():
    request = parse(
        V1Request, {"instances": ["a duck", {"id": 7, "title": "x"}, {"tags": ["t"]}]}, CHECKS
    )
    items = request.to_items()
    assert [(i.id, i.title, i.tags) for i in items] == [
        ("0", "a duck", []),
        ("7", "x", []),
        ("2", None, ["t"]),
    ]
    assert request.parameters.side == "target" and request.parameters.dim is None
    assert [
        i.title for i in parse(EmbeddingRequest, {"model": "m", "input": "one"}, CHECKS).to_items()
    ] == ["one"]


@pytest.mark.parametrize(
    ("data", "param", "words"),
    [
        (
            {"instances": ["a", {"image": "/etc/secret.png"}]},
            "instances[1].image",
            ["instances[1], field 'image'", "data: URLs"],
        ),
        (
            {"instances": ["a", {"frames": ["data:,", "x.png"]}]},
            "instances[1].frames[1]",
            ["field 'frames[1]'"],
        ),
        (
            {"instances": [{"title": "x", "colour": 1}]},
            "instances[0].colour",
            ["instances[0]: unknown field 'colour'"],
        ),
        ({"instances": ["ok", "  "]}, "instances[1]", ["instances[1]: a blank string"]),
        (
            {"instances": ["ok", [1]]},
            "instances[1]",
            ["must be an item object or a string, got list"],
        ),
        ({"instances": [{"id": "x"}]}, "instances[0]", ["no usable modality"]),
        ({"instances": [{"id": "", "title": "x"}]}, "instances[0].id", ["field 'id'"]),
        ({"instances": []}, "instances", ["empty"]),
        ({"instances": ["a"] * 4}, "instances", ["has 4 items; at most 3"]),
        (
            {"instances": ["a"], "parameters": {"dim": 7}},
            "parameters.dim",
            ["unsupported size 7", "[16, 32, 64]"],
        ),
        ({"instances": ["a"], "parameters": {"dim": "16"}}, "parameters.dim", ["valid integer"]),
        ({"instances": ["a"], "parameters": {"dim": 16.0}}, "parameters.dim", ["valid integer"]),
        (
            {"instances": ["a"], "parameters": {"side": "left"}},
            "parameters.side",
            ["'query' or 'target'"],
        ),
        (
            {"instances": ["a"], "parameters": {"instruction": " "}},
            "parameters.instruction",
            ["blank"],
        ),
        (
            {"instances": ["a"], "parameters": {"instruction": "x" * 1001}},
            "parameters.instruction",
            ["1000"],
        ),
        (
            {"instances": ["a"], "parameters": {"dimension": 16}},
            "parameters.dimension",
            ["unknown field 'dimension'"],
        ),
        ({"parameters": {}}, "instances", ["missing field 'instances'"]),
        ([1], None, ["the request body: must be a JSON object"]),
    ],
)
def test_problems_name_the_field_and_position(data, param, words):
    error = problem(V1Request, data)
    assert error.status == 400 and error.param == param
    for word in words:
        assert word in error.message


def test_too_many_items_is_refused_before_the_items_are_read():
    error = problem(V1Request, {"instances": [[1]] * 4})
    assert "has 4 items" in error.message and "more problem" not in error.message


def test_several_problems_are_counted():
    error = problem(EmbeddingRequest, {"model": "m", "input": ["ok", 1, 2]})
    assert (
        error.message
        == "input[1]: must be an item object or a string, got int (and 1 more problem(s))"
    )


def test_the_server_settings_decide_paths_and_sizes():
    data = {"instances": [{"image": "/srv/images/a.png"}], "parameters": {"dim": 48}}
    request = parse(V1Request, data, Checks(Limits(allow_local_paths=True)))  # no sizes known
    assert request.to_items()[0].image == "/srv/images/a.png" and request.parameters.dim == 48


def test_v2_parameters_and_items():
    request = parse(V2Request, {"parameters": None, "items": ["a"]}, CHECKS)
    assert request.parameters.binary_data_output is False
    error = problem(V2Request, {"parameters": {"binary_data_output": "yes"}, "items": ["a"]})
    assert error.param == "parameters.binary_data_output"
    assert (
        problem(V2Request, {"parameters": {}, "items": [{"tags": [1]}]}).param == "items[0].tags[0]"
    )


def test_json_schemas_refuse_unknown_fields_and_carry_examples():
    for model in (V1Request, V2Request, EmbeddingRequest):
        schema = model.model_json_schema()
        assert schema["additionalProperties"] is False
        assert schema["$defs"]["ItemBody"]["additionalProperties"] is False
    openai = EmbeddingRequest.model_json_schema()
    assert openai["examples"] and openai["$defs"]["ItemBody"]["examples"]
    assert openai["properties"]["side"]["enum"] == ["query", "target"]
