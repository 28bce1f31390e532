"""The cluster commands: arguments checked against the compiled package, and what kfp.Client sends.

No Kubeflow here, so the boundary is the HTTP request: a small real server on 127.0.0.1 answers the
KFP v2beta1 endpoints kfp.Client calls and records each body, which is read back with
kfp_server_api's own models. kfp.Client runs unchanged; only the cluster is absent.
"""

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import urlsplit

import kfp
import kfp_server_api
import pytest
import typer
import yaml
from kfp import compiler, dsl
from kfp_server_api import models
from typer.testing import CliRunner

from sail.pipeline.arguments import Parameter, check_arguments, parameters
from sail.pipeline.cli import parse_params, pipeline_app
from sail.pipeline.cluster import DEFAULT_PACKAGE, EXPERIMENT, kfp_cron, schedule, submit
from sail.pipeline.local import PROFILES, pipeline_arguments

pytestmark = pytest.mark.filterwarnings("ignore:This client only works:FutureWarning")
API = "/apis/v2beta1"
# The parameters the pipeline has (pipelines/sail_pipeline.py) and their defaults.
DEFAULTS = {
    "preset": "mini",
    "data_uri": "",
    "data_limit": 0,
    "content1_steps": 0,
    "content2_steps": 0,
    "content3_steps": 0,
    "seq2item_steps": 0,
    "id2item_steps": 0,
    "gate_tolerance": 0.01,
    "baseline_margin": 0.01,
    "publish_dim": 128,
    "stage_overrides": {},
}


@dsl.component(base_image="python:3.11-slim")
def echo(text: str) -> str:
    return text


@dsl.pipeline(name="needs-input")
def needs_input(corpus: str, epochs: int = 3):
    echo(text=corpus)


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("packages")
    compiler.Compiler().compile(needs_input, str(folder / "needs-input.yaml"))
    return SimpleNamespace(needs_input=folder / "needs-input.yaml", sail=DEFAULT_PACKAGE)


@dataclass
class Request:
    method: str
    path: str
    body: bytes


class FakeKfp(ThreadingHTTPServer):
    """The KFP v2beta1 endpoints kfp.Client calls here, recorded; list answers are built with
    kfp_server_api's models (the wire names are theirs: `recurringRuns`, not `recurring_runs`),
    a created object is echoed with an id. One recurring run of the scheduled name exists already,
    and one of another name."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), KfpHandler)
        self.requests: list[Request] = []
        self.experiments: list[dict] = []
        self.recurring = [
            models.V2beta1RecurringRun(recurring_run_id="old", display_name="retrain"),
            models.V2beta1RecurringRun(recurring_run_id="other", display_name="someone-else"),
        ]

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def sent(self, method: str, path: str) -> list[bytes]:
        return [r.body for r in self.requests if (r.method, r.path) == (method, API + path)]

    def answer(self, method: str, path: str, body: dict) -> dict | None:
        if (method, path) == ("GET", "/healthz"):
            return wire(models.V2beta1GetHealthzResponse(multi_user=False))
        if (method, path) == ("GET", "/experiments"):
            return {"experiments": self.experiments, "total_size": len(self.experiments)}
        if (method, path) == ("POST", "/experiments"):
            self.experiments.append({**body, "experiment_id": "exp-1"})
            return self.experiments[-1]
        if (method, path) == ("GET", "/recurringruns"):
            runs = models.V2beta1ListRecurringRunsResponse(self.recurring, len(self.recurring))
            return wire(runs)
        if method == "DELETE" and path.startswith("/recurringruns/"):
            gone = path.rpartition("/")[2]
            self.recurring = [r for r in self.recurring if r.recurring_run_id != gone]
            return {}
        if (method, path) == ("POST", "/recurringruns"):
            return {**body, "recurring_run_id": "new"}
        if (method, path) == ("POST", "/runs"):
            return {**body, "run_id": "run-1"}
        return None


class KfpHandler(BaseHTTPRequestHandler):
    server: FakeKfp

    def do_GET(self):
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append(Request(self.command, url.path, body))
        path = url.path.removeprefix(API)
        reply = self.server.answer(self.command, path, json.loads(body or b"{}"))
        data = json.dumps(reply if reply is not None else {"error": "no such endpoint"}).encode()
        self.send_response(404 if reply is None else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_DELETE = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def kfp_api(monkeypatch, tmp_path):
    # no ~/.config/kfp/context.json: kfp.Client then asks /healthz whether KFP is multi-user
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "context.json"))
    server = FakeKfp()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def wire(model) -> dict:
    """A kfp_server_api model as its JSON body."""
    return kfp_server_api.ApiClient().sanitize_for_serialization(model)


def decode(body: bytes, model: str):
    """A recorded request body, read back by kfp_server_api's own deserializer."""
    return kfp_server_api.ApiClient().deserialize(SimpleNamespace(data=body), model)


