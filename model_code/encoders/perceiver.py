"""Visual Perceiver: learnable latent queries that read a variable number of patch tokens."""

from __future__ import annotations

import torch
from torch import nn


class PerceiverLayer(nn.Module):
    """Latents cross-attend to the inputs, then self-attend; pre-norm with residuals."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.cross_norm = nn.LayerNorm(dim)
        self.input_norm = nn.LayerNorm(dim)
        self.cross_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.self_norm = nn.LayerNorm(dim)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, latents: torch.Tensor, inputs: torch.Tensor, padding: torch.Tensor):
        keys = self.input_norm(inputs)
        query = self.cross_norm(latents)
        latents = (
            latents
            + self.cross_attention(query, keys, keys, key_padding_mask=padding, need_weights=False)[
                0
            ]
        )
        query = self.self_norm(latents)
        latents = latents + self.self_attention(query, query, query, need_weights=False)[0]
        return latents + self.mlp(self.mlp_norm(latents))


class VisualPerceiver(nn.Module):
    """Compress the patch tokens of all of an item's frames into `num_latents` tokens."""

    def __init__(self, dim: int, num_latents: int, layers: int, heads: int, max_frames: int):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(num_latents, dim) * 0.02)
        self.frame_position = nn.Embedding(max_frames, dim)
        self.layers = nn.ModuleList(PerceiverLayer(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, patches: torch.Tensor, frame_counts: torch.Tensor) -> torch.Tensor:
        """patches [frames_total, P, dim] of all items' frames in order; frame_counts [items].

        Returns [items, num_latents, dim].
        """
        n_items = frame_counts.numel()
        max_frames = int(frame_counts.max())
        n_patches, dim = patches.shape[1], patches.shape[2]
        grouped = patches.new_zeros(n_items, max_frames, n_patches, dim)
        padding = torch.ones(
            n_items, max_frames, n_patches, dtype=torch.bool, device=patches.device
        )
        start = 0
        for index, count in enumerate(frame_counts.tolist()):
            grouped[index, :count] = patches[start : start + count]
            padding[index, :count] = False
            start += count
        positions = self.frame_position(torch.arange(max_frames, device=patches.device))
        grouped = (grouped + positions[None, :, None, :]).reshape(n_items, -1, dim)
        latents = self.latents.expand(n_items, -1, -1)
        for layer in self.layers:
            latents = layer(latents, grouped, padding.reshape(n_items, -1))
        return self.norm(latents)
