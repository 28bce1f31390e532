"""Small timing helpers: percentiles, throughput, ratios, and ABBA interleaving of variants."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Measurement:
    """`items` processed in `seconds` of wall time; `latencies` (seconds) per request or batch;
    `cpu_seconds`: CPU time the processes named spent meanwhile (e.g. client, server)."""

    items: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def add(self, other: Measurement) -> None:
        self.items += other.items
        self.seconds += other.seconds
        self.latencies.extend(other.latencies)
        for name, seconds in other.cpu_seconds.items():
            self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + seconds

    def summary(self) -> dict[str, float | int]:
        """items, seconds, items_per_s, requests, p50_ms, p99_ms, mean_ms, and `<name>_cores`
        (CPU seconds over wall seconds) per process in cpu_seconds (JSON-ready)."""
        cores = {
            f"{name}_cores": round(cpu / self.seconds, 2) if self.seconds > 0 else None
            for name, cpu in self.cpu_seconds.items()
        }
        return cores | {
            "items": self.items,
            "seconds": round(self.seconds, 4),
            "items_per_s": round(throughput(self.items, self.seconds), 3),
            "requests": len(self.latencies),
            "p50_ms": round(percentile(self.latencies, 50) * 1000, 3),
            "p99_ms": round(percentile(self.latencies, 99) * 1000, 3),
            "mean_ms": round(float(np.mean(self.latencies)) * 1000, 3) if self.latencies else 0.0,
        }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (linear interpolation between samples); NaN for no samples."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else math.nan


def throughput(items: float, seconds: float) -> float:
    """Items per second; NaN when no time was measured."""
    return items / seconds if seconds > 0 else math.nan


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator when both are finite and the denominator is positive, else None."""
    if numerator is None or denominator is None:
        return None
    if not (math.isfinite(numerator) and math.isfinite(denominator)) or denominator <= 0:
        return None
    return round(numerator / denominator, 4)


def abba(names: Sequence[str], rounds: int) -> list[str]:
    """The order to run variants in: A B, then B A, then A B ... (`rounds` passes).

    Alternating the order cancels a linear drift (a neighbour job, thermal state) between
    variants instead of charging it to whichever always runs second.
    """
    order: list[str] = []
    for index in range(rounds):
        order.extend(names if index % 2 == 0 else list(reversed(names)))
    return order


def split(total: int, parts: int) -> list[int]:
    """`total` in `parts` near-equal non-empty shares (fewer parts when total is smaller)."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def interleave(
    variants: dict[str, Callable[[int], Measurement]], total: int | dict[str, int], rounds: int
) -> dict[str, Measurement]:
    """Run every variant on its `total` units (one count for all, or one per variant) split
    over `rounds` passes in ABBA order; the measurements of each variant's passes are merged."""
    totals = total if isinstance(total, dict) else dict.fromkeys(variants, total)
    shares = {name: split(totals[name], rounds) for name in variants}
    merged = {name: Measurement() for name in variants}
    passes = dict.fromkeys(variants, 0)
    for name in abba(list(variants), rounds):
        if passes[name] < len(shares[name]):
            merged[name].add(variants[name](shares[name][passes[name]]))
        passes[name] += 1
    return merged
