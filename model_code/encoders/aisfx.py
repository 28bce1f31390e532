"""aisfx 0.1.2's sound-effect embedding network (A.B. Ma and A. Lerch, ISMIR 2022; CC BY 4.0
weights) in plain torch, its log-mel blocks computed without librosa, and the conversion of its
pickled checkpoint to safetensors.

Two bugs of the shipped package are fixed here: its librosa spectrogram is [mels, frames] and was
blocked along the mel axis (it is [frames, mels] here), and a clip of 50 frames or fewer (under
1.16 s) failed an assertion before blocking (here it is one zero-padded block, as the package's
blocking pads any clip shorter than a block).
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
from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

from model_code.media import resample
from model_code.paths import data_wheels_dir
from model_code.weights import check_sha256, file_sha256, save_pinned

SAMPLE_RATE = 44_100
N_FFT = 2048
HOP_LENGTH = 1024
N_MELS = 96
# log10(1e4 * S + 1) / 9.4578: the package's "original" normalisation, the maximum over the
# spectrograms of its training sets.
LOG_GAIN = 1e4
LOG_MAX = 9.457798957824707
BLOCK_FRAMES = 100  # 2.32 s
BLOCK_HOP_FRAMES = 50
EMBEDDING_DIM = 512

CHECKPOINT_SHA256 = "499ea75909c932a2f94c35fa722fa4fabc5bcb7e84917209cc5f7402627b7eb5"
CONVERTED_SHA256 = "5bbb0fe4555a8538e8af1e8563085580b6b73d6eae28e46d14a766fa03ddc08c"
CHECKPOINT = Path("aisfx/models/checkpoint.pth")
CONVERTED = Path("aisfx/models/embedding_net.safetensors")
_PREFIX = "embedding_net."
# What the checkpoint pickles besides tensors: numpy int64 dataset indices in its ds_dict.
_NUMPY_GLOBALS = [
    (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"),
    np.dtype,
    np.dtypes.Int64DType,
]


class _ConvBlock(nn.Module):
    """Two 3x3 convolutions, each with batch norm and ReLU, then an optional 2x2 max-pool."""

    def __init__(self, in_channels: int, out_channels: int, pool: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.max_pool2d(x, 2) if self.pool else x


class AisfxNet(nn.Module):
    """aisfx's EmbeddingNet: log-mel blocks [B, 100, 96] to embeddings [B, 512] (non-negative),
    the mean over frequency then the max over time of the last block's feature maps."""

    def __init__(self):
        super().__init__()
        self.conv_block1 = _ConvBlock(1, 64, pool=True)
        self.conv_block2 = _ConvBlock(64, 128, pool=True)
        self.conv_block3 = _ConvBlock(128, 256, pool=True)
        self.conv_block4 = _ConvBlock(256, EMBEDDING_DIM, pool=False)

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        x = blocks.unsqueeze(1)
        for block in (self.conv_block1, self.conv_block2, self.conv_block3, self.conv_block4):
            x = block(x)
        return x.mean(dim=3).amax(dim=2)


