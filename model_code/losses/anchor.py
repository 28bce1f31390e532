"""Anchor: keep embeddings where a reference model put them (regularises a shared encoder)."""

import torch.nn.functional as F
from torch import Tensor

from model_code.losses.infonce import check_pair


def anchor_loss(embeddings: Tensor, anchors: Tensor) -> Tensor:
    """Mean cosine distance 1 - cos(e_i, a_i) of each embedding from its anchor vector."""
    check_pair(embeddings, anchors, ("embeddings", "anchors"))
    return (1.0 - F.cosine_similarity(embeddings, anchors, dim=-1)).mean()
