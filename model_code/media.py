"""Decoding media references (file paths or base64 data URLs) into images and waveforms."""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
import wave
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy.io import wavfile
from scipy.signal import resample_poly

# Checked on the decoded header, before any pixel or sample is decoded, resized or resampled: the
# cost of an item is bounded by these, not by its byte size (a 100-byte WAV header can claim a
# 20 MHz rate, a small PNG a 1 x 40,000 strip).
MAX_IMAGE_PIXELS = 16_000_000  # 4,000 x 4,000; the model reads 224 x 224
MAX_ASPECT_RATIO = 20.0  # longer side / shorter side
SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
MAX_AUDIO_SECONDS = 600.0  # the audio tower reads at most a minute of it, spread over the clip
_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w-]+=[\w.-]+)*)(?P<b64>;base64)?,"
)
_AUDIO_SIGNATURES = {b"ID3": "MP3", b"\xff\xfb": "MP3", b"OggS": "Ogg", b"fLaC": "FLAC"}


class MediaError(ValueError):
    """A media reference that cannot be decoded; the message says why."""


def read_bytes(ref: str, kind: str) -> bytes:
    """Return the raw bytes behind a data URL or a file path."""
    if ref.startswith("data:"):
        return _decode_data_url(ref, kind)
    path = Path(ref)
    if not path.is_file():
        raise MediaError(f"{kind} file not found: {ref}")
    return path.read_bytes()


def load_image(ref: str) -> Image.Image:
    """Decode an image (any format Pillow reads) to RGB; transparency is composited on white."""
    data = read_bytes(ref, "image")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            _check_image_size(probe.width, probe.height)
            probe.load()
            image = probe.copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise MediaError(f"not a readable image ({_describe(ref)}): {error}") from None
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def load_audio(ref: str, sample_rate: int) -> np.ndarray:
    """Decode a WAV file to a mono float32 waveform in [-1, 1] at `sample_rate`."""
    data = read_bytes(ref, "audio")
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        found = next((n for sig, n in _AUDIO_SIGNATURES.items() if data.startswith(sig)), None)
        hint = f" (looks like {found})" if found else ""
        raise MediaError(f"audio must be a WAV file{hint}: {_describe(ref)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            rate, samples = wavfile.read(io.BytesIO(data))
    except (ValueError, wave.Error, EOFError) as error:
        raise MediaError(f"unreadable WAV audio ({_describe(ref)}): {error}") from None
    if rate not in SAMPLE_RATES:
        raise MediaError(f"audio sample rate {rate} Hz is not supported; use one of {SAMPLE_RATES}")
    if len(samples) > MAX_AUDIO_SECONDS * rate:
        seconds = len(samples) / rate
        raise MediaError(f"audio is {seconds:.0f} s long; at most {MAX_AUDIO_SECONDS:.0f} s")
    if samples.dtype.kind == "f" and not np.isfinite(samples).all():
        raise MediaError(f"audio holds non-finite samples (NaN or infinity): {_describe(ref)}")
    waveform = _to_float(samples)
    if waveform.ndim == 2:
        waveform = waveform.mean(axis=1)
    if waveform.size == 0:
        raise MediaError(f"audio has no samples: {_describe(ref)}")
    if rate != sample_rate:
        divisor = np.gcd(rate, sample_rate)
        waveform = resample_poly(waveform, sample_rate // divisor, rate // divisor)
    return waveform.astype(np.float32)


def to_data_url(data: bytes, mime: str) -> str:
    """Encode bytes as a base64 data URL."""
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _decode_data_url(ref: str, kind: str) -> bytes:
    match = _DATA_URL.match(ref)
    if not match:
        raise MediaError(f"malformed {kind} data URL (expected data:<mime>;base64,<data>)")
    mime = match.group("mime") or ""
    expected = "audio/" if kind == "audio" else "image/"
    if mime and not mime.startswith(expected):
        raise MediaError(f"{kind} data URL has media type {mime!r}, expected {expected}*")
    if not match.group("b64"):
        raise MediaError(f"{kind} data URL must be base64-encoded")
    try:
        return base64.b64decode(ref[match.end() :], validate=True)
    except (binascii.Error, ValueError):
        raise MediaError(f"{kind} data URL holds invalid base64") from None


def _check_image_size(width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise MediaError(
            f"image is too large ({width}x{height} pixels; at most {MAX_IMAGE_PIXELS:,})"
        )
    if max(width, height) > MAX_ASPECT_RATIO * max(min(width, height), 1):
        raise MediaError(
            f"image is {width}x{height} pixels: the long side may be at most "
            f"{MAX_ASPECT_RATIO:.0f} times the short one"
        )


def _to_float(samples: np.ndarray) -> np.ndarray:
    if samples.dtype == np.uint8:
        return (samples.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(samples.dtype, np.integer):
        return samples.astype(np.float32) / float(np.iinfo(samples.dtype).max)
    return np.clip(samples.astype(np.float32), -1.0, 1.0)


def _describe(ref: str) -> str:
    return "data URL" if ref.startswith("data:") else ref
