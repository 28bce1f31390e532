"""The whole SAIL schedule: content stages 1-3, the ID teacher, seq2item, id2item, each stage
starting from the previous one, evaluated on the held-out test splits with its baselines."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from model_code.embed import Embedder
from model_code.paths import feature_cache_dir
from model_code.training.run import StageInputs, train_stage
from model_code.training.stages import STAGES, load_stage

logger = logging.getLogger(__name__)
OPENCLIPART_ROWS = {s: s for s in ("content1", "content2", "content3")} | {"id2item": "final"}
MOVIELENS_ROWS = {"content3": "content only", "seq2item": "+ seq2item", "id2item": "+ ID2item"}
MATRYOSHKA_STAGES = ("content3", "id2item")


def run_curriculum(
    preset: str,
    out_dir: Path,
    steps: dict[str, int] | None = None,
    split: str = "test",
) -> dict:
    """Train every stage in order and return (and write to `results.json`) all figures."""
    from model_code.cre.baselines import popularity_scores
    from model_code.cre.teacher import TeacherConfig, train_catalogue_teacher
    from model_code.data.movielens import load_movielens
    from model_code.data.openclipart import load_openclipart
    from model_code.evaluation import suite
    from model_code.evaluation.baselines import MINILM, minilm_encoder, sentence_encoder_next_item

    out_dir = Path(out_dir)
    steps = steps or {}
    pairs, tables = load_openclipart(), load_movielens()
    test_pairs = pairs[pairs["split"] == split]
    results: dict = {
        "preset": preset,
        "split": split,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "stages": {},
        "openclipart": {},
        "movielens": {},
    }
    base = Embedder.from_preset(preset)
    base.model.cache_tower_features(feature_cache_dir())
    train_pairs = pairs[pairs["split"] == "train"]
    results["openclipart"]["frozen encoders + ridge"] = suite.frozen_ridge_baseline(
        base, train_pairs, test_pairs
    )
    alpha = load_stage(STAGES[0]).ridge_alpha  # the vision shortcut's, chosen on validation
    results["openclipart"][f"frozen encoders + ridge (alpha {alpha:g})"] = (
        suite.frozen_ridge_baseline(base, train_pairs, test_pairs, alpha=alpha)
    )
    results["movielens"][MINILM] = sentence_encoder_next_item(minilm_encoder(), tables, split)
    item_ids = list(tables["items"]["item_id"])
    results["movielens"]["popularity"] = suite.score_baseline(
        popularity_scores(tables["interactions"], item_ids), item_ids, tables, split
    )
    began = time.time()
    teacher = train_catalogue_teacher(tables, TeacherConfig())
    teacher_path = out_dir / "teacher.npz"
    teacher_path.parent.mkdir(parents=True, exist_ok=True)
    teacher.save(teacher_path)
    results["stages"]["teacher"] = {"seconds": round(time.time() - began, 1)}
    user_rows = [teacher.user_index[u] for u in tables["sequences"]["user_id"]]
    results["movielens"]["ID teacher (BPR)"] = suite.score_baseline(
        teacher.score_matrix()[user_rows], list(teacher.item_ids), tables, split
    )
    init = None
    for stage in STAGES:
        result = train_stage(
            preset,
            stage,
            out_dir / stage,
            steps=steps.get(stage),
            init=init,
            synthetic=False,
            inputs=StageInputs(teacher=teacher_path),
        )
        init = result.model_dir
        results["stages"][stage] = {
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "final_loss": round(result.final_loss, 4),
        }
        embedder = Embedder.from_pretrained(result.model_dir)
        embedder.model.cache_tower_features(feature_cache_dir())
        # Every Matryoshka size for the last content model and the final one; full size else.
        dims = (None, *embedder.dims[:-1]) if stage in MATRYOSHKA_STAGES else (None,)
        if stage in OPENCLIPART_ROWS:
            reports = suite.openclipart_retrieval(embedder, test_pairs, dims=dims)
            results["openclipart"].update(_rows(OPENCLIPART_ROWS[stage], reports, dims))
        if stage in MOVIELENS_ROWS:
            reports = suite.movielens_next_item(embedder, tables, split, dims=dims)
            results["movielens"].update(_rows(MOVIELENS_ROWS[stage], reports, dims))
        _write(results, out_dir)
    results["semantic_ids"] = semantic_id_report(embedder, tables)  # the final stage's model
    _write(results, out_dir)
    return results


def _rows(label: str, reports, dims) -> dict[str, dict]:
    """Table rows: `label` at full size, `label · 128-d` at each smaller Matryoshka size."""
    if dims == (None,):
        return {label: reports}
    return {label if dim is None else f"{label} · {dim}-d": reports[dim] for dim in dims}


def semantic_id_report(embedder: Embedder, tables, levels: int = 3, size: int = 32) -> dict:
    """Residual k-means codes of the final model's movie embeddings."""
    from model_code.evaluation.suite import movie_vectors
    from model_code.semantic_ids import fit_residual_kmeans, report

    _, vectors = movie_vectors(embedder, tables["items"])
    codebooks = fit_residual_kmeans(vectors.astype(np.float64), levels=levels, codebook_size=size)
    return {"levels": levels, "codebook_size": size, **report(codebooks, vectors)}


def _write(results: dict, out_dir: Path) -> None:
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
