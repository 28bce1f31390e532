"""Compact embeddings: int8 and binary codes of unit vectors, at any Matryoshka size.

A vector is first cut to its Matryoshka prefix and re-normalised (`model_code.model.truncate`),
then coded:

- `int8`: scaled by 127 over its largest absolute value and rounded (symmetric, per vector, no
  calibration set): `dim` bytes. Cosine between codes ranks as cosine between the float vectors,
  up to rounding.
- `binary`: the sign bit of each value, packed 8 per byte, first value in the most significant
  bit (`numpy.packbits`): `dim / 8` bytes. Ranking by fewest differing bits (Hamming distance) is
  ranking by the dot product of the sign vectors.

`decode` turns codes back into unit float vectors that rank exactly as the codes do (int8: the
code re-normalised; binary: +-1/sqrt(dim)), so one scoring path serves float and compact vectors.
"""

from __future__ import annotations

import numpy as np
import torch

from model_code.model import truncate

ENCODINGS = ("float", "int8", "binary")
INT8_MAX = 127


def encode(vectors: np.ndarray, encoding: str, dim: int | None = None) -> np.ndarray:
    """Codes of unit `vectors` ([n, d]) cut to `dim` (default: their size): float32, int8, or
    packed uint8 bits ([n, dim / 8]; `dim` must be a multiple of 8)."""
    _check(encoding)
    vectors = np.asarray(vectors, dtype=np.float32)
    if dim is not None and dim != vectors.shape[-1]:
        vectors = truncate(torch.from_numpy(vectors), dim).numpy()
    if encoding == "float":
        return vectors
    if encoding == "int8":
        largest = np.abs(vectors).max(axis=-1, keepdims=True)
        scaled = vectors * (INT8_MAX / np.maximum(largest, np.finfo(np.float32).tiny))
        return np.rint(scaled).astype(np.int8)
    if vectors.shape[-1] % 8:
        size = vectors.shape[-1]
        raise ValueError(f"binary codes need a size that is a multiple of 8, got {size}")
    return np.packbits(vectors > 0, axis=-1)


def decode(codes: np.ndarray, encoding: str, dim: int) -> np.ndarray:
    """Unit float32 vectors ([n, dim]) that rank as `codes` do."""
    _check(encoding)
    if encoding == "binary":
        signs = np.unpackbits(np.asarray(codes, dtype=np.uint8), axis=-1, count=dim)
        return ((signs.astype(np.float32) * 2 - 1) / np.sqrt(dim)).astype(np.float32)
    values = np.asarray(codes, dtype=np.float32)
    norms = np.linalg.norm(values, axis=-1, keepdims=True)
    return values / np.maximum(norms, np.finfo(np.float32).tiny)


def roundtrip(vectors: np.ndarray, encoding: str, dim: int | None = None) -> np.ndarray:
    """`vectors` at `dim` as their codes rank them: `decode(encode(...))`."""
    dim = dim or np.asarray(vectors).shape[-1]
    return decode(encode(vectors, encoding, dim), encoding, dim)


def bytes_per_vector(dim: int, encoding: str) -> int:
    """Storage of one code: 4 bytes a value for float, 1 for int8, 1 bit for binary."""
    _check(encoding)
    return {"float": 4 * dim, "int8": dim, "binary": -(-dim // 8)}[encoding]


def top_k(query: np.ndarray, codes: np.ndarray, encoding: str, k: int) -> np.ndarray:
    """Row indices of the `k` codes nearest one query code, best first: by dot product (float),
    by cosine between int8 codes, by fewest differing bits (binary)."""
    _check(encoding)
    if encoding == "binary":
        distances = np.bitwise_count(np.bitwise_xor(codes, query)).sum(axis=-1, dtype=np.int32)
        scores = -distances
    elif encoding == "int8":
        scores = codes.astype(np.int32) @ query.astype(np.int32)
        scores = scores / np.linalg.norm(codes.astype(np.float32), axis=-1)
    else:
        scores = codes @ query
    k = min(k, len(scores))
    best = np.argpartition(-scores, k - 1)[:k]
    return best[np.lexsort((best, -scores[best]))]


def _check(encoding: str) -> None:
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {list(ENCODINGS)}, got {encoding!r}")
