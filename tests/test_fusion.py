import torch

from model_code.config import FuserConfig
from model_code.fusion import Qwen2Fuser, mean_pool, mean_tanh_pool

QWEN_TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


def _outputs_after_changing_last_token(forward):
    embeds = torch.randn(1, 6, 32)
    mask = torch.ones(1, 6, dtype=torch.long)
    changed = embeds.clone()
    changed[0, -1] = torch.randn(32)
    with torch.no_grad():
        return forward(embeds, mask), forward(changed, mask)


def test_decoder_fuser_attends_bidirectionally():
    fuser = Qwen2Fuser(FuserConfig(kind="qwen2", config=QWEN_TINY), vocab_size=100).eval()
    before, after = _outputs_after_changing_last_token(fuser)
    assert not torch.allclose(before[0, 0], after[0, 0], atol=1e-4)


def test_the_same_decoder_run_causally_would_not():
    fuser = Qwen2Fuser(FuserConfig(kind="qwen2", config=QWEN_TINY), vocab_size=100).eval()

    def causal(embeds, mask):
        return fuser.net(inputs_embeds=embeds, attention_mask=mask).last_hidden_state

    for module in fuser.net.modules():
        if hasattr(module, "is_causal"):
            module.is_causal = True
    before, after = _outputs_after_changing_last_token(causal)
    assert torch.allclose(before[0, 0], after[0, 0], atol=1e-5)


def test_padding_is_masked_out_of_the_decoder():
    fuser = Qwen2Fuser(FuserConfig(kind="qwen2", config=QWEN_TINY), vocab_size=100).eval()
    embeds = torch.randn(1, 5, 32)
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    noisy = embeds.clone()
    noisy[0, 3:] = torch.randn(2, 32)
    with torch.no_grad():
        assert torch.allclose(fuser(embeds, mask)[0, :3], fuser(noisy, mask)[0, :3], atol=1e-5)


def test_mean_tanh_pool_by_hand():
    hidden = torch.tensor([[[0.5, -1.0], [2.0, 0.0], [9.0, 9.0]]])
    mask = torch.tensor([[1, 1, 0]])
    expected = torch.tensor(
        [
            [
                (torch.tanh(torch.tensor(0.5)) + torch.tanh(torch.tensor(2.0))) / 2,
                torch.tanh(torch.tensor(-1.0)) / 2,
            ]
        ]
    )
    assert torch.allclose(mean_tanh_pool(hidden, mask), expected)


def test_mean_pool_by_hand():
    hidden = torch.tensor([[[1.0, -2.0], [3.0, 4.0], [9.0, 9.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(mean_pool(hidden, mask), torch.tensor([[2.0, 1.0]]))
