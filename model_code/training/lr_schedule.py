"""Learning-rate schedule: linear warm-up, then cosine decay from the peak to a floor."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total: int, warmup: int, peak: float, floor: float) -> float:
    """The learning rate at `step` (0-based) of `total` steps."""
    if warmup and step < warmup:
        return peak * (step + 1) / warmup
    span = max(1, total - warmup - 1)
    progress = min(1.0, (step - warmup) / span)
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * progress))
