import math

import pytest
import torch

from model_code.losses import LearnableTemperature, TemperatureBank


def test_initial_value_and_log_space_parameter():
    tau = LearnableTemperature(0.05)
    assert tau.value.item() == pytest.approx(0.05, rel=1e-5)
    assert tau().item() == pytest.approx(0.05, rel=1e-5)
    assert [name for name, _ in tau.named_parameters()] == ["log_tau"]
    assert tau.log_tau.item() == pytest.approx(math.log(0.05), rel=1e-5)


def test_clamped_to_bounds():
    tau = LearnableTemperature(0.05, min_value=0.02, max_value=0.5)
    with torch.no_grad():
        tau.log_tau.fill_(math.log(5.0))
    assert tau.value.item() == pytest.approx(0.5, rel=1e-5)
    with torch.no_grad():
        tau.log_tau.fill_(math.log(1e-4))
    assert tau().item() == pytest.approx(0.02, rel=1e-5)


def test_default_bounds():
    tau = LearnableTemperature(0.05)
    with torch.no_grad():
        tau.log_tau.fill_(math.log(1e-5))
    assert tau.value.item() == pytest.approx(0.01, rel=1e-5)
    with torch.no_grad():
        tau.log_tau.fill_(math.log(50.0))
    assert tau.value.item() == pytest.approx(1.0, rel=1e-5)


def test_gradient_in_log_space():
    tau = LearnableTemperature(0.1)
    tau().backward()
    # d exp(log_tau) / d log_tau = tau
    assert tau.log_tau.grad.item() == pytest.approx(0.1, rel=1e-5)


@pytest.mark.parametrize(
    ("init", "lo", "hi", "match"),
    [(0.0, 0.01, 1.0, "outside"), (2.0, 0.01, 1.0, "outside"), (0.05, 0.0, 1.0, "min_value")],
)
def test_invalid_construction(init, lo, hi, match):
    with pytest.raises(ValueError, match=match):
        LearnableTemperature(init, lo, hi)


def test_bank_lookup_and_parameters():
    bank = TemperatureBank({"coco": 0.05, "msrvtt": 0.1})
    assert bank["coco"].item() == pytest.approx(0.05, rel=1e-5)
    assert bank["msrvtt"].item() == pytest.approx(0.1, rel=1e-5)
    assert bank.names == ["coco", "msrvtt"]
    assert "coco" in bank and "nope" not in bank
    assert len(list(bank.parameters())) == 2
    bank["msrvtt"].backward()
    assert bank.temperatures["msrvtt"].log_tau.grad is not None
    assert bank.temperatures["coco"].log_tau.grad is None


def test_bank_unknown_name_lists_known():
    bank = TemperatureBank({"coco": 0.05, "msrvtt": 0.1})
    with pytest.raises(KeyError, match=r"'flickr'.*coco.*msrvtt"):
        bank["flickr"]


def test_bank_rejects_empty_and_dotted_names():
    with pytest.raises(ValueError, match="at least one"):
        TemperatureBank({})
    with pytest.raises(ValueError, match="a.b"):
        TemperatureBank({"a.b": 0.05})
