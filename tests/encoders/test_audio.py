from dataclasses import replace

import numpy as np
import pytest
import torch

from model_code.audio_features import AudioFeaturizer
from model_code.config import AudioConfig, ConfigError, load_preset
from model_code.encoders.aisfx import load_aisfx_net
from model_code.encoders.audio import AudioEncoder, GE2ETower
from model_code.weights import WeightsNotFound, resolve_weights


def test_one_token_per_clip_is_the_mean_over_its_chunks():
    encoder = AudioEncoder(load_preset("tiny").audio, width=8).eval()
    features = torch.randn(3, 50, 40)
    with torch.no_grad():
        per_chunk = encoder.tower(features)
        tokens = encoder(features, torch.tensor([1, 2]))
        expected = encoder.adapter(torch.stack([per_chunk[0], per_chunk[1:].mean(0)]))
    assert tokens.shape == (2, 1, 8)
    assert torch.allclose(tokens[:, 0], expected, atol=1e-6)


def test_ge2e_weights_load_from_the_installed_package():
    config = load_preset("mini").audio
    tower = GE2ETower(config).eval()
    featurizer = AudioFeaturizer(config)
    rate = config.sample_rate
    t = np.arange(2 * rate) / rate
    low = featurizer(np.sin(2 * np.pi * 150 * t).astype(np.float32))
    with torch.no_grad():
        out = tower(torch.from_numpy(low)[None])
    assert out.shape == (1, 256)
    assert torch.allclose(out.norm(dim=-1), torch.ones(1))
    random_tower = GE2ETower(load_preset("tiny").audio.__class__(kind="ge2e")).eval()
    assert not torch.allclose(tower.linear.weight, random_tower.linear.weight)


def test_unknown_audio_kind():
    config = load_preset("tiny").audio
    config.kind = "wav2vec"
    with pytest.raises(ConfigError, match="unknown audio kind 'wav2vec'"):
        AudioEncoder(config, width=8)


def test_aisfx_hears_a_chunk_as_one_block_of_its_frames():
    config = AudioConfig(kind="aisfx", sample_rate=44100, chunk_seconds=2.3, max_chunks=3)
    featurizer = AudioFeaturizer(config)
    rate = config.sample_rate
    chunk = np.sin(2 * np.pi * 440 * np.arange(featurizer.chunk_samples) / rate)
    features = featurizer(chunk.astype(np.float32))
    assert features.shape == (100, 96)  # 2.3 s at 44.1 kHz: exactly one block
    encoder = AudioEncoder(config, width=8).eval()
    with torch.no_grad():
        tokens = encoder(torch.from_numpy(np.stack([features, features])), torch.tensor([2]))
    assert encoder.tower.out_dim == 512 and tokens.shape == (1, 1, 8)
    try:
        weights = resolve_weights("package:aisfx")
    except WeightsNotFound:
        pytest.skip("aisfx is not installed (make setup)")
    trained = AudioEncoder(replace(config, weights="package:aisfx"), width=8).eval()
    with torch.no_grad():
        vector = trained.tower(torch.from_numpy(features)[None])
        assert torch.equal(vector, load_aisfx_net(weights)(torch.from_numpy(features)[None]))
