"""Screenshots of the MLflow UI after a pipeline run, taken with headless Chromium.

It starts the tracking server on the run's store (as `make ui` does), finds the latest pipeline run,
one of its training steps, the version it registered and that version's logged model, and captures
the pages that show them: the runs table, the parent run, the training step (parameters and
dataset input), the logged model's metrics, the version's description, the registered model, and
the pictures (every stage's loss on one chart, the retrieval grid, MovieLens users' picks). The
pictures themselves are saved beside the screenshots, in `<out>/pictures/`.

    python scripts/ui_screenshots.py --out docs/ui
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import mlflow
import websocket

from sail.pipeline.steps import MODEL_NAME
from sail.tracking.pictures import PICTURES
from sail.tracking.registry import logged_model_id, version_of_pipeline_run
from sail.tracking.runs import PIPELINE_RUN_TAG, ROLE_TAG
from sail.tracking.server import local_server
from sail.tracking.store import configure, experiment_id

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
SETTLE_S = 12  # for the single-page app to fetch and draw after a navigation
# The UI keeps these in the browser's localStorage: the model-training view (its default is the
# GenAI one), and the assistant panel closed (it opens itself on a first visit).
UI_SETTINGS = {
    "mlflow.workflowType_v1": '"machine_learning"',
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
    "mlflow.assistant.panelOpen_v1": "false",
}
HEIGHTS = {"3-training-step": 1500, "2-pipeline-run": 1500, "8-retrieval-grid": 1500}  # pixels
PICTURE_FILES = (
    "retrieval_grid.png",
    "similarity_histogram.png",
    "metrics_by_size.png",
    "movielens_users.html",
)


def latest_pipeline_run(uri: str):
    """The latest pipeline run in the store at `uri`, and its step runs by name."""
    configure(uri)
    client = mlflow.MlflowClient()
    experiment = experiment_id()
    (parent,) = client.search_runs(
        [experiment],
        f"tags.`{ROLE_TAG}` = 'pipeline'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    steps = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return parent, {step.info.run_name: step for step in steps}


def pages(uri: str) -> dict[str, str]:
    """Screenshot name -> UI address, for the latest pipeline run in the store at `uri`."""
    parent, steps = latest_pipeline_run(uri)
    version = version_of_pipeline_run(MODEL_NAME, parent.data.tags[PIPELINE_RUN_TAG])
    base = f"{uri}/#/experiments/{parent.info.experiment_id}"
    run = f"{base}/runs/{parent.info.run_id}"
    evaluated = f"{base}/runs/{steps['evaluate'].info.run_id}/artifacts/{PICTURES}"
    found = {
        "1-runs": base,
        "2-pipeline-run": run,
        "3-training-step": f"{base}/runs/{steps['train_content1'].info.run_id}",
        "7-loss-all-stages": f"{run}/artifacts/plots/loss_all_stages.png",
        "8-retrieval-grid": f"{evaluated}/retrieval_grid.png",
        "9-movielens-users": f"{evaluated}/movielens_users.html",
    }
    if version is not None:
        if model_id := logged_model_id(MODEL_NAME, version):
            found["4-logged-model"] = f"{base}/models/{model_id}"
        found["5-model-version"] = f"{uri}/#/models/{MODEL_NAME}/versions/{version}"
        found["6-registered-model"] = f"{uri}/#/models/{MODEL_NAME}"
    return found


def save_pictures(uri: str, out: Path) -> list[Path]:
    """The latest pipeline run's pictures (`sail.tracking.pictures`) as files in `out`."""
    parent, steps = latest_pipeline_run(uri)
    out.mkdir(parents=True, exist_ok=True)
    evaluate = steps["evaluate"].info.run_id
    wanted = [(parent.info.run_id, "plots/loss_all_stages.png")]
    wanted += [(evaluate, f"{PICTURES}/{name}") for name in PICTURE_FILES]
    saved = []
    for run_id, path in wanted:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)
        saved.append(Path(shutil.copy(local, out / Path(path).name)))
    return saved


class Browser:
    """Headless Chromium driven over the DevTools protocol (one page, one profile)."""

    def __init__(self, executable: str, profile: Path, width: int):
        self.width = width
        self.process = subprocess.Popen(
            [
                executable,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port = _devtools_port(profile / "DevToolsActivePort")
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(t for t in targets if t["type"] == "page")
        self.socket = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=120, suppress_origin=True
        )
        self.calls = 0

    def call(self, method: str, **params):
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.calls:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def open(self, url: str, height: int) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.call("Page.navigate", url="about:blank")  # a full load: the app reads its settings
        self.call("Page.navigate", url=url)
        time.sleep(SETTLE_S)

    def settle(self, settings: dict[str, str]) -> None:
        """Store the UI's settings in the page's origin (the next navigation reads them)."""
        for key, value in settings.items():
            self.call(
                "Runtime.evaluate",
                expression=f"localStorage.setItem({json.dumps(key)}, {json.dumps(value)})",
            )

    def capture(self, path: Path) -> None:
        shot = self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=30)


def _devtools_port(path: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().split()[0]
        time.sleep(0.2)
    raise TimeoutError(f"Chromium wrote no {path.name} within {timeout:g} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/ui"))
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1200)
    args = parser.parse_args(argv)
    executable = next((b for b in BROWSERS if shutil.which(b)), None)
    if executable is None:
        print("no Chromium found: apt-get install -y chromium", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    with local_server() as uri, tempfile.TemporaryDirectory() as profile:
        browser = Browser(executable, Path(profile), args.width)
        try:
            browser.open(uri, args.height)
            browser.settle(UI_SETTINGS)
            for name, url in pages(uri).items():
                path = args.out / f"{name}.png"
                browser.open(url, HEIGHTS.get(name, args.height))
                browser.capture(path)
                print(f"{path}  {url.removeprefix(uri)}")
            for path in save_pictures(uri, args.out / "pictures"):
                print(path)
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
