import math

import pytest
import torch

from model_code.losses import cosent


def pairs(*degrees: float) -> tuple[torch.Tensor, torch.Tensor]:
    """a_i = e_x, b_i at angle degrees[i]: cos(a_i, b_i) = cos(degrees[i])."""
    a = torch.tensor([[1.0, 0.0]] * len(degrees), dtype=torch.float64)
    b = torch.tensor(
        [[math.cos(math.radians(d)), math.sin(math.radians(d))] for d in degrees],
        dtype=torch.float64,
    )
    return a, b


def hand_cosent(degrees: list[float], scores: list[float], scale: float) -> float:
    cos = [math.cos(math.radians(d)) for d in degrees]
    total = 1.0
    for i in range(len(cos)):
        for j in range(len(cos)):
            if scores[i] > scores[j]:
                total += math.exp(scale * (cos[j] - cos[i]))
    return math.log(total)


DEG = [10.0, 50.0, 30.0]


def test_matches_hand_value():
    scores = [3.0, 1.0, 2.0]
    loss = cosent(*pairs(*DEG), torch.tensor(scores), scale=5.0)
    assert loss.item() == pytest.approx(hand_cosent(DEG, scores, 5.0), rel=1e-5)
    # wrongly ordered: pair 0 has the lowest score but the highest cosine
    scores = [1.0, 3.0, 2.0]
    loss = cosent(*pairs(*DEG), torch.tensor(scores))
    assert loss.item() == pytest.approx(hand_cosent(DEG, scores, 20.0), rel=1e-5)


def test_swapping_scores_changes_loss():
    a, b = pairs(*DEG)
    right = cosent(a, b, torch.tensor([3.0, 1.0, 2.0])).item()
    wrong = cosent(a, b, torch.tensor([1.0, 3.0, 2.0])).item()
    assert right < wrong


def test_tends_to_zero_when_correctly_ordered():
    a, b = pairs(*DEG)
    scores = torch.tensor([3.0, 1.0, 2.0])
    assert cosent(a, b, scores, scale=1000.0).item() == pytest.approx(0.0, abs=1e-30)


def test_equal_cosines_give_log_one_plus_pairs():
    a, b = pairs(20.0, 20.0, 20.0)
    loss = cosent(a, b, torch.tensor([1.0, 2.0, 3.0]))
    assert loss.item() == pytest.approx(math.log(4.0), rel=1e-5)


def test_no_ordered_pair_gives_zero_with_grad_path():
    a, b = pairs(*DEG)
    a.requires_grad_()
    loss = cosent(a, b, torch.tensor([2.0, 2.0, 2.0]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(a.grad, torch.zeros_like(a))


def test_stable_for_large_scale():
    scores = [1.0, 3.0, 2.0]
    loss = cosent(*pairs(*DEG), torch.tensor(scores), scale=1e4)
    cos = [math.cos(math.radians(d)) for d in DEG]
    # dominated by the largest exponent: scale * (cos_0 - cos_1)
    assert math.isfinite(loss.item())
    assert loss.item() == pytest.approx(1e4 * (cos[0] - cos[1]), rel=1e-5)


def test_scale_invariant_to_norms():
    a, b = pairs(*DEG)
    scores = torch.tensor([1.0, 3.0, 2.0])
    assert cosent(3 * a, 0.5 * b, scores).item() == pytest.approx(cosent(a, b, scores).item())


def test_invalid_inputs():
    a, b = pairs(*DEG)
    with pytest.raises(ValueError, match="a and b shapes differ"):
        cosent(a, b[:2], torch.ones(3))
    with pytest.raises(ValueError, match=r"scores must be \[3\]"):
        cosent(a, b, torch.ones(2))
