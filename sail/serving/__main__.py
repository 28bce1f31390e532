"""`python -m sail.serving --model-uri PATH_OR_URI [--host H] [--port P] ...`: serve the model.

--model-uri          a saved model folder or an MLflow URI (default models:/sail-embedding@champion)
--host               interface to bind (default: $HOST, else 127.0.0.1)
--port               HTTP port (default 8080)
--max-batch-size     items per forward pass (default 32; 1 switches batching off)
--max-wait-ms        how long a batch waits for more requests (default 5)
--max-request-bytes  largest request body (default 8 MiB)
--max-items          most items per request (default 256)
--allow-local-paths  let items name files on the server (default: data: URLs only)
--max-queued-items   most items waiting for the model; more get 503 (default 1024)
--max-queued-cost    most cost units waiting for the model (an image costs its pixels, text its
                     characters; see sail.serving.cost); more get 503 (default 32,000,000)
--deadline-s         seconds a request may wait for its vectors; then 504, and its items not yet
                     run are dropped (default 30)
--device             torch device (default cpu)
--precision          fp32 (default), bf16 (CPUs with AVX512-BF16 or AMX) or int8 (Linear layers
                     quantized; CPU): model_code.precision, docs/serving.md
--model-version      the registered version served, reported in the v2 metadata (default:
                     $MODEL_VERSION, else the version a models:/NAME/VERSION URI pins)
"""

from __future__ import annotations

import argparse
import os
import sys

from model_code.precision import PRECISIONS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sail.serving",
        description="Serve the embedding model (KServe v1/v2 and OpenAI routes).",
    )
    parser.add_argument("--model-uri", default="models:/sail-embedding@champion")
    parser.add_argument("--host", default=None, help="default: $HOST, else 127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-request-bytes", type=int, default=8 * 1024 * 1024)
    parser.add_argument("--max-items", type=int, default=256)
    parser.add_argument("--allow-local-paths", action="store_true")
    parser.add_argument("--max-queued-items", type=int, default=1024)
    parser.add_argument("--max-queued-cost", type=int, default=32_000_000)
    parser.add_argument("--deadline-s", type=float, default=30.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    parser.add_argument("--model-name", default="sail-embedding")
    parser.add_argument("--model-version", default=os.environ.get("MODEL_VERSION") or None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # kserve parses sys.argv when it is imported; hand it none of ours.
    sys.argv = sys.argv[:1]
    from sail.serving.limits import Limits
    from sail.serving.server import serve

    serve(
        args.model_uri,
        host=args.host,
        port=args.port,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        limits=Limits(
            max_request_bytes=args.max_request_bytes,
            max_items=args.max_items,
            allow_local_paths=args.allow_local_paths,
            max_queued_items=args.max_queued_items,
            max_queued_cost=args.max_queued_cost,
            deadline_s=args.deadline_s,
        ),
        device=args.device,
        precision=args.precision,
        model_name=args.model_name,
        model_version=args.model_version,
    )


if __name__ == "__main__":
    main()
