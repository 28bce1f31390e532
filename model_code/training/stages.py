"""Stage and data-set configurations: what each training stage trains on, and how.

A stage is a JSON file in `configs/stages/`; it lists data sets, each with its own instructions,
temperature, losses (with weights), valid query->target modality patterns and sampling weight.
Everything is checked before any training step runs: each setting's type (`"lr": "5e-5"` is an
error, `model_code.config.from_json_data`), unknown keys, and the names a stage refers to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from importlib import resources
from typing import Any

from pydantic import with_config

from model_code.config import MODALITIES, STRICT, ConfigError, from_json_data

STAGES = ("content1", "content2", "content3", "seq2item", "id2item")
LOSSES = (
    "infonce",
    "cosent",
    "micl",
    "late_fusion",
    "hard_negative",
    "seq2item",
    "id2item",
    "anchor",
)
SOURCES = (
    "openclipart",
    "openclipart-groups",
    "movielens-items",
    "movielens-genres",
    "movielens-sequences",
    "movielens-id2item",
)
OMNI = "omni"
FREEZABLE = ("vision", "audio", "fuser", "shortcut")  # towers, the fuser, the shortcut's map


@dataclass(frozen=True)
class Pattern:
    """A query->target modality pattern, e.g. `text->vision` or `omni->omni`."""

    query: tuple[str, ...]
    target: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Pattern:
        sides = text.split("->")
        if len(sides) != 2:
            raise ConfigError(f"pattern {text!r} must look like 'text->vision'")
        return cls(*(cls._modalities(side.strip(), text) for side in sides))

    @staticmethod
    def _modalities(side: str, text: str) -> tuple[str, ...]:
        if side == OMNI:
            return MODALITIES
        parts = tuple(part.strip() for part in side.split("+"))
        unknown = [part for part in parts if part not in MODALITIES]
        if unknown:
            raise ConfigError(
                f"unknown modality {unknown[0]!r} in pattern {text!r}; "
                f"known: {list(MODALITIES)} or {OMNI!r}"
            )
        return parts

    def __str__(self) -> str:
        return f"{'+'.join(self.query)}->{'+'.join(self.target)}"


@with_config(STRICT)
@dataclass
class DatasetConfig:
    """One training data set: where its records come from and how they are scored."""

    name: str
    source: str
    weight: float = 1.0
    instructions: dict[str, str] = field(
        default_factory=lambda: {"query": "Represent the query.", "target": "Represent the item."}
    )
    temperature: float = 0.05
    losses: dict[str, float] = field(default_factory=lambda: {"infonce": 1.0})
    patterns: list[str] = field(default_factory=lambda: ["text->vision"])
    split: str = "train"
    # True: items under this data set's instructions get an adapter of their own, which its
    # losses train (`model_code/encoders/instruction_adapter.py`); no other data set reaches it.
    adapter: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"data set {self.name!r}: unknown source {self.source!r}; {SOURCES}")
        unknown = [loss for loss in self.losses if loss not in LOSSES]
        if unknown:
            raise ConfigError(f"data set {self.name!r}: unknown loss {unknown[0]!r}; {LOSSES}")
        if set(self.instructions) != {"query", "target"}:
            raise ConfigError(f"data set {self.name!r}: instructions need 'query' and 'target'")
        if self.weight < 0:
            raise ConfigError(f"data set {self.name!r}: weight must be >= 0")
        self.parsed_patterns = [Pattern.parse(p) for p in self.patterns]


@with_config(STRICT)
@dataclass
class StageConfig:
    """One training stage: data sets, optimisation settings and checkpointing."""

    name: str
    datasets: list[DatasetConfig]
    steps: int = 100
    batch_size: int = 32
    lr: float = 1e-4
    min_lr: float = 6e-5
    head_lr_scale: float = 10.0  # newly initialised parts (Perceiver, adapters, heads) learn faster
    warmup_steps: int = 10
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    checkpoint_every: int = 50
    keep_checkpoints: int = 2  # the newest K checkpoints stay; a resume falls back through them
    seed: int = 0
    freeze: list[str] = field(default_factory=list)
    matryoshka_weights: list[float] | None = None
    hard_negatives: int = 0
    balance: bool = False  # sampling weights from adaptive multi-source balancing
    gradient_checkpointing: bool | None = None  # None: on when training on GPUs
    sequence_pooling: str = "mean"
    window: int = 10
    # A caption->drawing data set on which the model's closed-form parts are fitted before step 0:
    # the vision shortcut (ridge, `ridge_alpha`) and the output basis (partly whitened by
    # `basis_whitening`, 0 to 1). None: they continue from the starting model.
    closed_form_init: str | None = None
    ridge_alpha: float = 30.0
    basis_whitening: float = 0.0

    def __post_init__(self) -> None:
        if not self.datasets:
            raise ConfigError(f"stage {self.name!r} lists no data sets")
        names = [d.name for d in self.datasets]
        if len(set(names)) != len(names):
            raise ConfigError(f"stage {self.name!r}: data set names repeat: {names}")
        if self.sequence_pooling not in ("mean", "transformer"):
            raise ConfigError(f"unknown sequence_pooling {self.sequence_pooling!r}")
        bad = [part for part in self.freeze if part not in FREEZABLE]
        if bad:
            raise ConfigError(f"stage {self.name!r}: cannot freeze {bad[0]!r}")
        if self.closed_form_init is not None and self.closed_form_init not in names:
            raise ConfigError(
                f"stage {self.name!r}: closed_form_init names {self.closed_form_init!r}, "
                f"not one of its data sets {names}"
            )
        if self.ridge_alpha <= 0:
            raise ConfigError(f"stage {self.name!r}: ridge_alpha must be > 0")
        if not 0.0 <= self.basis_whitening <= 1.0:
            raise ConfigError(f"stage {self.name!r}: basis_whitening must be within [0, 1]")
        if self.keep_checkpoints < 1:
            raise ConfigError(f"stage {self.name!r}: keep_checkpoints must be at least 1")
        if self.steps < 1 or self.batch_size < 2:
            raise ConfigError(f"stage {self.name!r}: needs steps >= 1 and batch_size >= 2")

    def dataset(self, name: str) -> DatasetConfig:
        return next(d for d in self.datasets if d.name == name)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageConfig:
        """Build a stage from a dict (see the module doc)."""
        return from_json_data(cls, data, f"stage {data.get('name')!r}")

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["datasets"] = [
            {f.name: getattr(d, f.name) for f in fields(DatasetConfig)} for d in self.datasets
        ]
        return data


def load_stage(name: str, steps: int | None = None, **overrides: Any) -> StageConfig:
    """Load a packaged stage config by name; keyword overrides replace top-level settings (JSON
    values), and `steps`, unless None, the step count."""
    if name not in STAGES:
        raise ConfigError(f"unknown stage {name!r}; choose one of {list(STAGES)}")
    text = resources.files("model_code.training.configs.stages").joinpath(f"{name}.json")
    data = {**json.loads(text.read_text()), **overrides}
    if steps is not None:
        data["steps"] = steps
    return StageConfig.from_dict(data)