def compiled(package) -> dict:
    """The pipeline spec as kfp.Client embeds it: the IR, with the platform spec beside it."""
    ir, platform = yaml.safe_load_all(package.read_text())
    return {"pipeline_spec": ir, "platform_spec": platform}


def test_cron_gets_kfp_seconds_field():
    assert kfp_cron("0 3 * * 1") == "0 0 3 * * 1"
    assert kfp_cron("30 0 3 * * 1") == "30 0 3 * * 1"
    with pytest.raises(ValueError, match="has 3 fields"):
        kfp_cron("0 3 *")


def test_params_are_typed():
    assert parse_params(["preset=mini", "content1_steps=5", "gate_tolerance=0.02"]) == {
        "preset": "mini",
        "content1_steps": 5,
        "gate_tolerance": 0.02,
    }
    with pytest.raises(typer.BadParameter, match="NAME=VALUE"):
        parse_params(["preset"])


def test_params_file_is_read_under_explicit_params(tmp_path):
    file = tmp_path / "parameters.yaml"
    file.write_text('preset: tiny\ndata_uri: ""\npublish_dim: 64\n')
    assert parse_params(["publish_dim=32"], file) == {
        "preset": "tiny",
        "data_uri": "",
        "publish_dim": 32,
    }
    file.write_text("")
    assert parse_params(None, file) == {}
    file.write_text("- preset\n")
    with pytest.raises(typer.BadParameter, match="NAME: VALUE mapping"):
        parse_params(None, file)


def test_submit_needs_the_compiled_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="make compile"):
        submit("http://127.0.0.1:9", tmp_path / "missing.yaml", {})


def test_profiles_and_arguments_are_checked_before_a_run():
    arguments = pipeline_arguments("tiny", "quick", 0.01, None)
    assert arguments["publish_dim"] == 64 and arguments["content1_steps"] == 2
    assert set(PROFILES["full"]) == set(PROFILES["quick"])
    with pytest.raises(ValueError, match="not a Matryoshka size"):
        pipeline_arguments("mini", "full", 0.01, 100)
    with pytest.raises(ValueError, match="unknown profile"):
        pipeline_arguments("mini", "slow", 0.01, None)


def test_parameters_come_from_the_compiled_ir(packages):
    assert parameters(packages.needs_input) == {
        "corpus": Parameter("STRING", required=True),
        "epochs": Parameter("NUMBER_INTEGER", required=False, default=3.0),  # the IR's float
    }
    assert list(parameters(packages.sail)) == sorted(DEFAULTS)


def test_the_full_set_has_every_default_in_its_declared_type(packages):
    full = check_arguments(packages.sail, {"preset": "base", "gate_tolerance": 0})
    assert full == {**DEFAULTS, "preset": "base", "gate_tolerance": 0.0}
    assert {name: type(value) for name, value in full.items()} == {
        name: type(value) for name, value in DEFAULTS.items()
    }
    assert check_arguments(packages.needs_input, {"corpus": "a"}) == {"corpus": "a", "epochs": 3}


