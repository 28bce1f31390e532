"""Embedding items in batches: the `Embedder` behind `sail embed`, the pipeline and the server."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from model_code.config import SIDES, ConfigError
from model_code.factory import create_model, load_pretrained
from model_code.items import Item, ItemError, read_items
from model_code.model import SailEmbeddingModel, truncate
from model_code.precision import apply_precision
from model_code.processor import SailProcessor

logger = logging.getLogger(__name__)


@dataclass
class EmbeddingResult:
    """Unit vectors [n, dim] (float32) in input order, their item ids, and skipped item ids."""

    vectors: np.ndarray
    ids: list[str]
    skipped: list[str] = field(default_factory=list)


class Embedder:
    """A model and its processor, ready to turn items into Matryoshka unit vectors."""

    def __init__(
        self,
        model: SailEmbeddingModel,
        processor: SailProcessor,
        device: str = "cpu",
        precision: str = "fp32",
    ):
        """`precision`: fp32, bf16 or int8 (`model_code.precision`; int8 runs on CPU only)."""
        if precision == "int8" and device != "cpu":
            raise ConfigError(f"int8 runs on the CPU only, not on {device}")
        self.model = apply_precision(model.to(device), precision)
        self.processor = processor
        self.device = device
        self.precision = precision

    @classmethod
    def from_preset(cls, preset: str, device: str = "cpu", precision: str = "fp32") -> Embedder:
        return cls(*create_model(preset), device=device, precision=precision)

    @classmethod
    def from_pretrained(cls, path: Path, device: str = "cpu", precision: str = "fp32") -> Embedder:
        return cls(*load_pretrained(path), device=device, precision=precision)

    @property
    def dims(self) -> tuple[int, ...]:
        return self.model.config.matryoshka_dims

    @torch.inference_mode()
    def embed(
        self,
        items: Sequence[Item],
        dim: int | None = None,
        side: str = "target",
        batch_size: int = 32,
        skip_bad: bool = False,
        progress: bool | None = None,
        instruction: str | None = None,
    ) -> EmbeddingResult:
        """Embed items in order. A bad item raises ItemError, or is skipped with `skip_bad`.

        `progress=None` shows a bar for inputs longer than a few batches; `instruction` replaces
        the default instruction of `side` (e.g. a training data set's own).
        """
        dim = self.model.config.check_dim(dim)
        if side not in SIDES:
            raise ConfigError(f"unknown side {side!r}; choose one of {list(SIDES)}")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        instruction = instruction or self.processor.instruction(side)
        show = progress if progress is not None else len(items) > 4 * batch_size
        vectors, ids, skipped = [], [], []
        with tqdm(total=len(items), disable=not show, unit="item", desc="embed") as bar:
            for start in range(0, len(items), batch_size):
                batch = items[start : start + batch_size]
                prepared = []
                for item in batch:
                    try:
                        prepared.append(self.processor.prepare(item))
                    except ItemError as error:
                        if not skip_bad:
                            raise
                        logger.warning("skipping %s", error)
                        skipped.append(item.id)
                if prepared:
                    inputs = self.processor.collate(prepared, instruction).to(self.device)
                    embeddings = truncate(self.model(inputs).float(), dim)
                    vectors.append(embeddings.float().cpu().numpy())
                    ids.extend(p.item_id for p in prepared)
                bar.update(len(batch))
        if skipped:
            logger.warning("skipped %d bad item(s)", len(skipped))
        matrix = np.concatenate(vectors) if vectors else np.zeros((0, dim), dtype=np.float32)
        return EmbeddingResult(matrix.astype(np.float32), ids, skipped)


def embed_file(
    embedder: Embedder,
    input_path: Path,
    output_path: Path,
    dim: int | None = None,
    side: str = "target",
    batch_size: int = 32,
    skip_bad: bool = False,
) -> EmbeddingResult:
    """Embed a JSONL file of items into a .npy matrix; item ids go to `<output>.ids.txt`."""
    items = read_items(input_path, skip_bad=skip_bad)
    result = embedder.embed(items, dim=dim, side=side, batch_size=batch_size, skip_bad=skip_bad)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    np.save(output_path, result.vectors)
    ids_path = output_path.with_suffix(".ids.txt")
    ids_path.write_text("".join(f"{item_id}\n" for item_id in result.ids))
    return result