def aisfx_features(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """A mono clip's normalised log-mel blocks [blocks, 100, 96] (float32), as aisfx computes
    them: at 44.1 kHz, peak-normalised, in blocks of 100 frames every 50 frames."""
    if waveform.ndim != 1 or waveform.size == 0:
        raise ValueError(f"expected a non-empty mono waveform, got shape {waveform.shape}")
    if sample_rate != SAMPLE_RATE:
        waveform = resample(waveform, sample_rate, SAMPLE_RATE)
    return frame_blocks(log_mel_frames(_peak_normalised(waveform)))


def log_mel_frames(waveform: np.ndarray) -> np.ndarray:
    """Normalised log-mel frames [frames, 96] of a 44.1 kHz clip: power spectrogram of centred,
    zero-padded Hann frames (librosa 0.9.2's defaults), L1-normalised HTK mel filters."""
    mel = spectrogram(
        np.asarray(waveform, dtype=np.float32),
        _hann_window(),
        frame_length=N_FFT,
        hop_length=HOP_LENGTH,
        power=2.0,
        center=True,
        pad_mode="constant",
        mel_filters=mel_filters(),
        mel_floor=0.0,
    ).T
    return (np.log10(LOG_GAIN * mel + 1.0) / LOG_MAX).astype(np.float32)


def frame_blocks(frames: np.ndarray) -> np.ndarray:
    """Blocks of 100 frames every 50 [blocks, 100, 96], as aisfx's blocking with its partial last
    block dropped: frames after the last whole block are left out, and a clip shorter than one
    block is one block, zero-padded at its end."""
    count = max(1, (len(frames) - BLOCK_FRAMES) // BLOCK_HOP_FRAMES + 1)
    padding = max(0, BLOCK_FRAMES - len(frames))
    padded = np.pad(frames, ((0, padding), (0, 0)))
    starts = range(0, count * BLOCK_HOP_FRAMES, BLOCK_HOP_FRAMES)
    return np.stack([padded[start : start + BLOCK_FRAMES] for start in starts])


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """96 triangular HTK-scale mel filters over 0-22,050 Hz [1025, 96], each summing to 1
    (librosa's norm=1.0)."""
    filters = mel_filter_bank(
        num_frequency_bins=N_FFT // 2 + 1,
        num_mel_filters=N_MELS,
        min_frequency=0.0,
        max_frequency=SAMPLE_RATE / 2,
        sampling_rate=SAMPLE_RATE,
        norm=None,
        mel_scale="htk",
    )
    return filters / filters.sum(axis=0, keepdims=True)


@lru_cache(maxsize=1)
def _hann_window() -> np.ndarray:
    return window_function(N_FFT, "hann")


def _peak_normalised(waveform: np.ndarray) -> np.ndarray:
    peak = np.abs(waveform).max()
    return waveform / peak if peak > 0 else waveform


def load_aisfx_net(path: Path | str) -> AisfxNet:
    """The network with the converted weights (a safetensors file), in eval mode."""
    net = AisfxNet()
    net.load_state_dict(load_file(str(path)), strict=True)
    return net.eval()


def convert_checkpoint(source: Path, target: Path) -> str:
    """Write the embedding network's tensors of aisfx 0.1.2's checkpoint.pth to `target` as
    safetensors (names without the `embedding_net.` prefix); returns its sha256. Both the source's
    and the written file's hashes are checked against the pinned ones."""
    check_sha256(source, CHECKPOINT_SHA256, "aisfx 0.1.2's checkpoint.pth")
    tensors = _embedding_tensors(source)
    return save_pinned(tensors, target, CONVERTED_SHA256, "the converted aisfx weights")


def _embedding_tensors(source: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's `embedding_net.*` tensors, prefix stripped, loaded without running any
    pickled code (weights_only, with only its numpy scalar globals allowed)."""
    with torch.serialization.safe_globals(_NUMPY_GLOBALS):
        state, _datasets = torch.load(source, map_location="cpu", weights_only=True)
    return {
        name.removeprefix(_PREFIX): tensor.contiguous()
        for name, tensor in state.items()
        if name.startswith(_PREFIX)
    }


def convert_installed(wheels: Path) -> Path:
    """Convert `<wheels>/aisfx/models/checkpoint.pth` next to it, unless already converted."""
    target = wheels / CONVERTED
    if target.is_file() and file_sha256(target) == CONVERTED_SHA256:
        return target
    convert_checkpoint(wheels / CHECKPOINT, target)
    return target


def main(argv: list[str] | None = None) -> None:
    """`python -m model_code.encoders.aisfx [data-wheels-dir]`."""
    parser = argparse.ArgumentParser(description=convert_installed.__doc__)
    parser.add_argument("wheels", type=Path, nargs="?", default=data_wheels_dir())
    target = convert_installed(parser.parse_args(argv).wheels)
    print(f"aisfx embedding weights: {target}")


if __name__ == "__main__":
    main()
