"""The collaborative side of CRE: the BPR ID teacher, baselines and user interest mining."""

from model_code.cre.baselines import popularity_scores
from model_code.cre.interest_mining import (
    EvaluationContext,
    InterestSequence,
    build_sequences,
    co_engagement_similarity,
    content_similarity,
    deduplicate,
    evaluation_contexts,
    mine_sequences,
    train_histories,
)
from model_code.cre.teacher import IdTeacher, TeacherConfig, train_bpr, train_positive_pairs

__all__ = [
    "EvaluationContext",
    "IdTeacher",
    "InterestSequence",
    "TeacherConfig",
    "build_sequences",
    "co_engagement_similarity",
    "content_similarity",
    "deduplicate",
    "evaluation_contexts",
    "mine_sequences",
    "popularity_scores",
    "train_bpr",
    "train_histories",
    "train_positive_pairs",
]
