"""`sail`: embed items, prepare data, train, run the pipeline, serve, query the feature store."""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer

from model_code.config import PRESETS, SIDES
from model_code.training.stages import STAGES
from sail.pipeline.cli import pipeline_app
from sail.serving.__main__ import Precision
from sail.serving.__main__ import serve as serve_command

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

LOCAL_PRESETS = PRESETS[:2]  # `base` needs hub weights and a GPU cluster
LocalPreset = Literal[LOCAL_PRESETS]  # type: ignore[valid-type]
Stage = Literal[STAGES]  # type: ignore[valid-type]
Side = Literal[SIDES]  # type: ignore[valid-type]

app = typer.Typer(help="SAIL-Embedding platform: omni-modal embeddings, trained and served.")
data_app = typer.Typer(help="Prepare the real data sets under SAIL_HOME.")
app.add_typer(data_app, name="data")
model_app = typer.Typer(
    help="Registered versions: list them; promote or roll back alias, endpoint and catalogue."
)
app.add_typer(model_app, name="model")
app.add_typer(pipeline_app, name="pipeline")


Settings = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="KEY=VALUE: replace a setting of the stage config for this run, e.g. lr=5e-5 "
        "(repeatable; VALUE is read as JSON when it is JSON).",
    ),
]


@contextmanager
def user_errors():
    """Turn errors about the user's input into one clear line and exit code 2, not a traceback."""
    try:
        yield
    except (ValueError, LookupError, FileNotFoundError, RuntimeError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs.")] = False):
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")


@app.command()
def embed(
    input: Annotated[Path, typer.Option("--input", "-i", help="JSONL file, one item a line.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the .npy.")],
    preset: Annotated[LocalPreset, typer.Option(help="Model preset (offline weights).")] = "mini",
    model: Annotated[Path | None, typer.Option(help="A saved model folder.")] = None,
    dim: Annotated[int | None, typer.Option(help="A Matryoshka size (default: full).")] = None,
    side: Annotated[Side, typer.Option(help="Embed as target items or as queries.")] = "target",
    batch_size: Annotated[int, typer.Option(help="Items per forward pass.")] = 32,
    skip_bad: Annotated[bool, typer.Option(help="Log and skip bad items.")] = False,
    precision: Annotated[
        Precision, typer.Option(help="bf16 needs AVX512-BF16 or AMX; int8 runs on the CPU.")
    ] = "fp32",
):
    """Embed items into float32 unit vectors, in input order (ids in <output>.ids.txt)."""
    from model_code.embed import Embedder, embed_file

    with user_errors():
        if model:
            embedder = Embedder.from_pretrained(model, precision=precision)
        else:
            embedder = Embedder.from_preset(preset, precision=precision)
        result = embed_file(embedder, input, output, dim, side, batch_size, skip_bad)
    message = f"wrote {result.vectors.shape[0]} x {result.vectors.shape[1]} vectors to {output}"
    if result.skipped:
        message += f" (skipped {len(result.skipped)} bad item(s))"
    typer.echo(message)


@data_app.command("prepare")
def data_prepare(
    limit: Annotated[int | None, typer.Option(help="Cap each data set's records (demos).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild data sets already prepared.")] = False,
):
    """Build every data set (docs/data.md) from its packaged source under SAIL_HOME/data.

    Data sets already prepared with the same --limit are kept unless --force."""
    from model_code.data.prepare import prepare_all

    with user_errors():
        manifests = prepare_all(limit=limit, force=force)
    typer.echo(json.dumps(manifests, indent=2))


@data_app.command("items")
def data_items(
    catalogue: Annotated[str, typer.Argument(help="movielens or openclipart.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file to write.")],
    split: Annotated[str | None, typer.Option(help="openclipart split only.")] = None,
):
    """Write a prepared catalogue as items (JSONL, the item schema) for `sail embed`."""
    from model_code.data.catalogue import catalogue_items
    from model_code.items import write_jsonl

    with user_errors():
        items = catalogue_items(catalogue, split)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(items, output)
    typer.echo(f"wrote {len(items)} items to {output}")


@app.command()
def train(
    stage: Annotated[Stage, typer.Option(help="The training stage.")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, metrics.jsonl, model/.")],
    preset: Annotated[LocalPreset, typer.Option(help="Model preset.")] = "mini",
    steps: Annotated[int | None, typer.Option(help="Override the stage's step count.")] = None,
    init: Annotated[Path | None, typer.Option(help="Start from this exported model.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue a stopped run.")] = None,
    teacher: Annotated[Path | None, typer.Option(help="ID teacher .npz (id2item).")] = None,
    data: Annotated[
        Literal["auto", "real", "synthetic"],
        typer.Option(help="Training data (auto: synthetic for tiny, else real)."),
    ] = "auto",
    set_: Settings = None,
):
    """Train one stage on the DeepSpeed engine (`--preset tiny` alone: generated data)."""
    from model_code.training.run import StageInputs, train_stage
    from sail.overrides import parse_assignments

    synthetic = None if data == "auto" else data == "synthetic"
    with user_errors():
        overrides = parse_assignments(set_ or [])
        result = train_stage(
            preset,
            stage,
            out,
            init=init,
            resume=resume,
            synthetic=synthetic,
            inputs=StageInputs(teacher=teacher),
            **{**overrides, **({"steps": steps} if steps else {})},
        )
    typer.echo(f"trained {stage} for {result.steps} steps in {result.seconds:.0f} s")
    typer.echo(f"model: {result.model_dir}\nmetrics: {out / 'metrics.jsonl'}")


@app.command("eval")
def evaluate(
    model: Annotated[Path, typer.Option(help="An exported model folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Metrics JSON to write.")],
    split: Annotated[Literal["validation", "test"], typer.Option(help="Held-out split.")] = "test",
):
    """Evaluate a model on the held-out split: openclipart text<->image, MovieLens next item."""
    from model_code.evaluation.suite import evaluate_model

    with user_errors():
        metrics = evaluate_model(model, split)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(metrics, indent=2) + "\n")
    typer.echo(json.dumps(metrics, indent=2))


@app.command()
def schedule(
    out: Annotated[Path, typer.Option(help="Run folder (one subfolder per stage).")],
    preset: Annotated[LocalPreset, typer.Option(help="Model preset.")] = "mini",
    steps: Annotated[
        int | None, typer.Option(help="Steps for every stage (default: each config's).")
    ] = None,
):
    """Train the whole schedule on the real data, evaluate each stage and the baselines."""
    from model_code.training.curriculum import run_curriculum
    from model_code.training.stages import STAGES as stages

    with user_errors():
        results = run_curriculum(preset, out, {s: steps for s in stages} if steps else None)
    typer.echo(f"results: {out / 'results.json'} ({len(results['stages'])} stages)")


@app.command()
def report(
    results: Annotated[Path, typer.Option(help="results.json from `sail schedule`.")],
    output: Annotated[Path, typer.Option("--output", "-o")] = Path("docs/results.md"),
):
    """Render the results page (markdown tables) from a schedule's results.json."""
    from model_code.evaluation.report import write_report

    with user_errors():
        typer.echo(f"wrote {write_report(results, output)}")


app.command("serve")(serve_command)


def _why_no_champion() -> str:
    """The registry's account of the champion: why there is none, read from the tracking store
    ($MLFLOW_TRACKING_URI or the local one) without creating it."""
    from sail.pipeline.steps import MODEL_NAME
    from sail.tracking.registry import rejection
    from sail.tracking.store import ENV_URI, connect, local_tracking_uri

    local = local_tracking_uri()
    if not os.environ.get(ENV_URI) and not Path(local.removeprefix("sqlite:///")).is_file():
        return "no tracking store yet: run the pipeline (make run)"
    connect()
    return rejection(MODEL_NAME) or "a champion exists but has not been published here"


@app.command()
def similar(
    item: Annotated[str, typer.Option(help="An item id of the catalogues, e.g. MovieLens 50.")],
    k: Annotated[int, typer.Option(help="How many neighbours.")] = 10,
    version: Annotated[
        str | None, typer.Option(help="A model version online (default: the default one).")
    ] = None,
):
    """The K items of one model version's rows nearest to ITEM (published by the pipeline)."""
    from sail.feature_store.query import NotPublished
    from sail.feature_store.query import similar as nearest

    with user_errors():
        try:
            neighbours = nearest(item, k, version=version)
        except NotPublished as error:
            raise NotPublished(f"{error} ({_why_no_champion()})") from None
    _print_neighbours(neighbours)


@app.command()
def search(
    text: Annotated[str, typer.Option(help="What to look for, e.g. 'a red sports car'.")],
    server: Annotated[
        str, typer.Option(help="The embedding server (make serve).")
    ] = "http://127.0.0.1:8080",
    k: Annotated[int, typer.Option(help="How many items.")] = 10,
    version: Annotated[
        str | None,
        typer.Option(
            help="The model version expected to embed TEXT; refused if the server's differs."
        ),
    ] = None,
):
    """Embed TEXT with the server and search the rows of the model version that embedded it."""
    from sail.feature_store.query import VersionMismatch
    from sail.feature_store.query import search as search_rows
    from sail.serving.client import embed_text

    with user_errors():
        vector, served = embed_text(server, text)
        if version is not None and version != served:
            raise VersionMismatch(
                f"{server} embeds with model version {served}, not {version}: its vectors "
                f"are compared with version {served}'s rows only"
            )
        neighbours = search_rows(vector, served, k)
    typer.echo(f"model version {served}")
    _print_neighbours(neighbours)


def _print_neighbours(neighbours) -> None:
    for rank, neighbour in enumerate(neighbours, 1):
        title = neighbour.title or ""
        typer.echo(f"{rank:>3}  {neighbour.score:.3f}  {neighbour.item_id:<16} {title}")


Cluster = Annotated[
    bool | None,
    typer.Option(
        "--cluster/--no-cluster",
        help="Change the cluster's InferenceService (default: when KUBECONFIG or a pod's "
        "service account names one).",
    ),
]


@model_app.command("list")
def model_list(cluster: Cluster = None):
    """Every registered version: aliases, gate verdict, traffic share, catalogue state."""
    from sail.promotion import versions

    with user_errors():
        rows = versions(cluster=cluster)
    if not rows:
        typer.echo("no registered version yet: run the pipeline (make run)")
        return
    typer.echo(f"{'version':>7}  {'aliases':<20} {'gate':<9} {'traffic':>7}  catalogue")
    for row in rows:
        traffic = "-" if row.traffic is None else f"{row.traffic}%"
        aliases = ", ".join(row.aliases) or "-"
        typer.echo(
            f"{row.version:>7}  {aliases:<20} {row.gate or '-':<9} {traffic:>7}  "
            f"{row.catalogue or '-'}"
        )
    if rows[0].traffic is None:
        typer.echo("(no cluster configured: traffic is what `make serve` serves, the champion)")


@model_app.command("promote")
def model_promote(
    version: Annotated[str, typer.Argument(help="The registered version, e.g. 4.")],
    cluster: Cluster = None,
):
    """Make VERSION the champion, serve it with all traffic, make its rows the default."""
    from sail.promotion import promote
    from sail.tracking.server import tracking_service

    with user_errors(), tracking_service():  # a version never published is read from the registry
        promotion = promote(version, cluster=cluster)
    for line in promotion.lines():
        typer.echo(line)


@model_app.command("rollback")
def model_rollback(
    to: Annotated[
        str | None, typer.Option(help="The version to go back to (default: the one replaced).")
    ] = None,
    cluster: Cluster = None,
):
    """Promote the version the champion replaced (or --to), without recording a replacement."""
    from sail.promotion import rollback
    from sail.tracking.server import tracking_service

    with user_errors(), tracking_service():
        promotion = rollback(to, cluster=cluster)
    for line in promotion.lines():
        typer.echo(line)