@pytest.mark.parametrize(
    "data_uri", ["", "/data/snapshots", "data", "file:///data/snapshots", "s3://b/x", "memory://x"]
)
def test_data_uri_may_be_a_path_or_a_protocol_fsspec_knows(packages, data_uri):
    assert check_arguments(packages.sail, {"data_uri": data_uri})["data_uri"] == data_uri


BAD = [
    ({"presett": "tiny"}, r"presett: no such parameter \(did you mean 'preset'\?\)"),
    ({"zzz": 1}, "zzz: no such parameter .known: baseline_margin, content1_steps"),
    ({"content1_steps": True}, r"content1_steps: True \(bool\) is not NUMBER_INTEGER"),
    ({"content1_steps": 1.5}, r"content1_steps: 1.5 \(float\) is not NUMBER_INTEGER"),
    ({"publish_dim": "128"}, r"publish_dim: '128' \(str\) is not NUMBER_INTEGER"),
    ({"gate_tolerance": "0.1"}, r"gate_tolerance: '0.1' \(str\) is not NUMBER_DOUBLE"),
    ({"data_uri": 3}, r"data_uri: 3 \(int\) is not STRING"),
    ({"preset": "huge"}, "preset: 'huge' is not one of"),
    ({"seq2item_steps": -1}, "seq2item_steps: -1 is negative"),
    ({"data_limit": -5}, "data_limit: -5 is negative"),
    ({"gate_tolerance": 1.0}, r"gate_tolerance: 1.0 is not in \[0, 1\)"),
    ({"gate_tolerance": -0.1}, "gate_tolerance: -0.1 is not in"),
    ({"publish_dim": 100}, "publish_dim: dimension 100 is not a Matryoshka size of preset 'mini'"),
    ({"preset": "tiny", "publish_dim": 128}, "publish_dim: .* of preset 'tiny'"),
    ({"data_uri": "nosuch://bucket/x"}, "data_uri: .* protocol fsspec does not know"),
    ({"stage_overrides": "lr=1"}, r"stage_overrides: 'lr=1' \(str\) is not STRUCT"),
    ({"stage_overrides": {"content9": {}}}, "stage_overrides: unknown stage 'content9'"),
    (
        {"stage_overrides": {"content1": {"lr": "5e-5", "shuffle": True}}},
        "stage_overrides: stage 'content1': lr: input should be a valid number, got '5e-5'; "
        "unknown key 'shuffle'",
    ),
]


@pytest.mark.parametrize(("arguments", "message"), BAD)
def test_bad_arguments_are_named(packages, arguments, message):
    with pytest.raises(ValueError, match=message):
        check_arguments(packages.sail, arguments)


def test_every_problem_is_named_and_a_bad_preset_skips_the_dim_check(packages):
    bad = {"preset": "huge", "publish_dim": 7, "id2item_steps": -1}
    with pytest.raises(ValueError) as error:
        check_arguments(packages.sail, bad)
    assert "preset: 'huge'" in str(error.value) and "id2item_steps: -1" in str(error.value)
    assert "publish_dim" not in str(error.value)
    with pytest.raises(ValueError, match="corpus: required, and not given"):
        check_arguments(packages.needs_input, {"epochs": 2})


