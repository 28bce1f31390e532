"""`python -m sail.serving [OPTIONS]`: serve a model; the same command as `sail serve`.

The InferenceService runs this module (`sail.deploy.inference_service`); `--help` lists every
option. kserve reads sys.argv when it is imported, so it is imported only once the options are
parsed, with none of them left in sys.argv.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import Annotated, Literal

import typer

from model_code.config import PRECISIONS

DEFAULT_MODEL_URI = "models:/sail-embedding@champion"
MiB = 1024 * 1024

Precision = Literal[PRECISIONS]  # type: ignore[valid-type]


def serve(
    model_uri: Annotated[
        str,
        typer.Option(
            help="A saved model folder or an MLflow URI (models:/NAME@ALIAS, runs:/...); a "
            "registry URI is read through $MLFLOW_TRACKING_URI, else a local tracking server "
            "started beside the model server."
        ),
    ] = DEFAULT_MODEL_URI,
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default: $HOST, else 127.0.0.1).")
    ] = None,
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8080,
    max_batch_size: Annotated[
        int, typer.Option(help="Items per forward pass (1 switches batching off).")
    ] = 32,
    max_wait_ms: Annotated[
        float, typer.Option(help="How long a batch may wait for more requests.")
    ] = 5.0,
    max_request_bytes: Annotated[int, typer.Option(help="Largest request body (413).")] = 8 * MiB,
    max_items: Annotated[int, typer.Option(help="Most items per request (400).")] = 256,
    allow_local_paths: Annotated[
        bool, typer.Option(help="Let items name files on the server (default: data: URLs only).")
    ] = False,
    max_queued_items: Annotated[
        int, typer.Option(help="Most items waiting for the model; more get 503.")
    ] = 1024,
    max_queued_cost: Annotated[
        int,
        typer.Option(
            help="Most cost units waiting for the model (an image costs its pixels, a text its "
            "characters: sail.serving.cost); more get 503."
        ),
    ] = 32_000_000,
    deadline_s: Annotated[
        float,
        typer.Option(
            help="Seconds a request may wait for its vectors; then 504, and its items not yet "
            "run are dropped."
        ),
    ] = 30.0,
    device: Annotated[str, typer.Option(help="Torch device.")] = "cpu",
    precision: Annotated[
        Precision,
        typer.Option(
            help="bf16 needs a CPU with AVX512-BF16 or AMX; int8 quantizes the Linear layers "
            "(CPU only): docs/serving.md."
        ),
    ] = "fp32",
    model_name: Annotated[str, typer.Option(help="The name clients address.")] = "sail-embedding",
    model_version: Annotated[
        str | None,
        typer.Option(
            envvar="MODEL_VERSION",
            help="The registered version served, reported in the v2 metadata (default: the "
            "version a models:/NAME/VERSION URI pins).",
        ),
    ] = None,
):
    """Serve a model over HTTP: KServe v1 / v2 and OpenAI embeddings routes, OpenAPI at /docs."""
    from sail.cli import user_errors
    from sail.tracking.server import tracking_service

    sys.argv = sys.argv[:1]  # kserve parses sys.argv when it is imported: hand it none of ours
    from sail.serving.limits import Limits
    from sail.serving.server import serve as serve_model

    registry = model_uri.startswith(("models:/", "runs:/"))
    with user_errors(), tracking_service() if registry else nullcontext():
        serve_model(
            model_uri,
            host=host,
            port=port,
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
            limits=Limits(
                max_request_bytes=max_request_bytes,
                max_items=max_items,
                allow_local_paths=allow_local_paths,
                max_queued_items=max_queued_items,
                max_queued_cost=max_queued_cost,
                deadline_s=deadline_s,
            ),
            device=device,
            precision=precision,
            model_name=model_name,
            model_version=model_version,
        )


def main() -> None:
    app = typer.Typer(add_completion=False)
    app.command()(serve)
    app(prog_name="python -m sail.serving")


if __name__ == "__main__":
    main()
