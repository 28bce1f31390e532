import pytest
import torch

from model_code.config import ConfigError, load_preset
from model_code.encoders.vision import EfficientNetLiteTower, VisionEncoder

pytestmark = pytest.mark.numeric_paths  # make test runs these again under other CPU kernels


def test_efficientnet_patch_tokens():
    tower = EfficientNetLiteTower(load_preset("tiny").vision).eval()
    with torch.no_grad():
        tokens = tower(torch.randn(2, 3, 64, 64))
    assert tokens.shape == (2, 4, 1280)  # 2x2 feature map cells at 64 px


def test_each_frame_is_encoded_on_its_own():
    encoder = VisionEncoder(load_preset("tiny").vision, width=16).eval()
    frames = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        together = encoder.tower(frames)
        alone = encoder.tower(frames[1:2])
    assert torch.allclose(together[1], alone[0], rtol=1e-4, atol=1e-4)  # tokens of order 1


def test_a_cpu_batch_goes_through_in_passes_with_the_same_tokens(monkeypatch):
    from model_code.encoders import vision

    tower = EfficientNetLiteTower(load_preset("tiny").vision).eval()
    frames = torch.randn(10, 3, 64, 64)
    passes, extract = [], tower.net.extract_features

    def counted(pixels):
        passes.append(len(pixels))
        return extract(pixels)

    monkeypatch.setattr(tower.net, "extract_features", counted)
    with torch.no_grad():
        chunked = tower(frames)
        monkeypatch.setattr(vision, "CPU_FRAMES_PER_PASS", 64)
        whole = tower(frames)
    assert passes == [4, 4, 2, 10]
    assert torch.allclose(chunked, whole, atol=1e-5)


def test_unknown_vision_kind():
    config = load_preset("tiny").vision
    config.kind = "resnet"
    with pytest.raises(ConfigError, match="unknown vision kind 'resnet'"):
        VisionEncoder(config, width=16)
