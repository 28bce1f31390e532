"""The fuser: a transformer with bidirectional attention over [instruction; audio; vision; text]."""

from __future__ import annotations

import torch
from torch import nn

from model_code.config import ConfigError, FuserConfig
from model_code.weights import resolve_weights


class BertFuser(nn.Module):
    """A BERT-style encoder (bidirectional by construction)."""

    def __init__(self, config: FuserConfig, vocab_size: int):
        super().__init__()
        from transformers import BertConfig, BertModel

        if config.weights:
            self.net = BertModel.from_pretrained(
                resolve_weights(config.weights), add_pooling_layer=False
            )
        else:
            settings = {"vocab_size": vocab_size, **config.config}
            self.net = BertModel(BertConfig(**settings), add_pooling_layer=False)

    @property
    def token_embeddings(self) -> nn.Embedding:
        return self.net.embeddings.word_embeddings

    def architecture(self) -> dict:
        return self.net.config.to_diff_dict()

    def forward(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(inputs_embeds=embeds, attention_mask=mask).last_hidden_state


class Qwen2Fuser(nn.Module):
    """A Qwen2 decoder LLM with its causal mask replaced by a bidirectional padding mask."""

    def __init__(self, config: FuserConfig, vocab_size: int):
        super().__init__()
        from transformers import Qwen2Config, Qwen2Model

        if config.weights:
            self.net = Qwen2Model.from_pretrained(resolve_weights(config.weights))
        else:
            settings = {"vocab_size": vocab_size, **config.config}
            self.net = Qwen2Model(Qwen2Config(**settings))
        for module in self.net.modules():
            if hasattr(module, "is_causal"):
                module.is_causal = False

    @property
    def token_embeddings(self) -> nn.Embedding:
        return self.net.embed_tokens

    def architecture(self) -> dict:
        return self.net.config.to_diff_dict()

    def forward(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        from transformers.masking_utils import create_bidirectional_mask

        full_mask = create_bidirectional_mask(
            config=self.net.config,
            inputs_embeds=embeds,
            attention_mask=mask,
            allow_is_bidirectional_skip=False,
        )
        return self.net(inputs_embeds=embeds, attention_mask={"full_attention": full_mask})[
            "last_hidden_state"
        ]


FUSERS = {"bert": BertFuser, "qwen2": Qwen2Fuser}


def build_fuser(config: FuserConfig, vocab_size: int) -> nn.Module:
    """Build the fuser named by `config.kind`."""
    if config.kind not in FUSERS:
        raise ConfigError(f"unknown fuser kind {config.kind!r}; known: {list(FUSERS)}")
    return FUSERS[config.kind](config, vocab_size)


def fuser_width(fuser: nn.Module) -> int:
    """The fuser's hidden size, which is the full embedding size."""
    return fuser.net.config.hidden_size


def mean_tanh_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Embedding = mean over valid tokens of tanh(hidden states)."""
    return mean_pool(torch.tanh(hidden), mask)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Embedding = mean over valid tokens of the hidden states (sentence-transformers' pooling)."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


POOLS = {"mean": mean_pool, "mean_tanh": mean_tanh_pool}
