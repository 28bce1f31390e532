"""The numeric precision a model runs inference in on CPU: fp32, bf16 or int8.

- `fp32`: as trained and saved (the default).
- `bf16`: every weight cast to bfloat16; inputs follow the towers' dtype and vectors come back as
  float32. Only on a CPU that computes in bf16 natively (the `avx512_bf16` or `amx_bf16` flag):
  elsewhere PyTorch emulates it, slower than fp32, so `ConfigError` says so instead.
- `int8`: the `nn.Linear` layers replaced by dynamically quantized ones: int8 weights, one scale
  per output channel, activations quantized per batch (`torch.ao.quantization.quantize_dynamic`):
  the fuser's feed-forward layers, the Perceiver, the projections and adapters. The fuser's
  attention projections stay fp32: chosen on the validation split, quantizing them too cost
  MovieLens HR@10 0.018 (0.1019 -> 0.0839), the feed-forward layers alone 0.006 (the table in
  docs/serving.md, "Precision"). The vision tower's convolutions stay fp32: static quantization
  needs a calibration pass and fused conv modules that `efficientnet_lite_pytorch` lacks.

`apply_precision(model, precision)` returns the model ready for inference (eval mode); the
model is changed in place for bf16 and copied for int8. docs/benchmarks.md measures the speed
and the retrieval cost of each on the same items (`python -m bench --suite precision`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from model_code.config import PRECISIONS, ConfigError

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
FUSER_ATTENTION = (".attention.", ".self_attn.")  # BERT's and Qwen2's attention modules


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
            layers = {name: per_channel_dynamic_qconfig for name in quantized_layers(model)}
            return quantize_dynamic(model, layers)
    return model


def quantized_layers(model: nn.Module) -> list[str]:
    """The names of the Linear layers int8 quantizes: all but the fuser's attention, and but
    the output projections inside `nn.MultiheadAttention` (another class, which reads its weight
    tensor directly)."""
    return [
        name
        for name, module in model.named_modules()
        if type(module) is nn.Linear
        and not (name.startswith("fuser.") and any(part in name for part in FUSER_ATTENTION))
    ]


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
