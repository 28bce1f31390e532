"""An in-process stand-in for the Kubernetes API server's InferenceService endpoints, with a toy
KServe controller behind them, so that `sail.deploy.api.InferenceServices` is exercised over HTTP
through the real kubernetes client.

- GET, POST (create) and PATCH on `/apis/serving.kserve.io/v1beta1/namespaces/NS/inferenceservices`.
  PATCH takes only `application/json-patch+json` (415 otherwise), applied strictly (RFC 6902: a
  failed `test`, a missing path or an unknown op is a 422 and changes nothing).
- A spec change bumps metadata.generation; a change to the predictor other than its
  canaryTrafficPercent starts a new revision (`NAME-predictor-0000N`) serving the model URI in the
  container's environment, as Knative does for a new pod template.
- GET `/apis/serving.knative.dev/v1/namespaces/NS/revisions/NAME`: a revision with the labels
  of the predictor it was created from (Knative copies the pod template's labels).
- The controller settles after `polls_to_ready` GETs: observedGeneration catches up, then the
  latest revision is Ready (and traffic is split as KServe does: canaryTrafficPercent to the latest
  ready revision, the rest to the last rolled-out one), or fails (its model URI in `failing`: Ready
  False, RevisionFailed), or never comes up (in `stuck`: Ready Unknown).
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kubernetes.client import ApiClient, Configuration

_PATH = re.compile(
    r"/apis/serving\.kserve\.io/v1beta1/namespaces/([^/]+)/inferenceservices(?:/([^/]+))?"
)
_REVISION = re.compile(r"/apis/serving\.knative\.dev/v1/namespaces/([^/]+)/revisions/([^/]+)")


class PatchError(ValueError):
    pass


@dataclass
class Request:
    method: str
    path: str
    content_type: str
    body: object


@dataclass
class Revisions:
    """The toy controller's state for one InferenceService."""

    models: dict[str, str] = field(default_factory=dict)  # revision -> model URI it serves
    labels: dict[str, dict] = field(default_factory=dict)  # revision -> its pods' labels
    latest_created: str = ""
    latest_ready: str = ""
    rolled_out: str = ""
    previous_rolled_out: str = ""
    polls: int = 0  # GETs since the last spec change


class FakeKubeApi:
    def __init__(self, polls_to_ready: int = 2):
        self.polls_to_ready = polls_to_ready
        self.failing: set[str] = set()  # model URIs whose revisions fail
        self.stuck: set[str] = set()  # model URIs whose revisions never become ready
        self.objects: dict[tuple[str, str], dict] = {}
        self.revisions: dict[tuple[str, str], Revisions] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- test side ---------------------------------------------------------------------------

    def __enter__(self) -> FakeKubeApi:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def api_client(self) -> ApiClient:
        configuration = Configuration()
        configuration.host = f"http://127.0.0.1:{self._server.server_address[1]}"
        return ApiClient(configuration)

    def seed(self, isvc: dict) -> dict:
        """`isvc` as a live object whose revision is Ready and rolled out (all traffic)."""
        key = (isvc["metadata"]["namespace"], isvc["metadata"]["name"])
        self._create(key, isvc)
        state = self.revisions[key]
        state.latest_ready = state.rolled_out = state.latest_created
        state.polls = self.polls_to_ready
        self._settle(key)
        return self.live(*key)

    def live(self, namespace: str, name: str) -> dict:
        return copy.deepcopy(self.objects[(namespace, name)])

    def model_of(self, namespace: str, name: str, revision: str) -> str:
        return self.revisions[(namespace, name)].models[revision]

    def calls(self, method: str) -> list[Request]:
        return [r for r in self.requests if r.method == method]

    # --- API side ----------------------------------------------------------------------------

    def handle(self, method: str, path: str, content_type: str, body: object) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(Request(method, path, content_type, body))
            revision = _REVISION.fullmatch(path.split("?")[0])
            if revision and method == "GET":
                return self._revision(*revision.groups())
            match = _PATH.fullmatch(path.split("?")[0])
            if not match:
                return 404, _status(404, f"no route {path}")
            namespace, name = match.groups()
            key = (namespace, name or (body or {}).get("metadata", {}).get("name"))
            if method == "POST":
                if key in self.objects:
                    return 409, _status(409, f"inferenceservices {key[1]} already exists")
                return 201, self._create(key, body)
            if key not in self.objects:
                return 404, _status(
                    404, f'inferenceservices.serving.kserve.io "{key[1]}" not found'
                )
            if method == "GET":
                self.revisions[key].polls += 1
                self._settle(key)
                return 200, copy.deepcopy(self.objects[key])
            if method == "PATCH":
                if content_type != "application/json-patch+json":
                    return 415, _status(415, f"unsupported patch type {content_type}")
                try:
                    return 200, self._patch(key, body)
                except PatchError as error:
                    return 422, _status(422, str(error))
            return 405, _status(405, method)

    def _revision(self, namespace: str, name: str) -> tuple[int, dict]:
        for (ns, _), state in self.revisions.items():
            if ns == namespace and name in state.labels:
                labels = copy.deepcopy(state.labels[name])
                return 200, {"kind": "Revision", "metadata": {"name": name, "labels": labels}}
        return 404, _status(404, f'revisions.serving.knative.dev "{name}" not found')

    def _create(self, key: tuple[str, str], manifest: dict) -> dict:
        live = copy.deepcopy(manifest)
        live["metadata"].update(namespace=key[0], generation=1, uid=f"uid-{key[1]}")
        live["metadata"]["resourceVersion"] = "1"
        self.objects[key] = live
        self.revisions[key] = Revisions()
        self._new_revision(key)
        live["status"] = {"observedGeneration": 0, "conditions": []}
        return copy.deepcopy(live)

    def _patch(self, key: tuple[str, str], operations: list[dict]) -> dict:
        before = self.objects[key]
        after = apply_json_patch(before, operations)
        if after["spec"] != before["spec"]:
            after["metadata"]["generation"] += 1
            self.revisions[key].polls = 0
            if _template(after) != _template(before):
                self._new_revision(key, after)
        after["metadata"]["resourceVersion"] = str(int(before["metadata"]["resourceVersion"]) + 1)
        self.objects[key] = after
        return copy.deepcopy(after)

    def _new_revision(self, key: tuple[str, str], isvc: dict | None = None) -> None:
        isvc = isvc or self.objects[key]
        state = self.revisions[key]
        revision = f"{key[1]}-predictor-{len(state.models) + 1:05d}"
        state.models[revision] = _model_uri(isvc)
        state.labels[revision] = dict(isvc["spec"]["predictor"].get("labels") or {})
        state.latest_created = revision

    def _settle(self, key: tuple[str, str]) -> None:
        """The controller's status once `polls_to_ready` GETs have passed since the change."""
        isvc, state = self.objects[key], self.revisions[key]
        if state.polls < self.polls_to_ready:
            return
        model = state.models[state.latest_created]
        if model in self.failing:
            ready = _condition("False", "RevisionFailed", f"Revision {state.latest_created} failed")
        elif model in self.stuck:
            ready = _condition("Unknown", "RevisionMissing", "waiting for the revision")
        else:
            ready = _condition("True")
            state.latest_ready = state.latest_created
        traffic = self._traffic(state, isvc["spec"]["predictor"].get("canaryTrafficPercent"))
        isvc["status"] = {
            "observedGeneration": isvc["metadata"]["generation"],
            "conditions": [{**ready, "type": "PredictorReady"}, {**ready, "type": "Ready"}],
            "components": {
                "predictor": {
                    "latestCreatedRevision": state.latest_created,
                    "latestReadyRevision": state.latest_ready,
                    "latestRolledoutRevision": state.rolled_out,
                    "previousRolledoutRevision": state.previous_rolled_out,
                    "traffic": traffic,
                }
            },
        }

    @staticmethod
    def _traffic(state: Revisions, percent: int | None) -> list[dict]:
        """KServe's split: the canary percent to the latest ready revision, the rest to the last
        rolled-out one; a revision given 100% becomes the rolled-out one."""
        if percent is not None and state.rolled_out and percent < 100:
            return [
                {"revisionName": state.latest_ready, "latestRevision": True, "percent": percent},
                {
                    "revisionName": state.rolled_out,
                    "latestRevision": False,
                    "percent": 100 - percent,
                },
            ]
        if state.rolled_out != state.latest_ready:
            state.previous_rolled_out, state.rolled_out = state.rolled_out, state.latest_ready
        return [{"revisionName": state.latest_ready, "latestRevision": True, "percent": 100}]


