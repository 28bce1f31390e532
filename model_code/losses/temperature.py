"""Learnable softmax temperatures, one per dataset/task."""

import math

import torch
from torch import Tensor, nn


class LearnableTemperature(nn.Module):
    """A softmax temperature tau stored as log(tau), clamped to [min_value, max_value] when read."""

    def __init__(self, init: float = 0.05, min_value: float = 0.01, max_value: float = 1.0) -> None:
        super().__init__()
        if not 0.0 < min_value <= max_value:
            raise ValueError(f"need 0 < min_value <= max_value, got {min_value}, {max_value}")
        if not min_value <= init <= max_value:
            raise ValueError(f"init temperature {init} is outside [{min_value}, {max_value}]")
        self.min_value = min_value
        self.max_value = max_value
        # shape [1], not a scalar: DeepSpeed broadcasts parameters as byte views
        self.log_tau = nn.Parameter(torch.tensor([math.log(init)]))

    @property
    def value(self) -> Tensor:
        """The clamped temperature, a 0-d tensor on the parameter's graph."""
        return self.log_tau.exp().clamp(self.min_value, self.max_value).squeeze(0)

    def forward(self) -> Tensor:
        return self.value

    def extra_repr(self) -> str:
        return f"min_value={self.min_value}, max_value={self.max_value}"


class TemperatureBank(nn.Module):
    """One LearnableTemperature per dataset name; `bank[name]` returns that temperature tensor."""

    def __init__(
        self, inits: dict[str, float], min_value: float = 0.01, max_value: float = 1.0
    ) -> None:
        super().__init__()
        if not inits:
            raise ValueError("TemperatureBank needs at least one dataset name")
        bad = [name for name in inits if not name or "." in name]
        if bad:
            raise ValueError(f"dataset names must be non-empty and contain no '.': {bad}")
        self.temperatures = nn.ModuleDict(
            {name: LearnableTemperature(init, min_value, max_value) for name, init in inits.items()}
        )

    @property
    def names(self) -> list[str]:
        return list(self.temperatures.keys())

    def __contains__(self, name: str) -> bool:
        return name in self.temperatures

    def __getitem__(self, name: str) -> Tensor:
        if name not in self.temperatures:
            raise KeyError(f"no temperature for dataset {name!r}; known datasets: {self.names}")
        return self.temperatures[name]()
