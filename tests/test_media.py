import base64
import io
import wave

import numpy as np
import pytest
from PIL import Image

from model_code.data.synthetic import png_bytes, shape_image, tone_wav
from model_code.media import MediaError, load_audio, load_image, to_data_url


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
        (b"ID3\x03\x00" + b"\x00" * 64, r"must be a WAV file \(looks like MP3\)"),
        (b"OggS" + b"\x00" * 64, r"looks like Ogg"),
        (b"RIFF\x10\x00\x00\x00WAVEjunk", "unreadable WAV"),
    ],
)
def test_wrong_audio_formats_are_named(data, problem):
    with pytest.raises(MediaError, match=problem):
        load_audio("data:audio/wav;base64," + base64.b64encode(data).decode(), 16000)
