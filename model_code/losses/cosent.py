"""CoSENT: a ranking loss for pairs with graded relevance scores."""

import torch
import torch.nn.functional as F
from torch import Tensor

from model_code.losses.infonce import check_pair


def cosent(a: Tensor, b: Tensor, scores: Tensor, scale: float = 20.0) -> Tensor:
    """log(1 + sum_{s_i > s_j} exp(scale * (cos_j - cos_i))), with cos_i = cos(a_i, b_i).

    `a`, `b` need not be normalised; `scores` is [B]. With no ordered pair the loss is exactly
    zero and keeps the inputs' grad path (log(1 + 0), unordered pairs masked to -inf).
    """
    check_pair(a, b, ("a", "b"))
    if scores.shape != (a.shape[0],):
        raise ValueError(f"scores must be [{a.shape[0]}], got shape {tuple(scores.shape)}")
    cos = F.cosine_similarity(a, b, dim=-1)
    diff = scale * (cos[None, :] - cos[:, None])  # [i, j] = scale * (cos_j - cos_i)
    ordered = scores[:, None] > scores[None, :]
    terms = torch.cat([cos.new_zeros(1), diff.masked_fill(~ordered, float("-inf")).flatten()])
    return torch.logsumexp(terms, dim=0)
