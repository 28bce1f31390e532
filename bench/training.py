"""Training suite: samples/s and peak memory per stage, the DeepSpeed engine against a plain
PyTorch loop on the same model, batches and parameter groups.

For each stage the batches are prepared once here, as `train_stage` prepares them (data,
mined interest sequences, the BPR teacher, mined hard negatives; balancing is skipped: both
variants use the stage's configured weights), and pickled. Each variant then runs in its own
process (`bench.training_worker`), so its RSS high-water mark (`ru_maxrss`) is its own. The frozen
vision tower's feature cache is filled for every drawing the measured steps will see first, so
neither variant pays for (or profits from) the other's cache misses. Variant order alternates
per stage (ABBA). The plain loop also times each part of its steps (`bench.step_profile`).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.timing import abba, ratio

logger = logging.getLogger(__name__)

STAGES = ("content1", "content2", "content3", "seq2item", "id2item")
SMOKE_STAGES = ("content2",)
ENGINES = ("deepspeed", "plain")
FULL_STEPS = (2, 6)  # (warm-up, measured)
SMOKE_STEPS = (1, 5)  # enough steps for idle parameters' updates to show in the losses
NO_CHECKPOINT = 10**9


def prepare_stage(
    stage_name: str, preset: str, synthetic: bool, steps: int, cache_dir: Path, cache: dict
) -> tuple:
    """(stage, sources, teacher_dim) for `steps` steps, built as `train_stage` builds them; the
    tower-feature cache is filled for the drawings those steps draw. `cache` carries mined
    interest sequences from one stage to the next (same starting model)."""
    import torch

    from model_code.embed import Embedder
    from model_code.factory import create_model
    from model_code.training.run import (
        attach_anchors,
        attach_negatives,
        attach_teacher,
        load_training_data,
        mine_interest_sequences,
        mine_negatives,
    )
    from model_code.training.sources import build_sources
    from model_code.training.stages import load_stage

    stage = load_stage(stage_name, steps=steps, checkpoint_every=NO_CHECKPOINT)
    torch.manual_seed(stage.seed)
    model, processor = create_model(preset)
    model.cache_tower_features(cache_dir)
    embedder = Embedder(model, processor)
    data = load_training_data(stage, synthetic)
    used = {d.source for d in stage.datasets}
    if "movielens-sequences" in used:
        if "sequences" not in cache:
            cache["sequences"] = mine_interest_sequences(embedder, data, stage.window)
        data.sequences = cache["sequences"]
    if "movielens-id2item" in used:
        attach_teacher(data, None, stage.seed)
    sources = build_sources(stage, data)
    attach_anchors(embedder, sources)
    if stage.hard_negatives:
        attach_negatives(sources, mine_negatives(embedder, sources, stage))
    warm_feature_cache(embedder, stage, sources)
    teacher_dim = None if data.teacher_vectors is None else data.teacher_vectors.shape[1]
    return stage, sources, teacher_dim


def warm_feature_cache(embedder, stage, sources) -> int:
    """Replay the trainer's draws (same seed) and embed every drawing they contain once."""
    from model_code.data.catalogue import drawing_of
    from model_code.training.trainer import StochasticSpecializer

    specializer, rng = StochasticSpecializer(stage), random.Random(stage.seed)
    drawings = {}
    for _ in range(stage.steps):
        batch = sources[specializer.draw(rng)].batch(rng, stage.batch_size)
        for item in _batch_items(batch):
            if item.visual_refs:
                drawings.setdefault(item.image or item.id, drawing_of(item))
    if drawings:
        embedder.embed(list(drawings.values()), progress=False)
    return len(drawings)


def _batch_items(batch) -> list:
    items = []
    for pair in getattr(batch, "pairs", []):
        items += [pair.query, pair.target]
    for row in getattr(batch, "negatives", []):
        items += row
    return items


def run_worker(engine: str, prepared: Path, preset: str, warmup: int, threads: int, cache_dir):
    """One variant in a fresh process; returns its JSON report."""
    out = prepared.with_suffix(f".{engine}.json")
    command = [
        sys.executable,
        "-m",
        "bench.training_worker",
        str(prepared),
        str(out),
        "--engine",
        engine,
        "--preset",
        preset,
        "--warmup",
        str(warmup),
        "--threads",
        str(threads),
        "--cache-dir",
        str(cache_dir),
    ]
    # The worker is a rank of its own: a rendezvous inherited from this process (which may hold
    # a process group on that port, e.g. in a test session) must not leak into it.
    inherited = {"MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE"}
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    env["OMP_NUM_THREADS"] = str(threads)
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    if result.returncode != 0 or not out.is_file():
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise RuntimeError(f"{engine} worker failed (exit {result.returncode}):\n{tail}")
    return json.loads(out.read_text())


def compare(rows: list[dict]) -> list[dict]:
    """Per stage: DeepSpeed over plain for samples/s and peak RSS, and how far their losses
    drift apart (same batches and initial weights: near zero when both do the same updates)."""
    out = []
    for stage in dict.fromkeys(row["stage"] for row in rows):
        pair = {row["engine"]: row for row in rows if row["stage"] == stage}
        if set(pair) != set(ENGINES):
            continue
        ds, plain = pair["deepspeed"], pair["plain"]
        diffs = [abs(a - b) for a, b in zip(ds["losses"], plain["losses"], strict=False)]
        out.append(
            {
                "stage": stage,
                "samples_per_s_ds_over_plain": ratio(ds["samples_per_s"], plain["samples_per_s"]),
                "peak_rss_ds_over_plain": ratio(ds["peak_rss_mb"], plain["peak_rss_mb"]),
                "max_loss_difference": round(max(diffs), 6) if diffs else None,
            }
        )
    return out


def run(smoke: bool = False, threads: int | None = None, stages=None) -> dict:
    """The training suite's figures (see the module doc)."""
    preset, synthetic = ("tiny", True) if smoke else ("mini", False)
    stages = tuple(stages or (SMOKE_STAGES if smoke else STAGES))
    warmup, measured = SMOKE_STEPS if smoke else FULL_STEPS
    threads = threads or os.cpu_count() or 1
    rows, cache = [], {}
    with tempfile.TemporaryDirectory(prefix="sail-bench-training-") as tmp:
        if smoke:
            cache_dir = Path(tmp) / "tower-features"
        else:
            from model_code.paths import feature_cache_dir

            cache_dir = feature_cache_dir()
        for index, stage_name in enumerate(stages):
            prepared = Path(tmp) / f"{stage_name}.pkl"
            inputs = prepare_stage(
                stage_name, preset, synthetic, warmup + measured, cache_dir, cache
            )
            prepared.write_bytes(pickle.dumps(inputs))
            order = abba(list(ENGINES), index + 1)[-len(ENGINES) :]
            for engine in order:
                logger.info("training %s with %s", stage_name, engine)
                report = run_worker(engine, prepared, preset, warmup, threads, cache_dir)
                rows.append({"stage": stage_name, "engine": engine, **report})
    return {
        "preset": preset,
        "data": "synthetic" if synthetic else "prepared (SAIL_HOME)",
        "warmup_steps": warmup,
        "measured_steps": measured,
        "threads": threads,
        "rows": rows,
        "ratios": compare(rows),
        "profiles": {row["stage"]: row["profile"] for row in rows if "profile" in row},
    }
