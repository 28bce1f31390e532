"""Pictures for the MLflow UI, where people would rather look than read.

`log_evaluation_pictures(embedder, vectors, split="validation")`, from the evaluate step, logs to
its run under `pictures/`, drawn from the split the gate decides on as the model embedded it for the
metrics (`model_code.evaluation.suite.embed_splits`):

- `retrieval_grid.png`: 8 fixed captions (the split's first by id), each with its top-5
  drawings among the split's, the caption's own drawing outlined;
- `similarity_histogram.png`: the cosine of matching caption/drawing pairs against the others;
- `metrics_by_size.png` (and `.json`): text->image recall@k and MovieLens HR@10 at each
  Matryoshka size;
- `movielens_users.html`: 5 users' recent history next to their top-10 recommendations (titles;
  movies they have seen are never recommended; the held-out next movie is marked).

`log_stage_losses(parent_run_id)`, when the pipeline's run closes, draws the loss of every
training stage's run on one chart in the parent run: `plots/loss_all_stages.png`.
"""

from __future__ import annotations

import html
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np

from model_code.training.stages import STAGES
from sail.tracking import plots
from sail.tracking.runs import STEP_TAG, current_run_id

if TYPE_CHECKING:
    from model_code.embed import Embedder
    from model_code.evaluation.suite import SplitVectors

PICTURES = "pictures"
GRID_CAPTIONS, GRID_TOP = 8, 5
USERS, RECOMMENDATIONS = 5, 10
RECALL_KS = (1, 5, 10)


def log_evaluation_pictures(
    embedder: Embedder, vectors: SplitVectors, split: str = "validation", run_id: str | None = None
) -> list[str]:
    """Draw the pictures of the module doc from one split as the model embedded it
    (`model_code.evaluation.suite.embed_splits`) and log them; returns their artifact paths."""
    from model_code.data.movielens import load_movielens
    from model_code.evaluation.suite import next_item_reports, retrieval_reports

    run_id = current_run_id(run_id)
    pairs, users = vectors.pairs, vectors.users
    dims = embedder.model.config.matryoshka_dims
    ks = tuple(k for k in RECALL_KS if k <= len(pairs))
    recall = retrieval_reports(vectors.text, vectors.image, ks, dims)
    movies = next_item_reports(users, dims=dims)
    by_size = {
        f"text->image recall@{k}": {dim: recall[dim][f"t2i_recall@{k}"] for dim in dims} for k in ks
    }
    by_size["MovieLens HR@10"] = {dim: movies[dim]["hr@10"] for dim in dims}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        similarity = vectors.text @ vectors.image.T
        plots.retrieval_grid(_grid_rows(pairs, similarity), folder / "retrieval_grid.png")
        plots.similarity_histogram(
            np.diag(similarity),
            similarity[~np.eye(len(pairs), dtype=bool)],
            folder / "similarity_histogram.png",
        )
        plots.metrics_by_size(by_size, folder / "metrics_by_size.png", f"{split} split by size")
        (folder / "metrics_by_size.json").write_text(json.dumps(by_size, indent=2))
        (folder / "movielens_users.html").write_text(_users_page(load_movielens(), users))
        mlflow.MlflowClient().log_artifacts(run_id, str(folder), artifact_path=PICTURES)
        return sorted(f"{PICTURES}/{path.name}" for path in folder.iterdir())


def log_stage_losses(parent_run_id: str) -> str | None:
    """The loss of every training stage (the parent's `train_*` step runs, in training order)
    on one chart in the parent run; None when no stage has logged a loss yet."""
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_run_id)
    steps = client.search_runs(
        [parent.info.experiment_id],
        f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
        order_by=["attributes.start_time ASC"],
    )
    curves = {}
    for step in steps:
        stage = step.data.tags.get(STEP_TAG, "").removeprefix("train_")
        if stage in STAGES:  # not the ID teacher's run: it trains no stage of the model
            history = client.get_metric_history(step.info.run_id, "loss")
            curves[stage] = [(m.step, m.value) for m in history]
    if not any(curves.values()):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = plots.stage_losses(curves, Path(tmp) / "loss_all_stages.png", "Loss by stage")
        client.log_artifact(parent_run_id, str(path), artifact_path="plots")
    return "plots/loss_all_stages.png"


def _grid_rows(pairs, similarity: np.ndarray) -> list[tuple[str, list[tuple[Path, bool]]]]:
    rows = []
    for row in range(min(GRID_CAPTIONS, len(pairs))):
        best = np.argsort(-similarity[row], kind="stable")[:GRID_TOP]
        caption = pairs["title"][row]
        found = [(Path(pairs["image"][column]), column == row) for column in best]
        rows.append((caption, found))
    return rows


def _users_page(tables, users) -> str:
    """An HTML table: per user, their recent movies and their top recommendations."""
    from model_code.data.catalogue import movielens_items

    titles = {item.id: item.title for item in movielens_items(tables["items"])}
    user_ids = list(tables["sequences"]["user_id"])
    rows = []
    for user in range(min(USERS, len(user_ids))):
        scores = users.movies @ users.vectors[user]
        scores[users.seen[user]] = -np.inf
        best = np.argsort(-scores, kind="stable")[:RECOMMENDATIONS]
        history = [titles[users.movie_ids[i]] for i in reversed(users.contexts[user])]
        picks = [
            f"<b>{html.escape(titles[users.movie_ids[i]])} (watched next)</b>"
            if i == users.targets[user]
            else html.escape(titles[users.movie_ids[i]])
            for i in best
        ]
        rows.append(
            f"<tr><td>{html.escape(str(user_ids[user]))}</td>"
            f"<td>{'<br>'.join(html.escape(title) for title in history)}</td>"
            f"<td><ol>{''.join(f'<li>{pick}</li>' for pick in picks)}</ol></td></tr>"
        )
    return (
        "<html><head><meta charset='utf-8'><style>body{font-family:sans-serif}"
        "td{vertical-align:top;padding:6px;border-bottom:1px solid #ddd}</style></head><body>"
        "<h3>MovieLens users: recent history (newest first) and top-10 recommendations</h3>"
        "<table><tr><th>user</th><th>recent history</th><th>recommended</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
