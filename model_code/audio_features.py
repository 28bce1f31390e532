"""Audio features: (log-)mel spectrograms and the 10 s chunking of clips."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

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
    """Power mel spectrogram [frames, n_mels] (periodic Hann window, centred reflect-padded
    frames, Slaney mel scale and norm), from `transformers.audio_utils`. With `log`, returns
    log(mel + 1e-6)."""
    mel = spectrogram(
        np.asarray(waveform, dtype=np.float32),
        _window(n_fft),
        frame_length=n_fft,
        hop_length=hop_length,
        power=2.0,
        center=True,
        pad_mode="reflect",
        mel_filters=mel_filterbank(sample_rate, n_fft, n_mels).T,
    ).T
    if log:
        mel = np.log(mel + 1e-6)
    return mel.astype(np.float32)


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-normalised triangular mel filters [n_mels, n_fft // 2 + 1] over 0 Hz to Nyquist."""
    filters = mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1,
        num_mel_filters=n_mels,
        min_frequency=0.0,
        max_frequency=sample_rate / 2,
        sampling_rate=sample_rate,
        norm="slaney",
        mel_scale="slaney",
    )
    return filters.T.astype(np.float32)


@lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    return window_function(n_fft, "hann")


def _spread(n_chunks: int, max_chunks: int) -> list[int]:
    if n_chunks <= max_chunks:
        return list(range(n_chunks))
    return sorted({int(round(i)) for i in np.linspace(0, n_chunks - 1, max_chunks)})


class AudioFeaturizer:
    """Turns one chunk into the features its audio tower was trained on [frames, mels].

    GE2E-style towers take the mel spectrogram computed here; CLAP towers take CLAP's own
    feature extractor (fbank settings of the pretrained HTSAT); aisfx its own normalised log-mel
    frames (a chunk of `chunk_seconds` 2.3 at 44.1 kHz is one block of its 100 frames).
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
        if c.kind == "aisfx":  # its own log-mel scale; a chunk is one block of its frames
            from model_code.encoders.aisfx import aisfx_features

            return aisfx_features(chunk, c.sample_rate)[0]
        if self._clap is not None:
            extracted = self._clap(chunk, sampling_rate=c.sample_rate, return_tensors="np")
            return extracted["input_features"][0, 0]
        return mel_spectrogram(chunk, c.sample_rate, c.n_fft, c.hop_length, c.n_mels, c.log_mel)
