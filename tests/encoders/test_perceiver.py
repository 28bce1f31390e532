import torch

from model_code.encoders.perceiver import VisualPerceiver


def test_output_size_does_not_depend_on_frames():
    perceiver = VisualPerceiver(dim=16, num_latents=3, layers=2, heads=2, max_frames=4).eval()
    patches = torch.randn(5, 6, 16)
    out = perceiver(patches, torch.tensor([1, 4]))
    assert out.shape == (2, 3, 16)


def test_padding_frames_do_not_leak_into_an_item():
    perceiver = VisualPerceiver(dim=16, num_latents=3, layers=2, heads=2, max_frames=4).eval()
    patches = torch.randn(4, 6, 16)
    with torch.no_grad():
        alone = perceiver(patches[:1], torch.tensor([1]))
        batched = perceiver(patches, torch.tensor([1, 3]))
        changed = patches.clone()
        changed[2] = torch.randn(6, 16)
        other_changed = perceiver(changed, torch.tensor([1, 3]))
    assert torch.allclose(alone[0], batched[0], atol=1e-5)
    assert torch.allclose(batched[0], other_changed[0], atol=1e-6)
    assert not torch.allclose(batched[1], other_changed[1])


def test_frame_order_matters():
    perceiver = VisualPerceiver(dim=16, num_latents=3, layers=1, heads=2, max_frames=4).eval()
    patches = torch.randn(2, 6, 16)
    with torch.no_grad():
        forward = perceiver(patches, torch.tensor([2]))
        backward = perceiver(patches.flip(0), torch.tensor([2]))
    assert not torch.allclose(forward, backward)
