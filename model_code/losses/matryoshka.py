"""Matryoshka wrapper: a pairwise loss summed over re-normalised prefix dimensions."""

from collections.abc import Callable, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor


def check_dims(dims: Sequence[int], full_dim: int) -> None:
    """Raise ValueError unless `dims` is non-empty, positive, strictly ascending and <= full_dim."""
    if len(dims) == 0:
        raise ValueError("matryoshka dims must not be empty")
    if any(not isinstance(d, int) or d <= 0 for d in dims):
        raise ValueError(f"matryoshka dims must be positive integers, got {list(dims)}")
    if any(a >= b for a, b in zip(dims, dims[1:], strict=False)):
        raise ValueError(f"matryoshka dims must be strictly ascending, got {list(dims)}")
    if dims[-1] > full_dim:
        raise ValueError(f"matryoshka dim {dims[-1]} exceeds the embedding dim {full_dim}")


def matryoshka(
    loss_fn: Callable[..., Tensor],
    query: Tensor,
    target: Tensor,
    dims: Sequence[int],
    weights: Sequence[float] | None = None,
    **kw: Any,
) -> Tensor:
    """sum_k weights[k] * loss_fn(normalise(query[:, :d_k]), normalise(target[:, :d_k]), **kw).

    `weights` default to 1 each; `kw` (temperature, valid, ...) go to every call unchanged.
    """
    if query.ndim != 2 or target.ndim != 2 or query.shape[-1] != target.shape[-1]:
        raise ValueError(
            f"query and target must be [B, D] with the same D, "
            f"got {tuple(query.shape)} and {tuple(target.shape)}"
        )
    check_dims(dims, query.shape[-1])
    if weights is None:
        weights = [1.0] * len(dims)
    elif len(weights) != len(dims):
        raise ValueError(f"got {len(weights)} matryoshka weights for {len(dims)} dims")
    total = query.new_zeros(())
    for d, w in zip(dims, weights, strict=True):
        q = F.normalize(query[:, :d], dim=-1)
        t = F.normalize(target[:, :d], dim=-1)
        total = total + w * loss_fn(q, t, **kw)
    return total