def test_schedule_sends_the_full_parameter_set(kfp_api, packages):
    arguments = {"preset": "tiny", "publish_dim": 64}
    created = schedule(kfp_api.host, packages.sail, "0 3 * * 1", arguments, "retrain")
    assert created.recurring_run_id == "new"
    assert [(r.method, r.path.removeprefix(API)) for r in kfp_api.requests] == [
        ("GET", "/healthz"),  # kfp.Client's constructor, with no namespace in a context file
        ("GET", "/recurringruns"),
        ("DELETE", "/recurringruns/old"),  # replaced; the other name is left alone
        ("GET", "/experiments"),
        ("POST", "/experiments"),
        ("POST", "/recurringruns"),
    ]
    (body,) = kfp_api.sent("POST", "/recurringruns")
    run = decode(body, "V2beta1RecurringRun")
    assert run.display_name == "retrain" and run.mode == "ENABLE"
    assert run.trigger.cron_schedule.cron == "0 0 3 * * 1"
    assert run.trigger.periodic_schedule is None
    assert int(run.max_concurrency) == 1 and run.no_catchup is True
    assert run.experiment_id == "exp-1"
    assert decode(kfp_api.sent("POST", "/experiments")[0], "V2beta1Experiment").display_name == (
        EXPERIMENT
    )
    assert run.pipeline_spec == compiled(packages.sail)
    assert run.pipeline_version_reference is None
    assert run.runtime_config.parameters == {**DEFAULTS, **arguments}
    assert json.loads(body)["runtime_config"]["parameters"]["content1_steps"] == 0  # not 0.0


def test_submit_sends_the_full_parameter_set_from_the_command_line(kfp_api, packages, tmp_path):
    file = tmp_path / "parameters.yaml"
    file.write_text("preset: tiny\npublish_dim: 64\ndata_uri: file:///data\n")
    result = CliRunner().invoke(
        pipeline_app,
        ["submit", "--host", kfp_api.host, "--package", str(packages.sail)]
        + ["--params-file", str(file), "--param", "publish_dim=32", "--param", "id2item_steps=4"],
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "run run-1"
    (body,) = kfp_api.sent("POST", "/runs")
    run = decode(body, "V2beta1Run")
    assert run.experiment_id == "exp-1" and run.display_name.startswith("sail_pipeline.yaml ")
    assert run.pipeline_spec == compiled(packages.sail)
    assert run.runtime_config.parameters == {
        **DEFAULTS,
        "preset": "tiny",
        "publish_dim": 32,
        "data_uri": "file:///data",
        "id2item_steps": 4,
    }


def test_submit_with_a_required_parameter(kfp_api, packages):
    assert submit(kfp_api.host, packages.needs_input, {"corpus": "c"}, run_name="one") == "run-1"
    run = decode(kfp_api.sent("POST", "/runs")[0], "V2beta1Run")
    assert run.display_name == "one"
    assert run.runtime_config.parameters == {"corpus": "c", "epochs": 3}
    assert run.pipeline_spec["pipelineInfo"]["name"] == "needs-input"  # no platform spec: the IR


@pytest.mark.parametrize(
    ("package", "arguments", "cron"),
    [
        ("needs_input", {}, "0 3 * * 1"),
        ("needs_input", {"corpus": "c", "epoch": 2}, "0 3 * * 1"),
        ("sail", {"publish_dim": 100}, "0 3 * * 1"),
        ("sail", {"content2_steps": "5"}, "0 3 * * 1"),
        ("sail", {}, "0 3 *"),  # a bad cron too: nothing is deleted first
    ],
)
def test_bad_submissions_reach_no_server(kfp_api, packages, package, arguments, cron):
    package = getattr(packages, package)
    if cron == "0 3 * * 1":
        with pytest.raises(ValueError):
            submit(kfp_api.host, package, arguments)
    with pytest.raises(ValueError):
        schedule(kfp_api.host, package, cron, arguments)
    assert kfp_api.requests == []


def test_the_command_line_reports_bad_parameters(kfp_api, packages):
    result = CliRunner().invoke(
        pipeline_app,
        ["schedule", "--host", kfp_api.host, "--package", str(packages.sail)]
        + ["--cron", "0 3 * * 1", "--param", "presett=tiny"],
    )
    assert result.exit_code == 2
    assert "did you mean 'preset'?" in result.output
    assert kfp_api.requests == []
