"""Inference precision: fp32, bf16 (where the CPU computes in it) and int8 dynamic quantization."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_code.config import ConfigError
from model_code.embed import Embedder
from model_code.items import Item
from model_code.precision import apply_precision, check_bf16

pytestmark = pytest.mark.numeric_paths  # make test runs these again under other CPU kernels

ITEMS = [Item(id=str(i), title=f"a red bicycle number {i} by the river") for i in range(12)]


@pytest.fixture(scope="module")
def fp32_vectors(tiny):
    model, processor = tiny
    return Embedder(model, processor).embed(ITEMS).vectors


def test_int8_quantizes_every_linear_but_the_fusers_attention_and_stays_close(tiny, fp32_vectors):
    model, processor = tiny
    embedder = Embedder(model, processor, precision="int8")
    kinds = {name: type(m) for name, m in embedder.model.named_modules()}
    quantized = [name for name, kind in kinds.items() if "quantized" in kind.__module__]
    fp32 = [name for name, kind in kinds.items() if kind is torch.nn.Linear]
    assert fp32 and all(name.startswith("fuser.") and ".attention." in name for name in fp32)
    assert any(".intermediate." in name for name in quantized)
    assert any(name.startswith("vision.") for name in quantized)
    assert any(type(m) is torch.nn.Linear for m in model.modules())  # quantized a copy
    vectors = embedder.embed(ITEMS).vectors
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert float(np.sum(vectors * fp32_vectors, axis=1).min()) > 0.9
    assert not np.array_equal(vectors, fp32_vectors)


def test_int8_runs_on_the_cpu_only_and_unknown_precisions_are_named(tiny):
    model, processor = tiny
    with pytest.raises(ConfigError, match="int8 runs on the CPU only"):
        Embedder(model, processor, device="cuda", precision="int8")
    with pytest.raises(ConfigError, match=r"unknown precision 'fp8'.*'fp32', 'bf16', 'int8'"):
        apply_precision(model, "fp8")


def test_bf16_is_refused_on_a_cpu_without_native_bf16(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f\n")
    with pytest.raises(ConfigError, match="avx512_bf16, amx_bf16"):
        check_bf16(cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu avx512f avx512_bf16\n")
    check_bf16(cpuinfo)


def test_bf16_vectors_are_float32_and_close(tiny, fp32_vectors):
    try:
        check_bf16()
    except ConfigError as error:
        pytest.skip(str(error))
    import copy

    model, processor = tiny
    vectors = Embedder(copy.deepcopy(model), processor, precision="bf16").embed(ITEMS).vectors
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert float(np.sum(vectors * fp32_vectors, axis=1).min()) > 0.98
