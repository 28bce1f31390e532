"""`sail`: embed items, prepare data (and, as the platform grows, train, run and serve)."""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from model_code.config import PRESETS

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

LOCAL_PRESETS = PRESETS[:2]  # `base` needs hub weights and a GPU cluster

app = typer.Typer(help="SAIL-Embedding platform: omni-modal embeddings, trained and served.")
data_app = typer.Typer(help="Prepare the real data sets under SAIL_HOME.")
app.add_typer(data_app, name="data")


@contextmanager
def user_errors():
    """Turn errors about the user's input into one clear line and exit code 2, not a traceback."""
    try:
        yield
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs.")] = False):
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")


@app.command()
def embed(
    input: Annotated[Path, typer.Option("--input", "-i", help="JSONL file, one item a line.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the .npy.")],
    preset: Annotated[str, typer.Option(help=f"One of {', '.join(LOCAL_PRESETS)}.")] = "mini",
    model: Annotated[Path | None, typer.Option(help="A saved model folder.")] = None,
    dim: Annotated[int | None, typer.Option(help="A Matryoshka size (default: full).")] = None,
    side: Annotated[str, typer.Option(help="Embed as 'target' items or 'query'.")] = "target",
    batch_size: Annotated[int, typer.Option(help="Items per forward pass.")] = 32,
    skip_bad: Annotated[bool, typer.Option(help="Log and skip bad items.")] = False,
):
    """Embed items into float32 unit vectors, in input order (ids in <output>.ids.txt)."""
    from model_code.embed import Embedder, embed_file

    if model is None and preset not in LOCAL_PRESETS:
        raise typer.BadParameter(f"choose one of {list(LOCAL_PRESETS)}", param_hint="--preset")
    with user_errors():
        embedder = Embedder.from_pretrained(model) if model else Embedder.from_preset(preset)
        result = embed_file(embedder, input, output, dim, side, batch_size, skip_bad)
    message = f"wrote {result.vectors.shape[0]} x {result.vectors.shape[1]} vectors to {output}"
    if result.skipped:
        message += f" (skipped {len(result.skipped)} bad item(s))"
    typer.echo(message)


@data_app.command("prepare")
def data_prepare(
    limit: Annotated[int | None, typer.Option(help="Cap openclipart pairs (demos).")] = None,
    workers: Annotated[int, typer.Option(help="Processes rendering SVGs.")] = 2,
):
    """Build openclipart image-text pairs and MovieLens-100K under SAIL_HOME/data."""
    from model_code.data.prepare import prepare_all

    with user_errors():
        manifests = prepare_all(limit=limit, workers=workers)
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
