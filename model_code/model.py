"""SailEmbeddingModel: [instruction; audio; vision; text] tokens -> fuser -> one unit vector."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from model_code.config import ConfigError, ModelConfig
from model_code.encoders.audio import AudioEncoder
from model_code.encoders.feature_cache import TowerFeatureCache
from model_code.encoders.instruction_adapter import InstructionAdapters
from model_code.encoders.output_basis import OutputBasis
from model_code.encoders.sequence import build_pooler
from model_code.encoders.vision import VisionEncoder
from model_code.fusion import POOLS, build_fuser, fuser_width
from model_code.processor import ModelInputs


class SailEmbeddingModel(nn.Module):
    """The omni-modal encoder. `forward` returns L2-normalised embeddings of the full size."""

    def __init__(self, config: ModelConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.fuser = build_fuser(config.fuser, vocab_size)
        width = fuser_width(self.fuser)
        if width != config.embed_dim:
            raise ConfigError(
                f"the fuser width {width} must equal the largest Matryoshka size "
                f"{config.embed_dim} (preset {config.name!r})"
            )
        self.vision = VisionEncoder(config.vision, width)
        self.audio = AudioEncoder(config.audio, width)
        self.pooler = build_pooler(config.sequence_pooling, width)
        self.output_basis = OutputBasis(width) if config.output_basis else None
        self.instruction_adapters = InstructionAdapters(config.instruction_adapters, width)

    def forward(self, inputs: ModelInputs) -> torch.Tensor:
        tokens, mask, frame_features = self.token_sequence(inputs)
        hidden = self.fuser(tokens, mask)
        # Pool over the item's own tokens: an instruction prefix is attended to but, being the
        # same for every item of a batch, left out of the mean (as instruction-tuned embedders
        # do). Without one, the head is the tokenizer's [CLS], which sentence encoders pool.
        pool_mask = mask.clone()
        if self.config.fuser.instruction_prefix:
            pool_mask[:, : len(inputs.head_ids)] = 0
        fused = POOLS[self.config.fuser.pooling](hidden, pool_mask)
        shortcut = self.vision.shortcut
        if shortcut is None or frame_features is None:
            embeddings = F.normalize(fused, dim=-1)
        else:
            has_frames = inputs.frame_counts > 0
            embeddings = shortcut(fused, frame_features, has_frames, inputs.has_text())
        if self.output_basis is not None:
            embeddings = self.output_basis(embeddings)
        return self.instruction_adapters(embeddings, inputs.instruction)

    def add_instruction_adapter(self, instruction: str) -> None:
        """Give items embedded under `instruction` an adapter of their own (the identity until a
        stage trains it), on the device and in the precision of the rest of the model."""
        if self.instruction_adapters.add(instruction):
            reference = next(self.fuser.parameters())
            self.instruction_adapters.adapters[-1].to(reference.device, reference.dtype)
            self.config.instruction_adapters = tuple(self.instruction_adapters.instructions)

    def pool_sequences(self, vectors: torch.Tensor, contexts: list[list[int]]) -> torch.Tensor:
        """User-interest vectors: each context lists rows of `vectors` (item embeddings)."""
        length = max(len(c) for c in contexts)
        index = torch.zeros(len(contexts), length, dtype=torch.long, device=vectors.device)
        mask = torch.zeros(len(contexts), length, dtype=torch.bool, device=vectors.device)
        for row, context in enumerate(contexts):
            index[row, : len(context)] = torch.tensor(context, device=vectors.device)
            mask[row, : len(context)] = True
        return self.pooler(vectors[index], mask)

    def cache_tower_features(self, directory: Path | None) -> None:
        """Reuse frozen vision-tower features (kept in `directory` across processes)."""
        self.vision.feature_cache = TowerFeatureCache(directory)

    def use_sequence_pooling(self, kind: str) -> None:
        """Switch the sequence pooler (a fresh one) when a stage asks for another kind."""
        if kind != self.config.sequence_pooling:
            self.config.sequence_pooling = kind
            self.pooler = build_pooler(kind, self.config.embed_dim)

    def token_sequence(
        self, inputs: ModelInputs
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Each item's [instruction; audio token; vision latents; text] embeddings, right-padded,
        their mask, and each item's mean tower features ([B, tower width], zeros for items
        without frames; None when the batch has no frames)."""
        lookup = self.fuser.token_embeddings
        head = lookup(inputs.head_ids)
        text = lookup(inputs.text_ids)
        audio = self._media_tokens(self.audio, inputs.audio, inputs.chunk_counts)
        vision, frame_features = self._vision_tokens(inputs)
        sequences = []
        for row in range(len(inputs)):
            parts = [head]
            for tokens in (audio, vision):
                if tokens is not None and tokens[row] is not None:
                    parts.append(tokens[row])
            parts.append(text[row, inputs.text_mask[row]])
            sequences.append(torch.cat(parts))
        lengths = torch.tensor([len(s) for s in sequences], device=head.device)
        padded = nn.utils.rnn.pad_sequence(sequences, batch_first=True)
        mask = torch.arange(padded.shape[1], device=head.device)[None, :] < lengths[:, None]
        return padded, mask.long(), frame_features

    def _vision_tokens(self, inputs: ModelInputs):
        """Per-item Perceiver tokens (None without frames) and the per-item mean tower features."""
        if inputs.pixels is None:
            return None, None
        counts = inputs.frame_counts
        present = counts > 0
        dtype = next(self.vision.parameters()).dtype  # bf16 under DeepSpeed on GPUs
        tokens, pooled = self.vision.encode(inputs.pixels.to(dtype), counts[present])
        features = pooled.new_zeros(len(counts), pooled.shape[1])
        features[present] = pooled
        encoded = iter(tokens)
        return [next(encoded) if has else None for has in present.tolist()], features

    @staticmethod
    def _media_tokens(encoder: nn.Module, values: torch.Tensor | None, counts: torch.Tensor):
        """Per-item token blocks from a media encoder; None for items without that medium."""
        if values is None:
            return None
        present = counts > 0
        dtype = next(encoder.parameters()).dtype  # bf16 under DeepSpeed on GPUs
        encoded = iter(encoder(values.to(dtype), counts[present]))
        return [next(encoded) if has else None for has in present.tolist()]


def truncate(embeddings: torch.Tensor, dim: int) -> torch.Tensor:
    """A Matryoshka prefix of the embeddings, re-normalised to unit length."""
    return F.normalize(embeddings[..., :dim], dim=-1)
