"""The frozen-tower feature cache: same outputs, fewer tower calls, never used while training."""

import torch
from torch import nn

from model_code.encoders.feature_cache import TowerFeatureCache
from model_code.factory import create_model


class CountingTower(nn.Module):
    """A small conv tower that counts the frames it has encoded."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 4, stride=4)
        self.frames = 0

    def forward(self, pixels):
        self.frames += len(pixels)
        return self.conv(pixels).flatten(2).transpose(1, 2)


def test_hits_return_what_misses_returned_and_skip_the_tower(tmp_path):
    tower, cache = CountingTower().eval(), TowerFeatureCache(tmp_path)
    pixels = torch.randn(4, 3, 16, 16)
    with torch.inference_mode():
        first = cache.features(tower, pixels)
        again = cache.features(tower, pixels[[2, 0]])
    assert tower.frames == 4
    assert torch.equal(again, first[[2, 0]])
    expected = tower(pixels).detach().half().float()
    assert torch.equal(first, expected)
    assert (cache.hits, cache.misses) == (2, 4)


def test_the_folder_serves_a_new_process(tmp_path):
    tower = CountingTower().eval()
    pixels = torch.randn(3, 3, 16, 16)
    with torch.inference_mode():
        first = TowerFeatureCache(tmp_path).features(tower, pixels)
        tower.frames = 0
        second = TowerFeatureCache(tmp_path).features(tower, pixels)
    assert tower.frames == 0
    assert torch.equal(first, second)


def test_other_weights_miss(tmp_path):
    tower, cache = CountingTower().eval(), TowerFeatureCache(tmp_path)
    pixels = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        cache.features(tower, pixels)
        tower.conv.weight.add_(1.0)
        changed = cache.features(tower, pixels)
    assert tower.frames == 4
    assert torch.allclose(changed, tower(pixels).half().float())


def test_memory_is_bounded():
    tower, cache = CountingTower().eval(), TowerFeatureCache(max_entries=2)
    with torch.no_grad():
        cache.features(tower, torch.randn(5, 3, 16, 16))
    assert len(cache.memory) == 2


def test_the_model_uses_the_cache_only_for_a_frozen_tower(items, tmp_path):
    model, processor = create_model("tiny")  # its own: training mode moves batch-norm statistics
    model.eval()
    inputs = processor.collate(
        [processor.prepare(i) for i in items], processor.instruction("target")
    )
    with torch.inference_mode():
        plain = model(inputs)
    model.cache_tower_features(tmp_path)
    with torch.inference_mode():
        cached = model(inputs)
    cache = model.vision.feature_cache
    assert cache.misses > 0 and torch.allclose(cached, plain, atol=1e-3)
    model.vision.tower.requires_grad_(False)
    loss = model(inputs).sum()  # frozen tower, cached features, gradient to the rest
    loss.backward()
    assert cache.hits > 0
    assert model.vision.projection.weight.grad is not None
    counts = (cache.hits, cache.misses)
    model.vision.tower.train()  # training mode: batch statistics, so no cache
    model(inputs)
    assert (cache.hits, cache.misses) == counts
