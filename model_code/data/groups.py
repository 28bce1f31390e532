"""Groups of near-duplicate records, which a split or a cross-validation fold never cuts."""

from __future__ import annotations

import hashlib

import pandas as pd


def merged_groups(keys: pd.Series, shared: pd.Series) -> pd.Series:
    """Each record's group: its `keys` value, merged (union-find) with every key of a record with
    the same `shared` value (say, the same caption under two names); a merged group is named by
    its first key in sort order."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    for _, together in keys.groupby(shared):
        first, *others = sorted({root(key) for key in together})
        for other in others:
            parent[other] = first
    return keys.map(root)


def fold_of_group(group: str, folds: int, seed: str) -> int:
    """A group's cross-validation fold in [0, folds), from a seeded hash (independent of its
    split)."""
    digest = hashlib.sha256(f"{seed}:fold:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % folds