def apply_json_patch(document: dict, operations: list[dict]) -> dict:
    """RFC 6902 add / replace / remove / test on a copy; PatchError on anything amiss."""
    result = copy.deepcopy(document)
    for operation in operations:
        op, path = operation.get("op"), operation.get("path", "")
        *parents, last = [_unescape(p) for p in path.split("/")[1:]]
        target = result
        for part in parents:
            target = _step(target, part, path)
        if op == "test":
            if _step(target, last, path) != operation["value"]:
                raise PatchError(f"test failed at {path}")
        elif op == "add":
            if isinstance(target, list):
                index = len(target) if last == "-" else _index(target, last, path, extra=1)
                target.insert(index, copy.deepcopy(operation["value"]))
            else:
                target[last] = copy.deepcopy(operation["value"])
        elif op == "replace":
            _step(target, last, path)
            key = _index(target, last, path) if isinstance(target, list) else last
            target[key] = copy.deepcopy(operation["value"])
        elif op == "remove":
            _step(target, last, path)
            del target[_index(target, last, path) if isinstance(target, list) else last]
        else:
            raise PatchError(f"unsupported op {op!r}")
    return result


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _index(target: list, part: str, path: str, extra: int = 0) -> int:
    if not part.isdigit() or int(part) >= len(target) + extra:
        raise PatchError(f"no index {part} at {path}")
    return int(part)


def _step(target: object, part: str, path: str) -> object:
    if isinstance(target, list):
        return target[_index(target, part, path)]
    if not isinstance(target, dict) or part not in target:
        raise PatchError(f"no {part!r} at {path}")
    return target[part]


def _template(isvc: dict) -> dict:
    """What makes a new revision: the predictor without its traffic setting."""
    predictor = dict(isvc["spec"]["predictor"])
    predictor.pop("canaryTrafficPercent", None)
    return predictor


def _model_uri(isvc: dict) -> str:
    env = isvc["spec"]["predictor"]["containers"][0].get("env") or []
    return next(e["value"] for e in env if e["name"] in ("STORAGE_URI", "MODEL_URI"))


def _condition(status: str, reason: str = "", message: str = "") -> dict:
    condition = {"status": status}
    if reason:
        condition |= {"reason": reason, "message": message}
    return condition


def _status(code: int, message: str) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "code": code,
    }


def _handler(api: FakeKubeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            content_type = self.headers.get("Content-Type", "")
            code, reply = api.handle(self.command, self.path, content_type, body)
            data = json.dumps(reply).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, *args) -> None:  # quiet
            pass

    return Handler
