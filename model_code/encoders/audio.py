"""Audio towers over mel features of 10 s chunks, and the adapter that makes one audio token."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model_code.config import AudioConfig, ConfigError
from model_code.weights import resolve_weights


class GE2ETower(nn.Module):
    """The GE2E speaker encoder's LSTM (the `resemblyzer` weights), one vector per chunk."""

    def __init__(self, config: AudioConfig):
        super().__init__()
        settings = {"hidden_size": 256, "num_layers": 3, "embedding_size": 256, **config.config}
        self.lstm = nn.LSTM(
            config.n_mels, settings["hidden_size"], settings["num_layers"], batch_first=True
        )
        self.linear = nn.Linear(settings["hidden_size"], settings["embedding_size"])
        self.out_dim = settings["embedding_size"]
        self.settings = settings
        if config.weights:
            checkpoint = torch.load(
                resolve_weights(config.weights), map_location="cpu", weights_only=True
            )
            state = checkpoint["model_state"]
            # the GE2E similarity scale/bias were for its training loss only
            self.load_state_dict({k: v for k, v in state.items() if not k.startswith("similarity")})

    def architecture(self) -> dict:
        return self.settings

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(features)
        return F.normalize(F.relu(self.linear(hidden[-1])), dim=-1)


class ClapTower(nn.Module):
    """A CLAP audio encoder (HTSAT) with its projection, one 512-d vector per chunk."""

    def __init__(self, config: AudioConfig):
        super().__init__()
        from transformers import ClapAudioConfig, ClapAudioModelWithProjection

        if config.weights:
            self.net = ClapAudioModelWithProjection.from_pretrained(resolve_weights(config.weights))
        else:
            self.net = ClapAudioModelWithProjection(ClapAudioConfig(**config.config))
        self.out_dim = self.net.config.projection_dim

    def architecture(self) -> dict:
        return self.net.config.to_diff_dict()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(input_features=features[:, None]).audio_embeds


class AisfxTower(nn.Module):
    """aisfx's sound-effect CNN (`model_code.encoders.aisfx`), one 512-d vector per chunk of
    100 log-mel frames (2.3 s at 44.1 kHz): what a sound is, not who speaks."""

    def __init__(self, config: AudioConfig):
        super().__init__()
        from model_code.encoders.aisfx import EMBEDDING_DIM, AisfxNet, load_aisfx_net

        self.net = load_aisfx_net(resolve_weights(config.weights)) if config.weights else AisfxNet()
        self.out_dim = EMBEDDING_DIM

    def architecture(self) -> dict:
        return {}

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


AUDIO_TOWERS = {"ge2e": GE2ETower, "clap": ClapTower, "aisfx": AisfxTower}


class AudioEncoder(nn.Module):
    """Chunks -> tower vectors -> mean over an item's chunks -> adapter -> one fuser token."""

    def __init__(self, config: AudioConfig, width: int):
        super().__init__()
        if config.kind not in AUDIO_TOWERS:
            raise ConfigError(f"unknown audio kind {config.kind!r}; known: {list(AUDIO_TOWERS)}")
        self.tower = AUDIO_TOWERS[config.kind](config)
        self.adapter = nn.Sequential(
            nn.Linear(self.tower.out_dim, width), nn.GELU(), nn.Linear(width, width)
        )

    def forward(self, features: torch.Tensor, chunk_counts: torch.Tensor) -> torch.Tensor:
        """features [chunks_total, frames, mels]; chunk_counts [items], all > 0 -> [items, 1, W]."""
        per_chunk = self.tower(features)
        owners = torch.repeat_interleave(torch.arange(chunk_counts.numel()), chunk_counts)
        summed = per_chunk.new_zeros(chunk_counts.numel(), per_chunk.shape[-1])
        summed.index_add_(0, owners.to(per_chunk.device), per_chunk)
        pooled = summed / chunk_counts.to(per_chunk).unsqueeze(-1)
        return self.adapter(pooled).unsqueeze(1)
