import math

import pytest
import torch

from model_code.losses import LearnableTemperature, micl


def unit(*degrees: float) -> torch.Tensor:
    return torch.tensor(
        [[math.cos(math.radians(d)), math.sin(math.radians(d))] for d in degrees],
        dtype=torch.float64,
    )


def hand_info_nce(q_deg: list[float], t_deg: list[float], tau: float) -> float:
    total = 0.0
    for i, q in enumerate(q_deg):
        sims = [math.cos(math.radians(q - t)) / tau for t in t_deg]
        total += -sims[i] + math.log(sum(math.exp(s) for s in sims))
    return total / len(q_deg)


VQ, VT = [0.0, 90.0, 180.0], [30.0, 60.0, 200.0]
TQ, TT = [45.0, 135.0, 300.0], [50.0, 170.0, 260.0]


def test_sum_of_visual_and_text_info_nce():
    loss = micl(unit(*VQ), unit(*VT), unit(*TQ), unit(*TT), 0.25)
    expected = hand_info_nce(VQ, VT, 0.25) + hand_info_nce(TQ, TT, 0.25)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_each_modality_has_its_own_mask():
    visual_valid = torch.tensor([True, True, False])
    text_valid = torch.tensor([False, True, True])
    loss = micl(unit(*VQ), unit(*VT), unit(*TQ), unit(*TT), 0.25, visual_valid, text_valid)
    expected = hand_info_nce(VQ[:2], VT[:2], 0.25) + hand_info_nce(TQ[1:], TT[1:], 0.25)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    changed = micl(
        unit(VQ[0], VQ[1], 7.0),
        unit(VT[0], VT[1], 8.0),
        unit(9.0, TQ[1], TQ[2]),
        unit(10.0, TT[1], TT[2]),
        0.25,
        visual_valid,
        text_valid,
    )
    assert changed.item() == pytest.approx(loss.item(), rel=1e-12)


def test_gradient_reaches_temperature():
    tau = LearnableTemperature(0.1)
    micl(unit(*VQ), unit(*VT), unit(*TQ), unit(*TT), tau()).backward()
    assert tau.log_tau.grad is not None and tau.log_tau.grad.abs().item() > 0


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shapes differ"):
        micl(unit(*VQ), unit(*VT[:2]), unit(*TQ), unit(*TT), 0.25)
