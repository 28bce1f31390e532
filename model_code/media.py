"""Decoding media references (file paths or base64 data URLs) into images and waveforms.

Audio is WAV or OGG Vorbis. A WAV header states its length, so it is checked before any sample is
decoded. An OGG stream's length is its last page's granule position, which anyone can write: a
stream claiming more than the bound is refused before decoding, and the rest is decoded a second at
a time and stopped as soon as what was decoded passes the bound or the length the stream claimed
(`declared_samples`, which the server's cost bound weighs it by): its cost is bounded by samples
decoded, never by its size.
"""

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
ANY_RATE = (4000, 192000)  # what a packaged source may use (Tux Paint has 5,000 and 22,254 Hz)
MAX_AUDIO_SECONDS = 600.0  # the audio tower reads at most a minute of it, spread over the clip
MAX_AUDIO_CHANNELS = 8  # an OGG decoder bomb may claim 255 channels: memory per decoded second
_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w-]+=[\w.-]+)*)(?P<b64>;base64)?,"
)
_AUDIO_SIGNATURES = {b"ID3": "MP3", b"\xff\xfb": "MP3", b"fLaC": "FLAC"}


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
    """Decode WAV or OGG Vorbis audio to a mono float32 waveform in [-1, 1] at `sample_rate`."""
    waveform, rate = decode_audio(read_bytes(ref, "audio"), _describe(ref))
    if rate != sample_rate:
        waveform = resample(waveform, rate, sample_rate)
    return waveform


def decode_audio(
    data: bytes, source: str = "audio", any_rate: bool = False
) -> tuple[np.ndarray, int]:
    """A WAV file's or an OGG Vorbis stream's samples as one mono float32 waveform in [-1, 1] at
    its own sample rate, and that rate; MediaError (naming `source`) for anything else. The rate
    must be one of SAMPLE_RATES, or with `any_rate` within ANY_RATE."""
    check = _check_any_rate if any_rate else _check_rate
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        waveform, rate = _decode_wav(data, source, check)
    elif data[:4] == b"OggS":
        waveform, rate = _decode_ogg(data, source, check)
    else:
        found = next((n for sig, n in _AUDIO_SIGNATURES.items() if data.startswith(sig)), None)
        hint = f" (looks like {found})" if found else ""
        raise MediaError(f"audio must be a WAV file or OGG Vorbis{hint}: {source}")
    if waveform.size == 0:
        raise MediaError(f"audio has no samples: {source}")
    return waveform, rate


def resample(waveform: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """The waveform at another sample rate (polyphase filtering), as float32."""
    divisor = np.gcd(rate, sample_rate)
    return resample_poly(waveform, sample_rate // divisor, rate // divisor).astype(np.float32)


def _decode_wav(data: bytes, source: str, check_rate) -> tuple[np.ndarray, int]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            rate, samples = wavfile.read(io.BytesIO(data), mmap=False)
    except (ValueError, wave.Error, EOFError) as error:
        raise MediaError(f"unreadable WAV audio ({source}): {error}") from None
    check_rate(rate)
    if len(samples) > MAX_AUDIO_SECONDS * rate:
        seconds = len(samples) / rate
        raise MediaError(f"audio is {seconds:.0f} s long; at most {MAX_AUDIO_SECONDS:.0f} s")
    if samples.dtype.kind == "f" and not np.isfinite(samples).all():
        raise MediaError(f"audio holds non-finite samples (NaN or infinity): {source}")
    waveform = _to_float(samples)
    return (waveform.mean(axis=1) if waveform.ndim == 2 else waveform), rate


def declared_samples(data: bytes) -> int | None:
    """The samples (over all channels) an OGG stream claims to hold, read from its pages without
    decoding; None for anything else or a stream that cannot be opened."""
    import soundfile

    if data[:4] != b"OggS":
        return None
    try:
        info = soundfile.info(io.BytesIO(data))
    except (soundfile.LibsndfileError, RuntimeError, EOFError):
        return None
    return max(0, info.frames) * info.channels


def _decode_ogg(data: bytes, source: str, check_rate) -> tuple[np.ndarray, int]:
    """Decode a second at a time, stopping once past MAX_AUDIO_SECONDS or what the stream claims
    (one second of slack)."""
    import soundfile

    try:
        with soundfile.SoundFile(io.BytesIO(data)) as stream:
            rate, channels, claimed = stream.samplerate, stream.channels, max(0, stream.frames)
            check_rate(rate)
            if not 1 <= channels <= MAX_AUDIO_CHANNELS:
                raise MediaError(f"audio has {channels} channels; at most {MAX_AUDIO_CHANNELS}")
            if claimed > MAX_AUDIO_SECONDS * rate:
                raise MediaError(
                    f"audio is {claimed / rate:.0f} s long; at most {MAX_AUDIO_SECONDS:.0f} s"
                )
            limit, parts, decoded = int(MAX_AUDIO_SECONDS * rate), [], 0
            if claimed:
                limit = min(limit, claimed + rate)
            for block in stream.blocks(blocksize=rate, dtype="float32", always_2d=True):
                decoded += len(block)
                if decoded > limit:
                    raise MediaError(
                        f"audio decodes past {limit / rate:.0f} s, the most it may hold "
                        f"(its pages claim {claimed / rate:.0f} s, at most "
                        f"{MAX_AUDIO_SECONDS:.0f} s; decoding stopped at {decoded / rate:.0f} s)"
                    )
                parts.append(block.mean(axis=1))
    except (soundfile.LibsndfileError, RuntimeError, EOFError) as error:
        reason = getattr(error, "error_string", None) or str(error)  # without the stream's repr
        raise MediaError(f"unreadable OGG audio ({source}): {reason}") from None
    waveform = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if not np.isfinite(waveform).all():
        raise MediaError(f"audio holds non-finite samples (NaN or infinity): {source}")
    return np.clip(waveform, -1.0, 1.0), rate


def _check_rate(rate: int) -> None:
    if rate not in SAMPLE_RATES:
        raise MediaError(f"audio sample rate {rate} Hz is not supported; use one of {SAMPLE_RATES}")


def _check_any_rate(rate: int) -> None:
    low, high = ANY_RATE
    if not low <= rate <= high:
        raise MediaError(f"audio sample rate {rate} Hz is outside {low}-{high} Hz")


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
