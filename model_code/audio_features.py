"""Audio features: (log-)mel spectrograms and the 10 s chunking of clips."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from model_code.config import AudioConfig


def chunk_waveform(waveform: np.ndarray, chunk_samples: int, max_chunks: int) -> list[np.ndarray]:
    """Split a clip into chunks of exactly `chunk_samples`.

    A clip shorter than one chunk is repeat-padded; a longer one is split, its last partial
    chunk repeat-padded too; at most `max_chunks` chunks, spread evenly over a long clip.
    """
    if waveform.size == 0:
        raise ValueError("empty waveform")
    n_chunks = max(1, int(np.ceil(waveform.size / chunk_samples)))
    chunks = []
    for index in _spread(n_chunks, max_chunks):
        piece = waveform[index * chunk_samples : (index + 1) * chunk_samples]
        repeats = int(np.ceil(chunk_samples / piece.size))
        chunks.append(np.tile(piece, repeats)[:chunk_samples])
    return chunks


def mel_spectrogram(
    waveform: np.ndarray,
    sample_rate: int,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    log: bool,
) -> np.ndarray:
    """Power mel spectrogram [frames, n_mels] (Hann window, centred frames, Slaney mel scale).

    With `log`, returns log(mel + 1e-6).
    """
    padded = np.pad(waveform, n_fft // 2, mode="reflect")
    n_frames = 1 + (padded.size - n_fft) // hop_length
    strides = (padded.strides[0] * hop_length, padded.strides[0])
    frames = np.lib.stride_tricks.as_strided(padded, (n_frames, n_fft), strides)
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    mel = power @ mel_filterbank(sample_rate, n_fft, n_mels).T
    if log:
        mel = np.log(mel + 1e-6)
    return mel.astype(np.float32)


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-normalised triangular mel filters [n_mels, n_fft // 2 + 1]."""
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_points = np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2)
    hz_points = _mel_to_hz(mel_points)
    lower = (fft_freqs[None, :] - hz_points[:-2, None]) / np.diff(hz_points)[:-1, None]
    upper = (hz_points[2:, None] - fft_freqs[None, :]) / np.diff(hz_points)[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_points[2:] - hz_points[:-2]))[:, None]
    return weights.astype(np.float32)


def _spread(n_chunks: int, max_chunks: int) -> list[int]:
    if n_chunks <= max_chunks:
        return list(range(n_chunks))
    return sorted({int(round(i)) for i in np.linspace(0, n_chunks - 1, max_chunks)})


_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz):
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    return np.where(
        hz >= _MIN_LOG_HZ,
        _MIN_LOG_MEL + np.log(np.maximum(hz, 1e-10) / _MIN_LOG_HZ) / _LOG_STEP,
        linear,
    )


def _mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(
        mel >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOG_STEP * (mel - _MIN_LOG_MEL)), _F_SP * mel
    )


class AudioFeaturizer:
    """Turns one chunk into the features its audio tower was trained on [frames, mels].

    GE2E-style towers take the mel spectrogram computed here; CLAP towers take CLAP's own
    feature extractor (fbank settings of the pretrained HTSAT).
    """

    def __init__(self, config: AudioConfig):
        self.config = config
        self._clap = None
        if config.kind == "clap":
            from transformers import ClapFeatureExtractor

            self._clap = ClapFeatureExtractor(
                feature_size=config.n_mels,
                sampling_rate=config.sample_rate,
                hop_length=config.hop_length,
                fft_window_size=config.n_fft,
                max_length_s=int(config.chunk_seconds),
            )

    @property
    def chunk_samples(self) -> int:
        return int(self.config.chunk_seconds * self.config.sample_rate)

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        c = self.config
        if self._clap is not None:
            extracted = self._clap(chunk, sampling_rate=c.sample_rate, return_tensors="np")
            return extracted["input_features"][0, 0]
        return mel_spectrogram(chunk, c.sample_rate, c.n_fft, c.hop_length, c.n_mels, c.log_mel)
