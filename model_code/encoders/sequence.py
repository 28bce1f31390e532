"""Sequence-to-item pooling: a user's recent item embeddings -> one interest embedding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model_code.config import ConfigError


class MeanPooler(nn.Module):
    """The mean of the context items' embeddings (the report's default)."""

    def forward(self, items: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """items [B, L, D], mask [B, L] (True = a real item) -> [B, D] unit vectors."""
        weights = mask.to(items.dtype).unsqueeze(-1)
        return F.normalize((items * weights).sum(1) / weights.sum(1).clamp(min=1.0), dim=-1)


class SummaryTransformerPooler(nn.Module):
    """A small Transformer over the context items; a learned summary token reads them out."""

    def __init__(self, dim: int, max_length: int = 64, layers: int = 1, heads: int = 4):
        super().__init__()
        self.summary = nn.Parameter(torch.zeros(1, 1, dim))
        self.position = nn.Embedding(max_length + 1, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, items: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, _ = items.shape
        tokens = torch.cat([self.summary.expand(batch, -1, -1), items], dim=1)
        tokens = tokens + self.position(torch.arange(length + 1, device=items.device))
        padding = torch.cat([mask.new_zeros(batch, 1), ~mask.bool()], dim=1).bool()
        return F.normalize(self.encoder(tokens, src_key_padding_mask=padding)[:, 0], dim=-1)


def build_pooler(kind: str, dim: int) -> nn.Module:
    """`mean` or `transformer`."""
    if kind == "mean":
        return MeanPooler()
    if kind == "transformer":
        heads = next(h for h in (8, 6, 4, 2, 1) if dim % h == 0)
        return SummaryTransformerPooler(dim, heads=heads)
    raise ConfigError(f"unknown sequence pooling {kind!r}; choose 'mean' or 'transformer'")
