from pathlib import Path

import numpy as np
import pytest

from model_code.audio_features import chunk_waveform, mel_filterbank, mel_spectrogram

pytestmark = pytest.mark.numeric_paths  # make test runs these again under other CPU kernels


def test_short_clip_is_repeat_padded():
    chunks = chunk_waveform(np.arange(3, dtype=np.float32), chunk_samples=8, max_chunks=4)
    assert len(chunks) == 1
    assert chunks[0].tolist() == [0, 1, 2, 0, 1, 2, 0, 1]


def test_long_clip_is_split_and_its_tail_repeat_padded():
    chunks = chunk_waveform(np.arange(10, dtype=np.float32), chunk_samples=4, max_chunks=4)
    assert [c.tolist() for c in chunks] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 8, 9]]


def test_very_long_clip_keeps_chunks_spread_over_it():
    chunks = chunk_waveform(np.arange(100, dtype=np.float32), chunk_samples=10, max_chunks=3)
    assert [c[0] for c in chunks] == [0, 40, 90]


def test_empty_waveform_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        chunk_waveform(np.zeros(0, dtype=np.float32), 4, 2)


def test_filterbank_is_slaney_normalised_triangles():
    bank = mel_filterbank(16000, 400, 40)
    assert bank.shape == (40, 201)
    assert (bank >= 0).all()
    freqs = np.linspace(0, 8000, 201)
    peaks = freqs[bank.argmax(axis=1)]
    assert np.all(np.diff(peaks) >= 0)
    # Slaney normalisation: each triangle has area ~1 in Hz units (2 / bandwidth height)
    areas = bank.sum(axis=1) * (freqs[1] - freqs[0])
    assert np.allclose(areas[5:], 1.0, atol=0.1)


def test_a_tone_lights_up_the_mel_band_of_its_frequency():
    rate = 16000
    tone = np.sin(2 * np.pi * 1000 * np.arange(rate) / rate).astype(np.float32)
    mel = mel_spectrogram(tone, rate, 400, 160, 40, log=False)
    assert mel.shape == (101, 40)
    band = mel.mean(axis=0).argmax()
    centre_freqs = np.linspace(0, 8000, 201)[mel_filterbank(rate, 400, 40).argmax(axis=1)]
    assert abs(centre_freqs[band] - 1000) < 150
    log_mel = mel_spectrogram(tone, rate, 400, 160, 40, log=True)
    assert np.allclose(log_mel, np.log(mel + 1e-6), atol=1e-4)


def test_features_match_those_the_hand_written_code_gave():
    """transformers.audio_utils computes the features; they are those of the numpy code it
    replaced (tests/fixtures/mel_reference.npz, made by it), so the audio tower's inputs hold."""
    reference = np.load(Path(__file__).parent / "fixtures" / "mel_reference.npz")
    rate = 16000
    t = np.arange(int(1.3 * rate)) / rate
    noise = np.random.default_rng(0).standard_normal(t.size)
    clip = (0.5 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.1 * noise).astype(np.float32)
    np.testing.assert_allclose(mel_filterbank(rate, 400, 40), reference["filters"], atol=1e-8)
    mel = mel_spectrogram(clip, rate, 400, 160, 40, log=False)
    assert mel.shape == reference["mel"].shape == (131, 40)
    np.testing.assert_allclose(mel, reference["mel"], rtol=1e-4, atol=1e-6 * reference["mel"].max())
    log_mel = mel_spectrogram(clip, rate, 400, 160, 40, log=True)
    np.testing.assert_allclose(log_mel, reference["log_mel"], atol=1e-4)
