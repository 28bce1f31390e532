import math

import pytest
import torch

from model_code.losses import LearnableTemperature, hard_negative_info_nce, info_nce


def unit(*degrees: float) -> torch.Tensor:
    return torch.tensor(
        [[math.cos(math.radians(d)), math.sin(math.radians(d))] for d in degrees],
        dtype=torch.float64,
    )


def hand_loss(
    q_deg: list[float], t_deg: list[float], neg_deg: list[list[float]], tau: float
) -> float:
    """Denominator of query i: its positive, the other in-batch targets and its own negatives."""
    total = 0.0
    for i, q in enumerate(q_deg):
        sims = [math.cos(math.radians(q - t)) / tau for t in t_deg + neg_deg[i]]
        total += -sims[i] + math.log(sum(math.exp(s) for s in sims))
    return total / len(q_deg)


Q, T = [0.0, 120.0], [30.0, 150.0]
NEG = [[15.0, 200.0], [100.0, 140.0]]


def negatives(neg_deg: list[list[float]]) -> torch.Tensor:
    return torch.stack([unit(*row) for row in neg_deg])


def test_matches_hand_value():
    loss = hard_negative_info_nce(unit(*Q), unit(*T), negatives(NEG), 0.1)
    assert loss.item() == pytest.approx(hand_loss(Q, T, NEG, 0.1), rel=1e-5)


def test_masked_negatives_are_excluded():
    mask = torch.tensor([[True, False], [False, True]])
    loss = hard_negative_info_nce(unit(*Q), unit(*T), negatives(NEG), 0.1, mask)
    expected = hand_loss(Q, T, [[NEG[0][0]], [NEG[1][1]]], 0.1)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    moved = [[NEG[0][0], 1.0], [31.0, NEG[1][1]]]
    changed = hard_negative_info_nce(unit(*Q), unit(*T), negatives(moved), 0.1, mask)
    assert changed.item() == pytest.approx(loss.item(), rel=1e-12)


def test_all_masked_equals_plain_info_nce():
    mask = torch.zeros(2, 2, dtype=torch.bool)
    loss = hard_negative_info_nce(unit(*Q), unit(*T), negatives(NEG), 0.1, mask)
    assert loss.item() == pytest.approx(hand_loss(Q, T, [[], []], 0.1), rel=1e-5)
    assert loss.item() == pytest.approx(info_nce(unit(*Q), unit(*T), 0.1).item(), rel=1e-12)


def test_gradient_reaches_temperature_and_negatives():
    tau = LearnableTemperature(0.1)
    negs = negatives(NEG).requires_grad_()
    mask = torch.tensor([[True, False], [True, True]])
    hard_negative_info_nce(unit(*Q), unit(*T), negs, tau(), mask).backward()
    assert tau.log_tau.grad is not None and tau.log_tau.grad.abs().item() > 0
    assert negs.grad[0, 1].abs().sum().item() == 0.0
    assert negs.grad[0, 0].abs().sum().item() > 0


def test_invalid_inputs():
    q, t = unit(*Q), unit(*T)
    with pytest.raises(ValueError, match=r"negatives must be \[B=2, K, D=2\]"):
        hard_negative_info_nce(q, t, torch.zeros(3, 2, 2, dtype=torch.float64), 0.1)
    with pytest.raises(ValueError, match=r"negatives must be \[B=2, K, D=2\]"):
        hard_negative_info_nce(q, t, torch.zeros(2, 2, 3, dtype=torch.float64), 0.1)
    with pytest.raises(ValueError, match=r"negatives must be"):
        hard_negative_info_nce(q, t, torch.zeros(2, 2, dtype=torch.float64), 0.1)
    with pytest.raises(ValueError, match="negative_mask must be a bool tensor of shape"):
        hard_negative_info_nce(q, t, negatives(NEG), 0.1, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="query and target shapes differ"):
        hard_negative_info_nce(q, unit(0.0), negatives(NEG), 0.1)
