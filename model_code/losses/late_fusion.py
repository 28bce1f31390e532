"""Late fusion: a learned gate mixes visual and text embeddings; InfoNCE on the fused vector."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model_code.losses.infonce import check_pair, info_nce


class LateFusionGate(nn.Module):
    """g = sigmoid(W [v; n] + b); fused = normalise(g * v + (1 - g) * n)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.proj = nn.Linear(2 * dim, dim)

    def forward(self, visual: Tensor, text: Tensor) -> Tensor:
        check_pair(visual, text, ("visual", "text"))
        if visual.shape[-1] != self.dim:
            raise ValueError(f"gate dim is {self.dim}, got embeddings of dim {visual.shape[-1]}")
        gate = torch.sigmoid(self.proj(torch.cat([visual, text], dim=-1)))
        return F.normalize(gate * visual + (1.0 - gate) * text, dim=-1)


def late_fusion_loss(
    gate: LateFusionGate,
    visual_query: Tensor,
    text_query: Tensor,
    visual_target: Tensor,
    text_target: Tensor,
    temperature: Tensor | float,
) -> Tensor:
    """InfoNCE between the gated fusions of the query and of the target."""
    return info_nce(gate(visual_query, text_query), gate(visual_target, text_target), temperature)
