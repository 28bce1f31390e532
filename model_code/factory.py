"""Building models from presets or configs, and saving / loading trained ones."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from safetensors.torch import load_file, save_file

from model_code.config import ConfigError, ModelConfig, load_preset
from model_code.model import SailEmbeddingModel
from model_code.processor import SailProcessor

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_DIR = "tokenizer"


def create_model(config: ModelConfig | str) -> tuple[SailEmbeddingModel, SailProcessor]:
    """Build a model and its processor from a config or a preset name."""
    if isinstance(config, str):
        config = load_preset(config)
    processor = SailProcessor(config)
    model = SailEmbeddingModel(config, vocab_size=len(processor.tokenizer))
    return model, processor


def save_pretrained(model: SailEmbeddingModel, processor: SailProcessor, path: Path) -> Path:
    """Write config.json, model.safetensors and the tokenizer into `path`.

    The saved config names no external weights: every tower is rebuilt from its architecture
    settings and filled from model.safetensors, so the folder is self-contained.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    processor.tokenizer.save_pretrained(path / TOKENIZER_DIR)
    standalone_config(model).save(path / CONFIG_FILE)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, path / WEIGHTS_FILE, metadata={"preset": model.config.name})
    return path


def load_pretrained(
    path: Path, expected_preset: str | None = None
) -> tuple[SailEmbeddingModel, SailProcessor]:
    """Load a folder written by `save_pretrained`."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(
            f"{path} is not a saved model (needs {CONFIG_FILE}, {WEIGHTS_FILE})"
        )
    config = ModelConfig.load(path / CONFIG_FILE)
    if expected_preset is not None and config.name != expected_preset:
        raise ConfigError(
            f"checkpoint {path} was trained with preset {config.name!r}, not {expected_preset!r}"
        )
    config.fuser.tokenizer = str(path / TOKENIZER_DIR)
    model, processor = create_model(config)
    model.load_state_dict(load_file(path / WEIGHTS_FILE))
    return model, processor


def standalone_config(model: SailEmbeddingModel) -> ModelConfig:
    """The model's config with external weight references replaced by architecture settings."""
    config = model.config
    return replace(
        config,
        fuser=replace(
            config.fuser, weights=None, tokenizer=TOKENIZER_DIR, config=model.fuser.architecture()
        ),
        vision=replace(config.vision, weights=None, config=model.vision.tower.architecture()),
        audio=replace(config.audio, weights=None, config=model.audio.tower.architecture()),
    )


def describe(model: SailEmbeddingModel) -> dict[str, int | str]:
    """Parameter counts per part, for logs and model cards."""
    counts = {
        name: sum(p.numel() for p in part.parameters())
        for name, part in (("fuser", model.fuser), ("vision", model.vision), ("audio", model.audio))
    }
    counts["total"] = sum(counts.values())
    return {"preset": model.config.name, **counts}
