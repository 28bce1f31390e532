"""A cache of frozen-tower outputs, keyed by the frame's pixels and the tower's weights.

Every SAIL stage keeps the vision tower frozen, and on CPU that tower costs more than the rest of
a training step. The same drawings come back in every epoch, stage, mining pass and evaluation,
so their tower features are computed once and reused. Features are kept in float16 and every
result is rounded the same way, so a hit and a miss give identical outputs; a directory makes the
cache outlive the process (stages and evaluations run as separate pipeline steps).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn


class TowerFeatureCache:
    """Per-frame tower features: an in-memory LRU of `max_entries`, then an optional folder."""

    def __init__(self, directory: Path | None = None, max_entries: int = 8192):
        self.directory = Path(directory) if directory else None
        self.max_entries = max_entries
        self.memory: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def features(self, tower: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
        """`tower(pixels)` for a frozen tower, from the cache where the frame was seen before."""
        weights = weights_fingerprint(tower)
        keys = [frame_key(weights, frame) for frame in pixels]
        found = [self._lookup(key) for key in keys]
        missing = [row for row, value in enumerate(found) if value is None]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            computed = tower(pixels[missing]).detach().to("cpu", torch.float16)
            for row, value in zip(missing, computed, strict=True):
                found[row] = value
                self._store(keys[row], value)
        return torch.stack(found).to(pixels.device, pixels.dtype)

    def _lookup(self, key: str) -> torch.Tensor | None:
        if key in self.memory:
            self.memory.move_to_end(key)
            return self.memory[key]
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        value = torch.from_numpy(np.load(path))
        self._remember(key, value)
        return value

    def _store(self, key: str, value: torch.Tensor) -> None:
        self._remember(key, value)
        path = self._path(key)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with partial.open("wb") as handle:
                np.save(handle, value.numpy())
            os.replace(partial, path)  # readers never see half a file

    def _remember(self, key: str, value: torch.Tensor) -> None:
        self.memory[key] = value
        self.memory.move_to_end(key)
        while len(self.memory) > self.max_entries:
            self.memory.popitem(last=False)

    def _path(self, key: str) -> Path | None:
        return self.directory / key[:2] / f"{key}.npy" if self.directory else None


def weights_fingerprint(module: nn.Module) -> bytes:
    """A digest of every parameter and buffer: features of other weights never match."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(_tensor_bytes(tensor))
    return digest.digest()


def frame_key(weights: bytes, frame: torch.Tensor) -> str:
    """The cache key of one frame under the given tower weights."""
    digest = hashlib.blake2b(weights, digest_size=20)
    digest.update(str(tuple(frame.shape)).encode())
    digest.update(_tensor_bytes(frame))
    return digest.hexdigest()


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()
