"""Media files of the prepared data sets: pictures fitted on white, audio decoded once to WAV.

Each is made from a source file and cached under a key of its bytes and the settings that shape
it (`cached_copy`), so a second ingest of the same packages copies instead of decoding again.
Prepared recordings are 16-bit mono WAV at one of `model_code.media.SAMPLE_RATES` (a source at
another rate, such as 22,254 Hz, is resampled to the next one above). Synthesized speech, thousands
of utterances, is kept as mono OGG Vorbis at 16 kHz (a tenth of the WAV's bytes; speech towers read
16 kHz).
"""

from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image
from scipy.io import wavfile

from model_code.data.storage import replace_atomically
from model_code.media import SAMPLE_RATES, decode_audio, resample

IMAGE_SIZE = 224
MEDIA_VERSION = 1  # bump when a picture or a WAV is made differently
SILENT_RMS = 0.001  # -60 dBFS: a recording below it is silence (the validation policy's floor)


@dataclass(frozen=True)
class AudioFacts:
    """What decoding one audio file told: its rate, length and levels (for the manifest)."""

    sample_rate: int
    seconds: float
    peak: float
    rms: float

    @property
    def silent(self) -> bool:
        return self.rms < SILENT_RMS


def cached_copy(cache: Path | None, key: str, target: Path, make: Callable[[Path], None]) -> None:
    """Write `target` with `make(path)`, or copy it from `cache` where `key` was made before."""
    if cache is None:
        replace_atomically(target, make)
        return
    cached = cache / key
    if not cached.is_file():
        replace_atomically(cached, make)
    replace_atomically(target, lambda tmp: shutil.copyfile(cached, tmp))


def media_key(source: bytes, kind: str) -> str:
    """A cache key of a source file's bytes, the kind of file made from it and MEDIA_VERSION."""
    digest = hashlib.sha256(f"{kind}:{MEDIA_VERSION}:{IMAGE_SIZE}:".encode())
    digest.update(source)
    return f"{digest.hexdigest()}.{kind}"


def fit_on_white(image: Image.Image, size: int = IMAGE_SIZE) -> Image.Image:
    """The picture scaled to fit a `size` x `size` white square, centred, aspect kept, as RGB
    (transparent parts white)."""
    rgba = image.convert("RGBA")
    scale = size / max(rgba.size)
    width, height = max(1, round(rgba.width * scale)), max(1, round(rgba.height * scale))
    resized = rgba.resize((width, height), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (size, size), "white")
    canvas.alpha_composite(resized, ((size - width) // 2, (size - height) // 2))
    return canvas.convert("RGB")


def wav_bytes(waveform: np.ndarray, rate: int) -> bytes:
    """A mono waveform in [-1, 1] as 16-bit PCM WAV at a supported rate (resampled up to the next
    one when `rate` is not)."""
    target = next((r for r in SAMPLE_RATES if r >= rate), SAMPLE_RATES[-1])
    if target != rate:
        waveform = resample(waveform, rate, target)
    pcm = np.round(np.clip(waveform, -1.0, 1.0) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    wavfile.write(buffer, target, pcm)
    return buffer.getvalue()


def speech_ogg_bytes(waveform: np.ndarray, rate: int, speech_rate: int = 16000) -> bytes:
    """A mono waveform in [-1, 1] as OGG Vorbis at `speech_rate`."""
    if rate != speech_rate:
        waveform = resample(waveform, rate, speech_rate)
    return ogg_bytes(np.clip(waveform, -1.0, 1.0), speech_rate)


def ogg_bytes(samples: np.ndarray, rate: int) -> bytes:
    """Mono samples as OGG Vorbis, encoded a second at a time: libsndfile's Vorbis encoder
    crashes the process on one write of a few minutes of audio."""
    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", rate, 1, format="OGG", subtype="VORBIS") as stream:
        for start in range(0, len(samples), rate):
            stream.write(samples[start : start + rate])
    return buffer.getvalue()


def decode_to_wav(source: Path, target: Path, cache: Path | None) -> AudioFacts:
    """Decode `source` (WAV or OGG Vorbis) to `target` as prepared audio; MediaError when it does
    not decode. The facts are read back from the WAV written."""
    data = source.read_bytes()

    def make(path: Path) -> None:
        waveform, rate = decode_audio(data, str(source), any_rate=True)
        path.write_bytes(wav_bytes(waveform, rate))

    cached_copy(cache, media_key(data, "wav"), target, make)
    return audio_facts(target)


def audio_facts(path: Path) -> AudioFacts:
    """Rate, seconds, peak and RMS level of a prepared WAV or OGG file."""
    waveform, rate = decode_audio(Path(path).read_bytes(), str(path))
    rms = float(np.sqrt(np.mean(waveform**2))) if waveform.size else 0.0
    peak = float(np.abs(waveform).max()) if waveform.size else 0.0
    return AudioFacts(int(rate), waveform.size / rate, peak, rms)
