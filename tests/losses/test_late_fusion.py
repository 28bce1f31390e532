import math

import pytest
import torch

from model_code.losses import LateFusionGate, LearnableTemperature, late_fusion_loss


def unit(*degrees: float) -> torch.Tensor:
    return torch.tensor(
        [[math.cos(math.radians(d)), math.sin(math.radians(d))] for d in degrees],
        dtype=torch.float64,
    )


def zero_gate(dim: int = 2, bias: float = 0.0) -> LateFusionGate:
    gate = LateFusionGate(dim).double()
    with torch.no_grad():
        gate.proj.weight.zero_()
        gate.proj.bias.fill_(bias)
    return gate


def test_zero_gate_averages_then_normalises():
    fused = zero_gate()(unit(0.0), unit(90.0))
    s = 1 / math.sqrt(2)
    assert fused.tolist()[0] == pytest.approx([s, s], rel=1e-5)


def test_bias_sets_the_mix():
    # sigmoid(log 3) = 3/4: fused = normalise(0.75 * e_x + 0.25 * e_y)
    fused = zero_gate(bias=math.log(3.0))(unit(0.0), unit(90.0))
    norm = math.sqrt(0.75**2 + 0.25**2)
    assert fused.tolist()[0] == pytest.approx([0.75 / norm, 0.25 / norm], rel=1e-5)


def test_loss_on_fused_vectors_matches_hand_value():
    # with g = 1/2 the fused unit vector bisects v and n: at angle (v + n) / 2 when |v - n| < 180
    vq, nq = [0.0, 100.0], [40.0, 160.0]
    vt, nt = [20.0, 90.0], [60.0, 130.0]
    fq = [(a + b) / 2 for a, b in zip(vq, nq, strict=True)]
    ft = [(a + b) / 2 for a, b in zip(vt, nt, strict=True)]
    tau = 0.2
    expected = 0.0
    for i, q in enumerate(fq):
        sims = [math.cos(math.radians(q - t)) / tau for t in ft]
        expected += -sims[i] + math.log(sum(math.exp(s) for s in sims))
    expected /= 2
    loss = late_fusion_loss(zero_gate(), unit(*vq), unit(*nq), unit(*vt), unit(*nt), tau)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_gradients_reach_gate_and_temperature():
    torch.manual_seed(0)
    gate = LateFusionGate(2).double()
    tau = LearnableTemperature(0.1)
    loss = late_fusion_loss(
        gate, unit(0.0, 100.0), unit(40.0, 160.0), unit(20.0, 90.0), unit(60.0, 130.0), tau()
    )
    loss.backward()
    assert gate.proj.weight.grad.abs().sum().item() > 0
    assert tau.log_tau.grad is not None


def test_invalid_inputs():
    gate = zero_gate()
    with pytest.raises(ValueError, match="visual and text shapes differ"):
        gate(unit(0.0, 1.0), unit(0.0))
    with pytest.raises(ValueError, match="gate dim is 2"):
        gate(torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64))
