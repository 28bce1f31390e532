"""Compact codes: int8 stays within 0.99 cosine of the float vectors, binary keeps the signs, and
searching codes returns what brute force over the decoded vectors returns."""

import numpy as np
import pytest
import torch

from model_code.compact import ENCODINGS, bytes_per_vector, decode, encode, roundtrip, top_k
from model_code.model import truncate

pytestmark = pytest.mark.numeric_paths  # make test runs these again under other CPU kernels


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors[:, 0] *= 8  # one dominant value: the int8 scale is set by the largest
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("dim", [64, 128, 256, 384])
def test_int8_codes_keep_the_float_direction_at_every_matryoshka_size(dim):
    vectors = unit_vectors(200, 384)
    prefix = truncate(torch.from_numpy(vectors), dim).numpy()
    codes = encode(vectors, "int8", dim)
    assert codes.dtype == np.int8 and codes.shape == (200, dim)
    assert np.abs(codes).max(axis=1).min() == 127  # each vector uses the whole range
    cosine = (roundtrip(vectors, "int8", dim) * prefix).sum(axis=1)
    assert cosine.min() >= 0.99


def test_binary_codes_are_the_packed_signs_of_the_prefix():
    vectors = unit_vectors(50, 128)
    codes = encode(vectors, "binary", 64)
    assert codes.dtype == np.uint8 and codes.shape == (50, 8)
    signs = np.unpackbits(codes, axis=1)
    assert np.array_equal(signs, (vectors[:, :64] > 0).astype(np.uint8))
    decoded = decode(codes, "binary", 64)
    assert np.allclose(np.linalg.norm(decoded, axis=1), 1.0)
    assert np.array_equal(decoded > 0, vectors[:, :64] > 0)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_top_k_over_codes_matches_brute_force_over_decoded_vectors(encoding):
    catalogue, queries = unit_vectors(500, 128, seed=1), unit_vectors(20, 128, seed=2)
    codes, query_codes = encode(catalogue, encoding), encode(queries, encoding)
    decoded = decode(codes, encoding, 128)
    for query, query_code in zip(decode(query_codes, encoding, 128), query_codes, strict=True):
        scores = decoded @ query
        found = top_k(query_code, codes, encoding, 10)
        assert len(found) == 10
        # the same scores, best first (ties, common in Hamming distance, in any order)
        assert np.allclose(scores[found], np.sort(scores)[::-1][:10], atol=1e-5)
        assert np.all(np.diff(scores[found]) <= 1e-6)


def test_int8_search_finds_what_float_search_finds():
    catalogue, queries = unit_vectors(500, 128, seed=3), unit_vectors(20, 128, seed=4)
    codes = encode(catalogue, "int8")
    overlap = [
        len(set(top_k(q, catalogue, "float", 10)) & set(top_k(c, codes, "int8", 10)))
        for q, c in zip(queries, encode(queries, "int8"), strict=True)
    ]
    assert np.mean(overlap) >= 9


def test_storage_per_vector():
    assert [bytes_per_vector(128, e) for e in ENCODINGS] == [512, 128, 16]


def test_bad_encodings_and_sizes_are_named():
    with pytest.raises(ValueError, match="encoding must be one of"):
        encode(unit_vectors(2, 64), "int4")
    with pytest.raises(ValueError, match="multiple of 8, got 60"):
        encode(unit_vectors(2, 64), "binary", 60)
