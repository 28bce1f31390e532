import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from model_code.semantic_ids import (
    ResidualCodebooks,
    decode,
    encode,
    fit_residual_kmeans,
    report,
)


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny k-means fits are dominated by OpenMP start-up; one thread keeps the tests fast."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(200, 12))


@pytest.fixture(scope="module")
def codebooks(data) -> ResidualCodebooks:
    return fit_residual_kmeans(data, levels=3, codebook_size=8, seed=0)


def test_shapes_and_code_ranges(codebooks, data):
    assert codebooks.levels == 3 and codebooks.dim == 12
    assert [c.shape for c in codebooks.codebooks] == [(8, 12)] * 3
    codes = encode(codebooks, data)
    assert codes.shape == (200, 3) and codes.dtype == np.int64
    assert codes.min() >= 0 and codes.max() < 8
    assert decode(codebooks, codes).shape == data.shape


def test_error_strictly_decreases_with_levels(codebooks, data):
    stats = report(codebooks, data)
    errors = stats["relative_error_per_level"]
    assert len(errors) == 3
    assert errors[0] < 1.0 and (np.diff(errors) < 0).all()
    final = ((data - decode(codebooks, encode(codebooks, data))) ** 2).mean()
    assert stats["reconstruction_mse"] == pytest.approx(final)


def test_report_counts(codebooks, data):
    stats = report(codebooks, data)
    codes = encode(codebooks, data)
    _, counts = np.unique(codes, axis=0, return_counts=True)
    assert stats["unique_codes"] == len(counts)
    assert stats["collision_rate"] == pytest.approx(counts[counts > 1].sum() / len(data))
    assert len(stats["codebook_usage"]) == 3
    assert all(0 < u <= 1 for u in stats["codebook_usage"])


def test_full_codebook_is_lossless(data):
    small = data[:20]
    with pytest.warns(UserWarning, match="clamped to 20"):
        books = fit_residual_kmeans(small, levels=1, codebook_size=64)
    assert books.codebooks[0].shape == (20, 12)
    stats = report(books, small)
    assert stats["collision_rate"] == 0.0
    assert stats["unique_codes"] == 20
    assert stats["codebook_usage"] == [1.0]
    assert stats["reconstruction_mse"] < 1e-20


def test_clamps_to_distinct_rows():
    repeated = np.repeat(np.eye(3), 4, axis=0)
    with pytest.warns(UserWarning, match="3 distinct"):
        books = fit_residual_kmeans(repeated, levels=1, codebook_size=5)
    assert books.codebooks[0].shape == (3, 3)


def test_save_load_round_trip(codebooks, data, tmp_path):
    path = tmp_path / "codebooks.npz"
    codebooks.save(path)
    loaded = ResidualCodebooks.load(path)
    assert loaded.levels == codebooks.levels
    for a, b in zip(loaded.codebooks, codebooks.codebooks, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(encode(loaded, data), encode(codebooks, data))


def test_deterministic_under_seed(data, codebooks):
    again = fit_residual_kmeans(data, levels=3, codebook_size=8, seed=0)
    np.testing.assert_array_equal(encode(again, data), encode(codebooks, data))
    for a, b in zip(again.codebooks, codebooks.codebooks, strict=True):
        np.testing.assert_array_equal(a, b)


def test_decode_prefix_is_coarser(codebooks, data):
    codes = encode(codebooks, data)
    coarse = ((data - decode(codebooks, codes[:, :1])) ** 2).sum()
    fine = ((data - decode(codebooks, codes)) ** 2).sum()
    assert fine < coarse


def test_rejects_bad_inputs(codebooks, data):
    with pytest.raises(ValueError):
        fit_residual_kmeans(data, levels=0)
    with pytest.raises(ValueError):
        fit_residual_kmeans(np.zeros((0, 4)))
    with pytest.raises(ValueError):
        encode(codebooks, data[:, :5])
    with pytest.raises(ValueError):
        decode(codebooks, np.zeros((2, 4), dtype=int))
    with pytest.raises(ValueError):
        decode(codebooks, np.full((2, 3), 8))
