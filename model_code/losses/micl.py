"""Modality-specific in-context loss (mICL): one InfoNCE per single-modality embedding."""

from torch import Tensor

from model_code.losses.infonce import info_nce


def micl(
    visual_query: Tensor,
    visual_target: Tensor,
    text_query: Tensor,
    text_target: Tensor,
    temperature: Tensor | float,
    visual_valid: Tensor | None = None,
    text_valid: Tensor | None = None,
) -> Tensor:
    """InfoNCE on the visual-only embeddings plus InfoNCE on the text-only ones, each masked."""
    visual = info_nce(visual_query, visual_target, temperature, visual_valid)
    text = info_nce(text_query, text_target, temperature, text_valid)
    return visual + text
