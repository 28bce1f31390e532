import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from model_code.training.balancing import (
    balance_weights,
    kmeans_centroids,
    l2_normalise,
    sinkhorn,
    source_score,
)

DIM = 16


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny k-means fits are dominated by OpenMP start-up; one thread keeps the tests fast."""
    with threadpool_limits(1):
        yield


def centres(rng: np.random.Generator, n: int = 8) -> np.ndarray:
    return l2_normalise(rng.normal(size=(n, DIM)))


def around(rng: np.random.Generator, c: np.ndarray, n: int, noise: float = 0.1) -> np.ndarray:
    """`n` unit vectors scattered around the centres `c`."""
    picked = c[rng.integers(len(c), size=n)]
    return l2_normalise(picked + noise * rng.normal(size=(n, DIM)))


@pytest.fixture(scope="module")
def known_overlap():
    """Eval set around centres A; train sets around A, around unrelated B, and half A half B."""
    rng = np.random.default_rng(0)
    a, b = centres(rng), centres(rng)
    train = {
        "on_target": around(rng, a, 160),
        "off_target": around(rng, b, 160),
        "mixed": np.vstack([around(rng, a, 80), around(rng, b, 80)]),
    }
    return train, {"eval": around(rng, a, 160)}


def test_weights_follow_known_overlap(known_overlap):
    train, evals = known_overlap
    result = balance_weights(train, evals, k=8)
    w = result.weights
    assert w["on_target"] > w["mixed"] > w["off_target"]
    assert sum(w.values()) == pytest.approx(1.0)
    assert result.scores.shape == (3, 1)
    assert result.score_table()["on_target"]["eval"] == pytest.approx(result.scores[0, 0])


def test_temperature_sharpens_and_flattens(known_overlap):
    train, evals = known_overlap
    sharp = balance_weights(train, evals, temperature=0.01).weights
    flat = balance_weights(train, evals, temperature=100.0).weights
    assert sharp["on_target"] > 0.9
    assert max(flat.values()) - min(flat.values()) < 0.05


def test_scores_average_over_eval_sets(known_overlap):
    train, evals = known_overlap
    both = {"eval": evals["eval"], "copy": evals["eval"].copy()}
    result = balance_weights(train, both)
    np.testing.assert_allclose(result.scores[:, 0], result.scores[:, 1])
    assert result.weights == pytest.approx(balance_weights(train, evals).weights)


def test_deterministic_under_seed(known_overlap):
    train, evals = known_overlap
    first, second = balance_weights(train, evals, seed=3), balance_weights(train, evals, seed=3)
    np.testing.assert_array_equal(first.scores, second.scores)
    assert first.weights == second.weights


def test_equal_scores_give_uniform_weights(known_overlap):
    train, evals = known_overlap
    same = {"x": train["on_target"], "y": train["on_target"].copy()}
    assert balance_weights(same, evals).weights == pytest.approx({"x": 0.5, "y": 0.5})


def test_identical_sets_get_the_max_score():
    rng = np.random.default_rng(1)
    c = kmeans_centroids(around(rng, centres(rng), 120), k=8)
    others = [kmeans_centroids(around(rng, centres(rng), 120), k=8) for _ in range(3)]
    best = source_score(c, c)
    assert best == pytest.approx(1.0, abs=1e-3)
    assert all(best > source_score(o, c) for o in others)


def test_kmeans_centroids_clamp_and_normalise():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, DIM))
    c = kmeans_centroids(x, k=8)
    assert c.shape == (5, DIM)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0)
    np.testing.assert_array_equal(kmeans_centroids(x, k=3, seed=1), kmeans_centroids(x, 3, 1))


@pytest.mark.parametrize("reg", [0.01, 0.05, 0.5])
def test_sinkhorn_uniform_marginals(reg):
    rng = np.random.default_rng(3)
    cost = 1.0 - centres(rng, 7) @ centres(rng, 4).T
    plan = sinkhorn(cost, reg=reg)
    np.testing.assert_allclose(plan.sum(axis=1), 1 / 7, atol=1e-4)
    np.testing.assert_allclose(plan.sum(axis=0), 1 / 4, atol=1e-4)
    assert (plan >= 0).all()


def test_sinkhorn_weighted_marginals():
    rng = np.random.default_rng(4)
    cost = 1.0 - centres(rng, 2) @ centres(rng, 3).T
    plan = sinkhorn(cost, a_weights=np.array([1.0, 3.0]), b_weights=np.ones(3))
    np.testing.assert_allclose(plan.sum(axis=1), [0.25, 0.75], atol=1e-4)
    np.testing.assert_allclose(plan.sum(axis=0), [1 / 3] * 3, atol=1e-4)


def test_sinkhorn_log_domain_does_not_underflow():
    """exp(-cost / reg) is 0 in float64 here; the log-domain plan stays finite and normalised."""
    plan = sinkhorn(np.array([[0.0, 1e3], [1e3, 2e3]]), reg=1e-3)
    assert np.isfinite(plan).all()
    assert plan.sum() == pytest.approx(1.0)


def test_sinkhorn_small_reg_approaches_assignment():
    cost = np.array([[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(sinkhorn(cost, reg=0.01), np.eye(2) / 2, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [{"reg": 0.0}, {"iters": 0}, {"a_weights": np.array([1.0, -1.0])}, {"b_weights": np.ones(5)}],
)
def test_sinkhorn_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        sinkhorn(np.zeros((2, 3)), **kwargs)


def test_balance_weights_rejects_bad_arguments(known_overlap):
    train, evals = known_overlap
    with pytest.raises(ValueError):
        balance_weights({}, evals)
    with pytest.raises(ValueError):
        balance_weights(train, evals, temperature=0.0)
    with pytest.raises(ValueError):
        kmeans_centroids(np.zeros((0, DIM)), k=2)


def test_two_sources_follow_the_scores_and_keep_the_configured_weights_when_equal(known_overlap):
    """With two sets a z-score is always +-1; these weights follow how far apart the scores are."""
    train, evals = known_overlap
    priors = {"on_target": 0.3, "off_target": 0.7}
    pair = {name: train[name] for name in priors}
    result = balance_weights(pair, evals, priors=priors, temperature=0.05)
    gap = result.scores[0, 0] - result.scores[1, 0]
    ratio = result.weights["on_target"] / result.weights["off_target"]
    assert ratio == pytest.approx(0.3 / 0.7 * np.exp(gap / 0.05))
    closer = {"on_target": train["on_target"], "mixed": train["mixed"]}
    near = balance_weights(closer, evals, priors={"on_target": 0.3, "mixed": 0.7})
    far = balance_weights(pair, evals, priors=priors)
    assert near.weights["on_target"] < far.weights["on_target"]  # a smaller gap, less of a shift
    same = {"x": train["on_target"], "y": train["on_target"].copy()}
    kept = balance_weights(same, evals, priors={"x": 0.7, "y": 0.3}).weights
    assert kept == pytest.approx({"x": 0.7, "y": 0.3})
    with pytest.raises(ValueError, match="priors"):
        balance_weights(pair, evals, priors={"on_target": 0.0, "off_target": 1.0})
