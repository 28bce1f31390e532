"""The vision shortcut: a linear map from an item's mean tower features into the embedding.

The Perceiver and the fuser's vision path start from random weights, and on our data they take
thousands of steps to reach what a closed-form ridge map from the frozen tower into the frozen
text space gives at once. The shortcut starts there instead: it is set to that ridge solution
before training (`model_code.training.run.fit_closed_form`), and for an item with frames and no
text the fused path enters through a gate that starts at 0, so an image-only item embeds at step 0
exactly as the ridge baseline maps it. Training then keeps the map fixed (`freeze: shortcut`),
opens the gate and trains the fused path from that starting point. An item with frames and text
always weighs its fused path fully (its text is never gated away); an item without frames embeds
through the fuser alone.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class VisionShortcut(nn.Module):
    """embedding = normalize(g * normalize(fused) + normalize(W x + b)) for items with frames,
    where x is the mean of their frames' tower features and g = 1 with text, tanh(gate) without."""

    def __init__(self, feature_dim: int, width: int):
        super().__init__()
        self.linear = nn.Linear(feature_dim, width)
        self.gate = nn.Parameter(torch.zeros(1))  # 1-d: DeepSpeed broadcasts no 0-d tensors

    def forward(
        self,
        fused: torch.Tensor,
        features: torch.Tensor,
        has_frames: torch.Tensor,
        has_text: torch.Tensor,
    ) -> torch.Tensor:
        """fused [B, width] pooled fuser states; features [B, feature_dim] (rows without frames
        are ignored); has_frames / has_text [B] bools -> [B, width] unit vectors."""
        # the gate has the model's dtype; the linear layer may be quantized (no .weight tensor)
        shortcut = F.normalize(self.linear(features.to(self.gate.dtype)), dim=-1)
        weight = torch.where(has_text, torch.ones_like(self.gate), torch.tanh(self.gate))
        mixed = weight[:, None].to(fused.dtype) * F.normalize(fused, dim=-1) + shortcut
        return F.normalize(torch.where(has_frames[:, None], mixed, fused), dim=-1)

    @torch.no_grad()
    def set_ridge(self, features: np.ndarray, targets: np.ndarray, alpha: float) -> None:
        """Set the map to the ridge regression of `targets` on `features` (with an intercept)
        and close the gate."""
        from sklearn.linear_model import Ridge

        fitted = Ridge(alpha=alpha).fit(np.asarray(features, np.float64), targets)
        self.linear.weight.copy_(torch.as_tensor(fitted.coef_, dtype=self.linear.weight.dtype))
        self.linear.bias.copy_(torch.as_tensor(fitted.intercept_, dtype=self.linear.bias.dtype))
        self.gate.zero_()
