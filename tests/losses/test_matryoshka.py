import math

import pytest
import torch

from model_code.losses import info_nce, matryoshka


def rad(d: float) -> float:
    return math.radians(d)


def embed(pairs: list[tuple[float, float]]) -> torch.Tensor:
    """Row (a, b) -> (cos a, sin a, cos b, sin b) / sqrt(2): unit in 4-D, prefix 2 is at angle a."""
    s = math.sqrt(2.0)
    rows = [[math.cos(rad(a)) / s, math.sin(rad(a)) / s, math.cos(rad(b)) / s, math.sin(rad(b)) / s]
            for a, b in pairs]  # fmt: skip
    return torch.tensor(rows, dtype=torch.float64)


def hand_info_nce(sims: list[list[float]], tau: float) -> float:
    total = 0.0
    for i, row in enumerate(sims):
        total += -row[i] / tau + math.log(sum(math.exp(s / tau) for s in row))
    return total / len(sims)


QUERY = [(0.0, 30.0), (120.0, 200.0)]
TARGET = [(40.0, 10.0), (90.0, 300.0)]


def hand_prefix_losses(tau: float) -> tuple[float, float]:
    # prefix 2 re-normalised: unit vectors at angle a; full 4-D: (cos da + cos db) / 2
    sims2 = [[math.cos(rad(qa - ta)) for ta, _ in TARGET] for qa, _ in QUERY]
    sims4 = [
        [(math.cos(rad(qa - ta)) + math.cos(rad(qb - tb))) / 2 for ta, tb in TARGET]
        for qa, qb in QUERY
    ]
    return hand_info_nce(sims2, tau), hand_info_nce(sims4, tau)


def test_weighted_sum_of_prefix_losses():
    l2, l4 = hand_prefix_losses(0.2)
    loss = matryoshka(
        info_nce, embed(QUERY), embed(TARGET), dims=[2, 4], weights=[1.0, 0.5], temperature=0.2
    )
    assert loss.item() == pytest.approx(l2 + 0.5 * l4, rel=1e-5)


def test_default_weights_are_one():
    l2, l4 = hand_prefix_losses(0.2)
    loss = matryoshka(info_nce, embed(QUERY), embed(TARGET), [2, 4], temperature=0.2)
    assert loss.item() == pytest.approx(l2 + l4, rel=1e-5)


def test_kwargs_are_forwarded():
    valid = torch.tensor([True, False])
    loss = matryoshka(info_nce, embed(QUERY), embed(TARGET), [2, 4], temperature=0.2, valid=valid)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)  # one valid row: nothing to contrast


@pytest.mark.parametrize(
    ("dims", "match"),
    [
        ([], "must not be empty"),
        ([0, 4], "positive integers"),
        ([2.5, 4], "positive integers"),
        ([4, 2], "strictly ascending"),
        ([2, 2], "strictly ascending"),
        ([2, 8], "exceeds the embedding dim 4"),
    ],
)
def test_bad_dims(dims, match):
    with pytest.raises(ValueError, match=match):
        matryoshka(info_nce, embed(QUERY), embed(TARGET), dims, temperature=0.2)


def test_bad_weights_and_shapes():
    with pytest.raises(ValueError, match="1 matryoshka weights for 2 dims"):
        matryoshka(info_nce, embed(QUERY), embed(TARGET), [2, 4], [1.0], temperature=0.2)
    with pytest.raises(ValueError, match="same D"):
        matryoshka(info_nce, embed(QUERY), embed(TARGET)[:, :3], [2], temperature=0.2)
