"""aisfx's sound-effect encoder: its features and embeddings against those of the original package
(tests/fixtures/aisfx_reference.npz: Tux Paint's bathyscape.ogg at 11,025 Hz as int16, its log-mel
blocks and embeddings from aisfx 0.1.2's librosa code path with the transpose fix, the clip
resampled to 44.1 kHz with resample_poly), and the safe conversion of its checkpoint."""

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from model_code.encoders import aisfx
from model_code.encoders.aisfx import (
    CHECKPOINT_SHA256,
    CONVERTED_SHA256,
    AisfxNet,
    aisfx_features,
    frame_blocks,
    load_aisfx_net,
    mel_filters,
)
from model_code.paths import package_dir
from model_code.weights import ChecksumMismatch, WeightsNotFound, file_sha256, resolve_weights

REFERENCE = Path(__file__).parent.parent / "fixtures" / "aisfx_reference.npz"
NOT_INSTALLED = (
    "aisfx 0.1.2's converted weights are not installed: run `pip install --no-deps --target "
    "<environment>/data-wheels aisfx==0.1.2` and `python -m model_code.encoders.aisfx`"
)


@pytest.fixture(scope="module")
def reference():
    data = np.load(REFERENCE)
    return {
        "waveform": data["waveform"].astype(np.float32) / 32768,
        "sample_rate": int(data["sample_rate"]),
        "features": data["features"],
        "embeddings": data["embeddings"],
    }


def _forbid_torch_load(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load must not be called here")

    monkeypatch.setattr(torch, "load", refuse)


@pytest.mark.numeric_paths
def test_features_match_the_package(reference):
    features = aisfx_features(reference["waveform"], reference["sample_rate"])
    assert features.shape == reference["features"].shape == (2, 100, 96)
    np.testing.assert_allclose(features, reference["features"], rtol=1e-4, atol=1e-6)


@pytest.mark.numeric_paths
def test_embeddings_match_the_package(reference):
    try:
        net = load_aisfx_net(resolve_weights("package:aisfx"))
    except WeightsNotFound:
        pytest.skip(NOT_INSTALLED)
    with torch.no_grad():
        embeddings = net(torch.from_numpy(reference["features"])).numpy()
    assert embeddings.shape == (2, 512)
    np.testing.assert_allclose(embeddings, reference["embeddings"], rtol=1e-4, atol=1e-4)


def test_mel_filters_each_sum_to_one():
    filters = mel_filters()
    assert filters.shape == (1025, 96)
    np.testing.assert_allclose(filters.sum(axis=0), 1.0, rtol=1e-6)


def test_blocks_drop_a_partial_last_block_and_pad_a_short_clip():
    frames = np.arange(150 * 2, dtype=np.float32).reshape(150, 2)
    blocks = frame_blocks(frames)
    assert blocks.shape == (2, 100, 2)
    np.testing.assert_array_equal(blocks[1], frames[50:150])
    assert frame_blocks(frames[:149]).shape == (1, 100, 2)
    blocks = frame_blocks(frames[:30])
    assert blocks.shape == (1, 100, 2)
    np.testing.assert_array_equal(blocks[0, :30], frames[:30])
    assert not blocks[0, 30:].any()


def test_a_very_short_clip_is_one_zero_padded_block(reference):
    clip = reference["waveform"][: int(0.3 * reference["sample_rate"])]
    features = aisfx_features(clip, reference["sample_rate"])
    frames = 1 + int(clip.size * 44_100 / reference["sample_rate"]) // 1024
    assert features.shape == (1, 100, 96)
    assert features[0, :frames].any(axis=1).all()
    assert not features[0, frames:].any()


@pytest.mark.parametrize(("seconds", "blocks"), [(0.3, 1), (2.0, 1), (12.0, 9)])
def test_shapes(seconds, blocks):
    rate = 16_000
    clip = np.random.default_rng(0).standard_normal(int(seconds * rate)).astype(np.float32)
    features = aisfx_features(clip, rate)
    assert features.shape == (blocks, 100, 96)
    with torch.no_grad():
        embeddings = AisfxNet().eval()(torch.from_numpy(features))
    assert embeddings.shape == (blocks, 512)


def test_conversion_refuses_a_checkpoint_with_another_hash(tmp_path, monkeypatch):
    _forbid_torch_load(monkeypatch)
    source, target = tmp_path / "checkpoint.pth", tmp_path / "out.safetensors"
    source.write_bytes(b"not aisfx's checkpoint")
    with pytest.raises(ChecksumMismatch, match=CHECKPOINT_SHA256) as error:
        aisfx.convert_checkpoint(source, target)
    assert file_sha256(source) in str(error.value)
    assert not target.exists()


def test_weights_load_from_safetensors_without_torch_load(tmp_path, monkeypatch):
    _forbid_torch_load(monkeypatch)
    state = AisfxNet().state_dict()
    save_file(state, str(tmp_path / "net.safetensors"))
    net = load_aisfx_net(tmp_path / "net.safetensors")
    assert not net.training
    assert torch.equal(net.conv_block4.conv2.weight, state["conv_block4.conv2.weight"])


def test_conversion_unpickles_only_with_weights_only_and_is_idempotent(tmp_path, monkeypatch):
    folder = package_dir("aisfx")
    if folder is None or not (folder / "models" / "checkpoint.pth").is_file():
        pytest.skip("aisfx 0.1.2 is not installed in the data-wheels folder")
    models = tmp_path / "aisfx" / "models"
    models.mkdir(parents=True)
    (models / "checkpoint.pth").symlink_to(folder / "models" / "checkpoint.pth")
    calls = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    aisfx.main([str(tmp_path)])
    assert calls == [True]
    assert file_sha256(models / "embedding_net.safetensors") == CONVERTED_SHA256
    aisfx.main([str(tmp_path)])
    assert calls == [True]
