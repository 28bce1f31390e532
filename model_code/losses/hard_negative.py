"""InfoNCE whose denominator also holds per-query mined hard negatives."""

import torch
import torch.nn.functional as F
from torch import Tensor

from model_code.losses.infonce import check_mask, check_pair, check_temperature


def hard_negative_info_nce(
    query: Tensor,
    target: Tensor,
    negatives: Tensor,
    temperature: Tensor | float,
    negative_mask: Tensor | None = None,
) -> Tensor:
    """Cross-entropy on target i against all in-batch targets and query i's K hard negatives.

    `negatives` is [B, K, D]; `negative_mask` ([B, K] bool, True = keep) drops negatives from
    the denominator.
    """
    check_pair(query, target)
    check_temperature(temperature)
    batch, dim = query.shape
    if negatives.ndim != 3 or negatives.shape[0] != batch or negatives.shape[2] != dim:
        raise ValueError(
            f"negatives must be [B={batch}, K, D={dim}], got shape {tuple(negatives.shape)}"
        )
    in_batch = query @ target.T / temperature
    hard = torch.einsum("bd,bkd->bk", query, negatives) / temperature
    if negative_mask is not None:
        check_mask(negative_mask, tuple(negatives.shape[:2]), "negative_mask")
        hard = hard.masked_fill(~negative_mask, float("-inf"))
    logits = torch.cat([in_batch, hard], dim=1)
    labels = torch.arange(batch, device=query.device)
    return F.cross_entropy(logits, labels)
