"""Semantic IDs: embeddings discretised by residual k-means into one code per level.

Level l's codebook is k-means fitted on the residuals left after levels 0..l-1, so a code prefix
is a coarse ID and each further level refines it. A codebook never has more entries than there
are distinct residuals to cluster: a larger `codebook_size` is clamped with a warning.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans

KMEANS_N_INIT = 3


@dataclass(frozen=True)
class ResidualCodebooks:
    """One [k_l, d] float64 codebook per level."""

    codebooks: list[np.ndarray]

    @property
    def levels(self) -> int:
        return len(self.codebooks)

    @property
    def dim(self) -> int:
        return self.codebooks[0].shape[1]

    def save(self, path: str | Path) -> None:
        """Write the codebooks to an .npz file (keys level_0, level_1, ...)."""
        np.savez(path, **{f"level_{i}": c for i, c in enumerate(self.codebooks)})

    @classmethod
    def load(cls, path: str | Path) -> ResidualCodebooks:
        """Read codebooks written by `save`."""
        with np.load(path, allow_pickle=False) as data:
            return cls([data[f"level_{i}"] for i in range(len(data.files))])


def _matrix(x: np.ndarray, dim: int | None = None) -> np.ndarray:
    """`x` as a finite, non-empty float64 [n, d] array (d == `dim` when given)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0 or dim not in (None, x.shape[1]):
        raise ValueError(f"embeddings must be a non-empty [n, {dim or 'd'}] array, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings hold non-finite values")
    return x


def _fit_level(residuals: np.ndarray, codebook_size: int, seed: int) -> np.ndarray:
    """A k-means codebook for `residuals`, clamped to the number of distinct rows."""
    distinct = len(np.unique(residuals, axis=0))
    if codebook_size > distinct:
        warnings.warn(
            f"codebook_size {codebook_size} > {distinct} distinct residuals; clamped to {distinct}",
            stacklevel=3,
        )
    kmeans = KMeans(
        n_clusters=min(codebook_size, distinct), n_init=KMEANS_N_INIT, random_state=seed
    )
    return kmeans.fit(residuals).cluster_centers_


def _nearest(residuals: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Index of the nearest codeword (squared L2) for each residual."""
    distances = (codebook**2).sum(axis=1)[None, :] - 2.0 * residuals @ codebook.T
    return np.argmin(distances, axis=1)


def fit_residual_kmeans(
    embeddings: np.ndarray, levels: int = 3, codebook_size: int = 64, seed: int = 0
) -> ResidualCodebooks:
    """Fit `levels` residual k-means codebooks of (at most) `codebook_size` entries each."""
    if levels < 1 or codebook_size < 1:
        raise ValueError(f"levels and codebook_size must be >= 1, got {levels}, {codebook_size}")
    residuals = _matrix(embeddings)
    codebooks = []
    for _ in range(levels):
        codebook = _fit_level(residuals, codebook_size, seed)
        residuals = residuals - codebook[_nearest(residuals, codebook)]
        codebooks.append(codebook)
    return ResidualCodebooks(codebooks)


def encode(codebooks: ResidualCodebooks, embeddings: np.ndarray) -> np.ndarray:
    """Codes [n, levels] (int64): the nearest codeword to the running residual at each level."""
    residuals = _matrix(embeddings, codebooks.dim)
    codes = []
    for codebook in codebooks.codebooks:
        code = _nearest(residuals, codebook)
        residuals = residuals - codebook[code]
        codes.append(code)
    return np.stack(codes, axis=1).astype(np.int64)


def decode(codebooks: ResidualCodebooks, codes: np.ndarray) -> np.ndarray:
    """Reconstructions [n, d]: the sum of the coded codewords; `codes` may hold a level prefix."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or not 1 <= codes.shape[1] <= codebooks.levels:
        raise ValueError(f"codes must be [n, 1..{codebooks.levels}], got shape {codes.shape}")
    reconstruction = np.zeros((codes.shape[0], codebooks.dim))
    for level, codebook in enumerate(codebooks.codebooks[: codes.shape[1]]):
        column = codes[:, level]
        if ((column < 0) | (column >= len(codebook))).any():
            raise ValueError(f"level {level} codes must lie in [0, {len(codebook)})")
        reconstruction += codebook[column]
    return reconstruction


def report(codebooks: ResidualCodebooks, embeddings: np.ndarray) -> dict:
    """Quality of the Semantic IDs of `embeddings`, as plain Python values for logging.

    reconstruction_mse (all levels), relative_error_per_level (||x - x_hat||^2 / ||x||^2 after each
    level), collision_rate (fraction of items sharing their full code with another item),
    unique_codes, and codebook_usage (fraction of each level's codewords used).
    """
    x = _matrix(embeddings, codebooks.dim)
    codes = encode(codebooks, x)
    energy = max(float((x**2).sum()), 1e-12)
    relative = [
        float(((x - decode(codebooks, codes[:, : level + 1])) ** 2).sum() / energy)
        for level in range(codebooks.levels)
    ]
    _, counts = np.unique(codes, axis=0, return_counts=True)
    return {
        "reconstruction_mse": float(((x - decode(codebooks, codes)) ** 2).mean()),
        "relative_error_per_level": relative,
        "collision_rate": float(counts[counts > 1].sum() / len(x)),
        "unique_codes": len(counts),
        "codebook_usage": [
            len(np.unique(codes[:, level])) / len(codebook)
            for level, codebook in enumerate(codebooks.codebooks)
        ],
    }
