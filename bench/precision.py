"""Precision suite: the model's speed and retrieval quality in fp32, bf16 and int8 on this CPU.

- Speed: in-process `Embedder.embed` at batch 32 on the serving suite's items (text, and
  text+image), the precisions interleaved in one ABBA sequence after a warm-up; items/s and the
  ratio to fp32.
- Quality: the evaluation suite on the validation split (openclipart text<->image R@1 and R@10,
  MovieLens HR@10) per precision, and the change against fp32. It needs the data prepared
  (`make data`); smoke mode skips it (the tiny model has nothing trained to lose).

bf16 is left out on a CPU that does not compute in it natively (`model_code.precision`).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import torch

from bench.serving import BATCH, batched, resolve_model
from bench.serving_items import image_items, text_items
from bench.timing import interleave, ratio, throughput
from model_code.config import ConfigError

logger = logging.getLogger(__name__)

FULL_COUNT, SMOKE_COUNT = {"text": 512, "text+image": 128}, {"text": 64, "text+image": 32}
QUALITY = (
    "openclipart/t2i_recall@1",
    "openclipart/t2i_recall@10",
    "openclipart/i2t_recall@1",
    "openclipart/i2t_recall@10",
    "movielens/hr@10",
)


def precisions() -> list[str]:
    """fp32 and int8, and bf16 where this CPU computes in it."""
    from model_code.precision import check_bf16

    try:
        check_bf16()
    except ConfigError as error:
        logger.info("bf16 left out: %s", error)
        return ["fp32", "int8"]
    return ["fp32", "bf16", "int8"]


def run(model_uri: str | None = None, smoke: bool = False, threads: int | None = None) -> dict:
    """The precision suite's figures (see the module doc)."""
    from model_code.embed import Embedder
    from model_code.paths import feature_cache_dir

    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    counts, rounds = (SMOKE_COUNT, 1) if smoke else (FULL_COUNT, 2)
    pools = {"text": text_items(smoke), "text+image": image_items(smoke)}
    names = precisions()
    with tempfile.TemporaryDirectory(prefix="sail-bench-precision-") as tmp:
        model_dir, model_source = resolve_model(model_uri, smoke, Path(tmp))
        embedders = {name: Embedder.from_pretrained(model_dir, precision=name) for name in names}
        for embedder in embedders.values():
            embedder.model.cache_tower_features(feature_cache_dir())
        speed = {}
        for kind, (items, _) in pools.items():
            variants = {
                name: batched(_embed_with(embedder), items, BATCH)
                for name, embedder in embedders.items()
            }
            for variant in variants.values():
                variant(BATCH)  # warm-up
            measured = interleave(variants, counts[kind], rounds)
            speed[kind] = {
                name: {
                    "items_per_s": round(throughput(m.items, m.seconds), 1),
                    "vs_fp32": ratio(
                        throughput(m.items, m.seconds),
                        throughput(measured["fp32"].items, measured["fp32"].seconds),
                    ),
                }
                for name, m in measured.items()
            }
        quality = {"status": "skipped (smoke)"} if smoke else _quality(model_dir, names)
    return {
        "model": model_source,
        "threads": threads,
        "precisions": names,
        "items": {kind: source for kind, (_, source) in pools.items()},
        "counts": counts,
        "rounds": rounds,
        "speed": speed,
        "quality": quality,
    }


def _embed_with(embedder):
    def embed(batch: list) -> None:
        embedder.embed(batch, batch_size=len(batch), progress=False)

    return embed


def _quality(model_dir: Path, names: list[str]) -> dict:
    """Validation figures per precision and their change against fp32."""
    from model_code.data.storage import DataNotPrepared
    from model_code.evaluation.suite import evaluate_splits

    figures = {}
    try:
        for name in names:
            split = evaluate_splits(model_dir, ("validation",), precision=name)["validation"]
            figures[name] = {metric: round(float(split[metric]), 4) for metric in QUALITY}
    except DataNotPrepared as error:
        return {"status": "not measured", "reason": f"{error}; run `make data`"}
    for name in names:
        figures[name]["change"] = {
            metric: round(figures[name][metric] - figures["fp32"][metric], 4) for metric in QUALITY
        }
    return {"status": "ok", "split": "validation", "figures": figures}
