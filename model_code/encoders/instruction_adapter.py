"""Instruction adapters: a residual MLP on the final embedding of items embedded under one
instruction, and of no other item.

The fuser is shared by every kind of content. When the collaboration-aware stages moved it to
pull movies towards what users watch together, openclipart captions moved with it, away from the
drawings the frozen vision shortcut maps next to them (docs/training.md). An adapter keyed by an
instruction ("Represent the movie.") carries a task's own signal instead: the CRE stages freeze
the fuser and train only the adapter, so items under any other instruction embed exactly as
before. It starts as the identity (its output layer is zero), so adding one changes nothing until
it trains. A request reaches it by naming the instruction, as the evaluation suite and the
publish step do with each data set's own.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

HIDDEN_SCALE = 4  # hidden width = 4 x embedding width, as a transformer's feed-forward block


class ResidualAdapter(nn.Module):
    """embedding -> normalize(embedding + up(gelu(down(layer_norm(embedding)))))."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.down = nn.Linear(width, HIDDEN_SCALE * width)
        self.up = nn.Linear(HIDDEN_SCALE * width, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        delta = self.up(F.gelu(self.down(self.norm(embeddings))))
        return F.normalize(embeddings + delta, dim=-1)


class InstructionAdapters(nn.Module):
    """One `ResidualAdapter` per instruction; items under any other instruction pass as they are."""

    def __init__(self, instructions: Iterable[str], width: int):
        super().__init__()
        self.width = width
        self.instructions: list[str] = []
        self.adapters = nn.ModuleList()
        for instruction in instructions:
            self.add(instruction)

    def add(self, instruction: str) -> bool:
        """Give `instruction` an adapter (the identity until trained); False if it has one."""
        if instruction in self.instructions:
            return False
        self.instructions.append(instruction)
        self.adapters.append(ResidualAdapter(self.width))
        return True

    def forward(self, embeddings: torch.Tensor, instruction: str) -> torch.Tensor:
        if instruction not in self.instructions:
            return embeddings
        adapter = self.adapters[self.instructions.index(instruction)]
        return adapter(embeddings.to(adapter.norm.weight.dtype))  # up may be quantized
