import pytest
import torch

from model_code.config import ConfigError
from model_code.encoders.sequence import MeanPooler, build_pooler


def test_mean_pooler_by_hand():
    items = torch.tensor([[[3.0, 0.0], [0.0, 4.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, False]])
    expected = torch.tensor([[1.5, 2.0]]) / 2.5
    assert torch.allclose(MeanPooler()(items, mask), expected)


def test_summary_transformer_ignores_padding_and_sees_order():
    pooler = build_pooler("transformer", 16).eval()
    items = torch.randn(1, 4, 16)
    mask = torch.tensor([[True, True, True, False]])
    noisy = items.clone()
    noisy[0, 3] = torch.randn(16)
    with torch.no_grad():
        out = pooler(items, mask)
        assert torch.allclose(out, pooler(noisy, mask), atol=1e-5)
        assert not torch.allclose(out, pooler(items[:, [2, 1, 0, 3]], mask), atol=1e-4)
    assert torch.allclose(out.norm(dim=-1), torch.ones(1))


def test_model_pools_sequences_and_can_switch_pooler(tiny):
    model, _ = tiny
    vectors = torch.nn.functional.normalize(torch.randn(5, 64), dim=-1)
    users = model.pool_sequences(vectors, [[0, 1], [2, 3, 4]])
    expected = torch.nn.functional.normalize(vectors[2:].mean(0), dim=-1)
    assert torch.allclose(users[1], expected, atol=1e-6)
    with pytest.raises(ConfigError, match="unknown sequence pooling"):
        build_pooler("lstm", 8)
