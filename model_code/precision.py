"""The numeric precision a model runs inference in on CPU: fp32, bf16 or int8.

- `fp32`: as trained and saved (the default).
- `bf16`: every weight cast to bfloat16; inputs follow the towers' dtype and vectors come back as
  float32. Only on a CPU that computes in bf16 natively (the `avx512_bf16` or `amx_bf16` flag):
  elsewhere PyTorch emulates it, slower than fp32, so `ConfigError` says so instead.
- `int8`: every `nn.Linear` (the fuser's, the Perceiver's, the projections and adapters) replaced
  by a dynamically quantized one: int8 weights, one scale per output channel, activations
  quantized per batch (`torch.ao.quantization.quantize_dynamic`). The vision tower's convolutions
  stay fp32: static quantization needs a calibration pass and fused conv modules that
  `efficientnet_lite_pytorch` does not provide.

`apply_precision(model, precision)` returns the model ready for inference (eval mode); the
model is changed in place for bf16 and copied for int8. docs/benchmarks.md measures the speed
and the retrieval cost of each on the same items (`python -m bench --suite precision`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from model_code.config import ConfigError

PRECISIONS = ("fp32", "bf16", "int8")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def apply_precision(model: nn.Module, precision: str = "fp32") -> nn.Module:
    """The model in `precision`, in eval mode (see the module doc)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
    model = model.eval()
    if precision == "bf16":
        check_bf16()
        return model.to(torch.bfloat16)
    if precision == "int8":
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        with warnings.catch_warnings():  # torch.ao.quantization is deprecated for torchao
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            return quantize_dynamic(model, {nn.Linear: per_channel_dynamic_qconfig})
    return model


def check_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> None:
    """ConfigError unless the CPU computes in bf16 natively (a CUDA device always may)."""
    if torch.cuda.is_available():
        return
    flags = set(cpuinfo.read_text().split()) if cpuinfo.is_file() else set()
    if not flags & set(BF16_FLAGS):
        raise ConfigError(
            f"bf16 needs a CPU with one of the flags {', '.join(BF16_FLAGS)} (this one has "
            "neither, so bf16 would be emulated and slower than fp32); use fp32 or int8"
        )
