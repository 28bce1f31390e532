"""Vision towers (each frame patchified on its own) followed by the Visual Perceiver."""

from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

from model_code.config import ConfigError, VisionConfig
from model_code.encoders.feature_cache import TowerFeatureCache
from model_code.encoders.perceiver import VisualPerceiver
from model_code.encoders.shortcut import VisionShortcut
from model_code.weights import resolve_weights

# Frames per pass of a convolutional tower on CPU. Its early feature maps outgrow the caches: on
# 2 cores (AMD EPYC, 2026-12-01) EfficientNet-Lite0 at 224 px ran 59 frames/s one at a time,
# 68 four at a time, 53 eight and 28 thirty-two at a time (docs/benchmarks.md, text+image).
CPU_FRAMES_PER_PASS = 4


class EfficientNetLiteTower(nn.Module):
    """EfficientNet-Lite: the last feature map's cells are the patch tokens. On CPU a batch of
    frames goes through in passes of `CPU_FRAMES_PER_PASS`."""

    def __init__(self, config: VisionConfig):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        overrides = {"image_size": config.image_size, **config.config}
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
            if config.weights:
                path = resolve_weights(config.weights)
                self.net = EfficientNet.from_pretrained(
                    "efficientnet-lite0", weights_path=path, **overrides
                )
            else:
                self.net = EfficientNet.from_name("efficientnet-lite0", **overrides)
                self.net.apply(_fan_out_init)
        self.out_dim = self.net._conv_head.out_channels
        self.settings = dict(config.config)
        del self.net._fc  # classification head unused

    def architecture(self) -> dict:
        return self.settings

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.device.type == "cpu" and len(pixels) > CPU_FRAMES_PER_PASS:
            return torch.cat([self(part) for part in pixels.split(CPU_FRAMES_PER_PASS)])
        features = self.net.extract_features(pixels)
        return features.flatten(2).transpose(1, 2)


def _fan_out_init(module: nn.Module) -> None:
    """EfficientNet's own initialisation (He normal by fan-out, batch norm as identity), for a
    tower without weights. PyTorch's default shrinks each of its 50-odd convolutions' output, so
    a random tower gave every image the same features to 1e-9 and the same vector to 1e-8."""
    if isinstance(module, nn.Conv2d):
        kernel_height, kernel_width = module.kernel_size
        fan_out = kernel_height * kernel_width * module.out_channels // module.groups
        nn.init.normal_(module.weight, std=(2.0 / fan_out) ** 0.5)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class SiglipTower(nn.Module):
    """A SigLIP-style ViT: its last hidden states are the patch tokens."""

    def __init__(self, config: VisionConfig):
        super().__init__()
        from transformers import SiglipVisionConfig, SiglipVisionModel

        if config.weights:
            self.net = SiglipVisionModel.from_pretrained(resolve_weights(config.weights))
        else:
            settings = {"image_size": config.image_size, **config.config}
            self.net = SiglipVisionModel(SiglipVisionConfig(**settings))
        self.out_dim = self.net.config.hidden_size

    def architecture(self) -> dict:
        return self.net.config.to_diff_dict()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=pixels).last_hidden_state


def mean_per_item(per_frame: torch.Tensor, frame_counts: torch.Tensor) -> torch.Tensor:
    """[frames_total, D] rows grouped by `frame_counts` (all > 0) -> each group's mean."""
    items = torch.repeat_interleave(
        torch.arange(len(frame_counts), device=per_frame.device), frame_counts
    )
    sums = per_frame.new_zeros(len(frame_counts), per_frame.shape[1]).index_add_(
        0, items, per_frame
    )
    return sums / frame_counts[:, None].to(per_frame.dtype)


VISION_TOWERS = {"efficientnet_lite": EfficientNetLiteTower, "siglip": SiglipTower}


class VisionEncoder(nn.Module):
    """Frames -> tower patch tokens -> projection -> Visual Perceiver -> fuser tokens."""

    def __init__(self, config: VisionConfig, width: int):
        super().__init__()
        if config.kind not in VISION_TOWERS:
            raise ConfigError(f"unknown vision kind {config.kind!r}; known: {list(VISION_TOWERS)}")
        self.tower = VISION_TOWERS[config.kind](config)
        self.projection = nn.Linear(self.tower.out_dim, width)
        self.perceiver = VisualPerceiver(
            width,
            config.num_latents,
            config.perceiver_layers,
            config.perceiver_heads,
            config.max_frames,
        )
        self.shortcut = VisionShortcut(self.tower.out_dim, width) if config.shortcut else None
        self.feature_cache: TowerFeatureCache | None = None  # set by `cache_tower_features`

    def forward(self, pixels: torch.Tensor, frame_counts: torch.Tensor) -> torch.Tensor:
        """pixels [frames_total, 3, H, W]; frame_counts [items] (all > 0) -> [items, Q, width]."""
        return self.encode(pixels, frame_counts)[0]

    def encode(
        self, pixels: torch.Tensor, frame_counts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The Perceiver's [items, Q, width] tokens and each item's mean tower features
        [items, tower width] (over all its frames' patches), from one pass of the tower."""
        features = self.tower_features(pixels)
        tokens = self.perceiver(self.projection(features), frame_counts)
        return tokens, mean_per_item(features.mean(1), frame_counts)

    def tower_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """The tower's patch tokens, from the feature cache while the tower is frozen."""
        if self.feature_cache is not None and self.tower_frozen():
            return self.feature_cache.features(self.tower, pixels)
        return self.tower(pixels)

    def tower_frozen(self) -> bool:
        """True when the tower's output is a pure function of its input: eval mode, no gradient."""
        if self.tower.training:
            return False
        return not torch.is_grad_enabled() or not any(
            p.requires_grad for p in self.tower.parameters()
        )
