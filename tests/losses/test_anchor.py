import math

import pytest
import torch

from model_code.losses import anchor_loss


def test_is_the_mean_cosine_distance_and_ignores_scale():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    embeddings = torch.tensor([[3.0, 0.0], [1.0, 1.0]])  # same direction; 45 degrees off
    expected = (0.0 + (1 - math.cos(math.radians(45)))) / 2
    assert anchor_loss(embeddings, anchors).item() == pytest.approx(expected, rel=1e-6)
    assert anchor_loss(anchors * 5, anchors).item() == pytest.approx(0.0, abs=1e-7)


def test_gradient_turns_embeddings_towards_their_anchors():
    anchors = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    embeddings = torch.randn(4, 8, requires_grad=True)
    before = anchor_loss(embeddings, anchors)
    before.backward()
    with torch.no_grad():
        after = anchor_loss(embeddings - 0.1 * embeddings.grad, anchors)
    assert after < before


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="embeddings"):
        anchor_loss(torch.zeros(3, 4), torch.zeros(2, 4))
