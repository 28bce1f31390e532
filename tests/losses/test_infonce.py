import math

import pytest
import torch

from model_code.losses import LearnableTemperature, candidate_info_nce, info_nce


def unit(*degrees: float) -> torch.Tensor:
    return torch.tensor(
        [[math.cos(math.radians(d)), math.sin(math.radians(d))] for d in degrees],
        dtype=torch.float64,
    )


def hand_info_nce(q_deg: list[float], t_deg: list[float], tau: float) -> float:
    """Mean over i of -log(exp(s_ii / tau) / sum_j exp(s_ij / tau)), s_ij = cos(q_i - t_j)."""
    total = 0.0
    for i, q in enumerate(q_deg):
        sims = [math.cos(math.radians(q - t)) / tau for t in t_deg]
        total += -sims[i] + math.log(sum(math.exp(s) for s in sims))
    return total / len(q_deg)


Q = [0.0, 100.0, 210.0]
T = [20.0, 80.0, 250.0]


def test_matches_hand_value():
    loss = info_nce(unit(*Q), unit(*T), 0.1)
    assert loss.item() == pytest.approx(hand_info_nce(Q, T, 0.1), rel=1e-5)


def test_is_directional():
    # target -> query is a different loss than query -> target
    forward = info_nce(unit(*Q), unit(*T), 0.5).item()
    backward = info_nce(unit(*T), unit(*Q), 0.5).item()
    assert forward == pytest.approx(hand_info_nce(Q, T, 0.5), rel=1e-5)
    assert backward == pytest.approx(hand_info_nce(T, Q, 0.5), rel=1e-5)
    assert forward != pytest.approx(backward, rel=1e-3)


def test_gradient_reaches_temperature():
    tau = LearnableTemperature(0.1)
    info_nce(unit(*Q), unit(*T), tau()).backward()
    assert tau.log_tau.grad is not None and tau.log_tau.grad.abs().item() > 0


def test_valid_mask_drops_row_from_queries_and_targets():
    valid = torch.tensor([True, False, True])
    loss = info_nce(unit(*Q), unit(*T), 0.1, valid)
    expected = hand_info_nce([Q[0], Q[2]], [T[0], T[2]], 0.1)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    changed = info_nce(unit(Q[0], 3.0, Q[2]), unit(T[0], 1.0, T[2]), 0.1, valid)
    assert changed.item() == pytest.approx(loss.item(), rel=1e-12)


def test_no_valid_row_gives_zero_with_grad_path():
    query = unit(*Q).requires_grad_()
    tau = LearnableTemperature(0.1)
    loss = info_nce(query, unit(*T), tau(), torch.zeros(3, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(query.grad, torch.zeros_like(query))
    assert tau.log_tau.grad is not None


def test_single_valid_row_is_zero():
    loss = info_nce(unit(*Q), unit(*T), 0.1, torch.tensor([False, True, False]))
    assert loss.item() == pytest.approx(0.0, abs=1e-12)


def test_invalid_inputs():
    with pytest.raises(ValueError, match="query and target shapes differ"):
        info_nce(unit(0.0, 1.0), unit(0.0, 1.0, 2.0), 0.1)
    with pytest.raises(ValueError, match=r"query must be \[B, D\]"):
        info_nce(torch.zeros(3), torch.zeros(3), 0.1)
    with pytest.raises(ValueError, match="valid must be a bool tensor of shape"):
        info_nce(unit(*Q), unit(*T), 0.1, torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="valid must be a bool"):
        info_nce(unit(*Q), unit(*T), 0.1, torch.ones(3))
    with pytest.raises(ValueError, match="temperature must be positive"):
        info_nce(unit(*Q), unit(*T), 0.0)
    with pytest.raises(ValueError, match="temperature must be a scalar"):
        info_nce(unit(*Q), unit(*T), torch.ones(2))


def test_candidate_info_nce_matches_hand_value_and_leaves_out_excluded_candidates():
    query, candidates = unit(0.0, 100.0), unit(20.0, 80.0, 250.0, 5.0)
    positives = torch.tensor([0, 1])
    excluded = torch.tensor([[False, False, False, True], [False, False, False, False]])
    loss = candidate_info_nce(query, candidates, positives, 0.1, excluded=excluded)
    first = hand_info_nce([0.0], [20.0, 80.0, 250.0], 0.1)  # 5 degrees left out
    second = -math.log(
        math.exp(math.cos(math.radians(20)) / 0.1)
        / sum(math.exp(math.cos(math.radians(100 - t)) / 0.1) for t in (20, 80, 250, 5))
    )
    assert float(loss) == pytest.approx((first + second) / 2)
    with_it = candidate_info_nce(query, candidates, positives, 0.1)
    assert float(with_it) > float(loss)  # a near-duplicate negative costs more


def test_candidate_info_nce_rejects_an_excluded_positive_and_bad_shapes():
    query, candidates = unit(0.0), unit(20.0, 80.0)
    with pytest.raises(ValueError, match="positive is among its excluded"):
        candidate_info_nce(query, candidates, torch.tensor([1]), 0.1, torch.tensor([[0, 1]]).bool())
    with pytest.raises(ValueError, match="positives must be \\[B\\]"):
        candidate_info_nce(query, candidates, torch.tensor([0, 1]), 0.1)
    with pytest.raises(ValueError, match="must share D"):
        candidate_info_nce(query, torch.ones(2, 3, dtype=torch.float64), torch.tensor([0]), 0.1)
