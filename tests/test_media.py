import base64
import io
import wave

import numpy as np
import pytest
import soundfile
from PIL import Image
from scipy.io import wavfile

from model_code import media
from model_code.data.media_files import ogg_bytes
from model_code.data.synthetic import png_bytes, shape_image, tone_wav, with_claimed_length
from model_code.media import (
    MediaError,
    declared_samples,
    decode_audio,
    load_audio,
    load_image,
    to_data_url,
)


def test_image_from_file_and_data_url_agree(tmp_path):
    data = png_bytes(shape_image("red", "circle"))
    (tmp_path / "a.png").write_bytes(data)
    from_file = np.asarray(load_image(str(tmp_path / "a.png")))
    from_url = np.asarray(load_image(to_data_url(data, "image/png")))
    assert from_file.shape == (96, 96, 3)
    assert np.array_equal(from_file, from_url)


def test_transparent_pixels_become_white():
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    decoded = load_image(to_data_url(buffer.getvalue(), "image/png"))
    assert decoded.getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("data:image/png,abc", "must be base64"),
        ("data:image/png;base64,@@@", "invalid base64"),
        ("data:text/plain;base64,aGk=", "media type 'text/plain'"),
        ("data:image/png;base64", "malformed image data URL"),
        ("/no/such/file.png", "image file not found"),
        (to_data_url(b"just some text", "image/png"), "not a readable image"),
    ],
)
def test_bad_images_say_why(ref, problem):
    with pytest.raises(MediaError, match=problem):
        load_image(ref)


def test_wav_is_decoded_to_mono_float_and_resampled():
    samples = load_audio(to_data_url(tone_wav(440.0, 1.0, sample_rate=8000), "audio/wav"), 16000)
    assert samples.dtype == np.float32
    assert samples.shape == (16000,)
    assert 0.25 < np.abs(samples).max() <= 0.31


def test_stereo_wav_is_averaged():
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        frames = np.tile(np.array([[16384, -16384]], dtype=np.int16), (100, 1))
        handle.writeframes(frames.tobytes())
    samples = load_audio(to_data_url(buffer.getvalue(), "audio/wav"), 16000)
    assert np.allclose(samples, 0.0, atol=1e-4)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"ID3\x03\x00" + b"\x00" * 64, r"must be a WAV file or OGG Vorbis \(looks like MP3\)"),
        (b"OggS" + b"\x00" * 64, r"unreadable OGG audio \(data URL\): File contains data"),
        (b"RIFF\x10\x00\x00\x00WAVEjunk", "unreadable WAV"),
    ],
)
def test_wrong_audio_formats_are_named(data, problem):
    with pytest.raises(MediaError, match=problem):
        load_audio("data:audio/wav;base64," + base64.b64encode(data).decode(), 16000)


def _ogg(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="OGG", subtype="VORBIS")
    return buffer.getvalue()


def _tone(seconds: float, rate: int) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(
        np.float32
    )


def test_ogg_vorbis_is_decoded_to_mono_float_and_resampled(tmp_path):
    stereo = np.stack([_tone(1.0, 16000), _tone(1.0, 16000)], axis=1)
    (tmp_path / "tone.ogg").write_bytes(_ogg(stereo, 16000))
    samples = load_audio(str(tmp_path / "tone.ogg"), 8000)
    assert samples.dtype == np.float32 and samples.shape == (8000,)
    assert 0.25 < np.abs(samples).max() <= 0.35  # lossy, but the tone's level
    assert decode_audio(_ogg(_tone(1.0, 16000), 16000))[1] == 16000


def test_ogg_is_bounded_by_the_length_its_pages_claim_not_by_its_size(monkeypatch):
    monkeypatch.setattr(media, "MAX_AUDIO_SECONDS", 2.0)
    data = _ogg(np.zeros(16000 * 5, np.float32), 16000)  # five seconds of silence: 4 KB
    assert declared_samples(data) == 16000 * 5
    with pytest.raises(MediaError, match="audio is 5 s long; at most 2 s"):
        decode_audio(data)  # refused before decoding
    with pytest.raises(MediaError, match="9 channels; at most 8"):
        decode_audio(_ogg(np.zeros((1600, 9), np.float32), 16000))
    with pytest.raises(MediaError, match="sample rate 7999 Hz is not supported"):
        decode_audio(_ogg(np.zeros(1600, np.float32), 7999))


def test_an_ogg_that_claims_less_than_it_holds_decodes_only_its_claim():
    real = ogg_bytes(_tone(20.0, 16000), 16000)
    lying = with_claimed_length(real, 16000)  # its last page says one second
    assert declared_samples(lying) == 16000
    waveform, _ = decode_audio(lying)
    assert len(waveform) <= 16000 + 16000  # never the 20 s it holds


def test_truncated_or_damaged_ogg_is_named():
    data = _ogg(_tone(2.0, 16000), 16000)
    for cut in (len(data) // 2, 200):  # the end page gone; the headers cut short
        with pytest.raises(MediaError, match="unreadable OGG audio|audio has no samples"):
            decode_audio(data[:cut])


def _png(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return to_data_url(buffer.getvalue(), "image/png")


def test_images_are_bounded_by_pixels_and_shape_before_decoding(monkeypatch):
    with pytest.raises(MediaError, match=r"1x4000 pixels: the long side may be at most 20"):
        load_image(_png(1, 4000))
    assert load_image(_png(20, 400)).size == (20, 400)
    monkeypatch.setattr(media, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(MediaError, match=r"too large \(20x20 pixels; at most 100\)"):
        load_image(_png(20, 20))


def _wav(samples: np.ndarray, rate: int) -> str:
    buffer = io.BytesIO()
    wavfile.write(buffer, rate, samples)
    return to_data_url(buffer.getvalue(), "audio/wav")


@pytest.mark.parametrize("rate", [1, 7999, 20_000_003])
def test_audio_at_an_unsupported_rate_is_refused_before_resampling(rate):
    with pytest.raises(MediaError, match=f"sample rate {rate} Hz is not supported"):
        load_audio(_wav(np.zeros(40_000, np.int16), rate), 16000)


def test_audio_longer_than_the_cap_is_refused(monkeypatch):
    monkeypatch.setattr(media, "MAX_AUDIO_SECONDS", 2.0)
    with pytest.raises(MediaError, match="audio is 3 s long; at most 2 s"):
        load_audio(_wav(np.zeros(24_000, np.int16), 8000), 16000)


def test_non_finite_samples_are_refused():
    samples = np.zeros(1600, np.float32)
    samples[10] = np.nan
    with pytest.raises(MediaError, match="non-finite samples"):
        load_audio(_wav(samples, 16000), 16000)
