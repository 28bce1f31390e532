"""InfoNCE with in-batch negatives, plus the input checks shared by the other losses."""

import torch
import torch.nn.functional as F
from torch import Tensor


def check_pair(a: Tensor, b: Tensor, names: tuple[str, str] = ("query", "target")) -> None:
    """Raise ValueError unless `a` and `b` are both [B, D] with the same shape."""
    for name, x in zip(names, (a, b), strict=True):
        if x.ndim != 2:
            raise ValueError(f"{name} must be [B, D], got shape {tuple(x.shape)}")
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}"
        )


def check_mask(mask: Tensor, shape: tuple[int, ...], name: str) -> None:
    """Raise ValueError unless `mask` is a bool tensor of the given shape."""
    if mask.dtype != torch.bool or tuple(mask.shape) != shape:
        raise ValueError(
            f"{name} must be a bool tensor of shape {shape}, "
            f"got {mask.dtype} of shape {tuple(mask.shape)}"
        )


def check_temperature(temperature: Tensor | float) -> None:
    """Raise ValueError unless the temperature is a positive float or a one-element tensor."""
    if isinstance(temperature, Tensor):
        if temperature.numel() != 1:
            raise ValueError(f"temperature must be a scalar, got shape {tuple(temperature.shape)}")
    elif temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def info_nce(
    query: Tensor, target: Tensor, temperature: Tensor | float, valid: Tensor | None = None
) -> Tensor:
    """Query -> target InfoNCE over in-batch negatives; target i is the positive of query i.

    `valid` ([B] bool) keeps only the rows that take part: a dropped row is neither a query nor a
    candidate target. With no valid row the loss is a zero that keeps the inputs' grad path.
    """
    check_pair(query, target)
    check_temperature(temperature)
    if valid is not None:
        check_mask(valid, (query.shape[0],), "valid")
        query, target = query[valid], target[valid]
    if query.shape[0] == 0:
        return (query.sum() + target.sum()) * 0.0 + temperature * 0.0
    logits = query @ target.T / temperature
    labels = torch.arange(query.shape[0], device=query.device)
    return F.cross_entropy(logits, labels)


def candidate_info_nce(
    query: Tensor,
    candidates: Tensor,
    positives: Tensor,
    temperature: Tensor | float,
    excluded: Tensor | None = None,
) -> Tensor:
    """InfoNCE of each query against a shared candidate set: `candidates[positives[i]]` is
    query i's positive, every other candidate a negative except those `excluded` ([B, N] bool)
    marks for that query (e.g. items of the user's own history)."""
    if query.ndim != 2 or candidates.ndim != 2 or query.shape[1] != candidates.shape[1]:
        raise ValueError(
            f"query [B, D] and candidates [N, D] must share D, got {tuple(query.shape)} "
            f"and {tuple(candidates.shape)}"
        )
    check_temperature(temperature)
    if positives.shape != (query.shape[0],):
        raise ValueError(f"positives must be [B], got shape {tuple(positives.shape)}")
    logits = query @ candidates.T / temperature
    if excluded is not None:
        check_mask(excluded, tuple(logits.shape), "excluded")
        rows = torch.arange(len(positives), device=logits.device)
        if bool(excluded[rows, positives].any()):
            raise ValueError("a query's positive is among its excluded candidates")
        logits = logits.masked_fill(excluded, float("-inf"))
    return F.cross_entropy(logits, positives)
