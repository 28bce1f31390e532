"""Evaluation library: metrics from the report and retrieval evaluation over embeddings."""

from model_code.evaluation.metrics import (
    auc,
    bijective_alignment_accuracy,
    cluster_nmi,
    hit_rate_at_k,
    hit_rate_from_ranks,
    kendall_tau,
    mrr_from_ranks,
    ndcg_at_k,
    ndcg_from_ranks,
    nmi,
    recall_at_k,
    separation,
    target_positions,
    top_k_overlap,
)
from model_code.evaluation.retrieval import (
    cross_modal_report,
    next_item_report,
    rank_candidates,
    retrieval_report,
    score_ranking_report,
)

__all__ = [
    "auc",
    "bijective_alignment_accuracy",
    "cluster_nmi",
    "cross_modal_report",
    "hit_rate_at_k",
    "hit_rate_from_ranks",
    "kendall_tau",
    "mrr_from_ranks",
    "ndcg_at_k",
    "ndcg_from_ranks",
    "next_item_report",
    "nmi",
    "rank_candidates",
    "recall_at_k",
    "retrieval_report",
    "score_ranking_report",
    "separation",
    "target_positions",
    "top_k_overlap",
]
