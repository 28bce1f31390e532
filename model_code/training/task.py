"""The training task: the model plus every loss head, so the training loop stays thin.

`forward(batch)` returns the weighted total loss and each term. Pair batches are scored by
dataset-driven pattern matching: every valid query->target pattern of a sample is embedded in
one forward pass per side, and rows lacking a pattern's modalities drop out of its loss.
"""

from __future__ import annotations

import random

import torch
from torch import nn

from model_code.config import MODALITIES
from model_code.items import Item
from model_code.losses import (
    LateFusionGate,
    TemperatureBank,
    anchor_loss,
    candidate_info_nce,
    cosent,
    hard_negative_info_nce,
    info_nce,
    late_fusion_loss,
    matryoshka,
    micl,
)
from model_code.model import SailEmbeddingModel
from model_code.processor import SailProcessor
from model_code.training.sources import DistillBatch, PairBatch, SequenceBatch
from model_code.training.stages import Pattern, StageConfig

VISION_ONLY = Pattern(("vision",), ("vision",))
TEXT_ONLY = Pattern(("text",), ("text",))


class SailTrainingTask(nn.Module):
    """Model + per-data-set temperatures + late-fusion gate + sequence pooler + ID projection."""

    def __init__(
        self,
        model: SailEmbeddingModel,
        processor: SailProcessor,
        stage: StageConfig,
        teacher_dim: int | None = None,
    ):
        super().__init__()
        dim = model.config.embed_dim
        self.model = model
        self.processor = processor
        self.stage = stage
        self.temperatures = TemperatureBank({d.name: d.temperature for d in stage.datasets})
        self.gate = LateFusionGate(dim)
        if any("seq2item" in d.losses for d in stage.datasets):
            model.use_sequence_pooling(stage.sequence_pooling)
        for dataset in stage.datasets:
            if dataset.adapter:
                for instruction in dataset.instructions.values():
                    model.add_instruction_adapter(instruction)
        self.teacher_projection = nn.Linear(teacher_dim, dim) if teacher_dim else None
        self.rng = random.Random(stage.seed)
        self.frozen = [frozen_part(model, part) for part in stage.freeze]
        for module in self.frozen:
            module.requires_grad_(False)

    def train(self, mode: bool = True) -> SailTrainingTask:
        """Frozen towers stay in eval mode (their batch-norm statistics must not drift)."""
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def forward(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if isinstance(batch, PairBatch):
            terms = self._pair_terms(batch)
        elif isinstance(batch, SequenceBatch):
            terms = self._sequence_terms(batch)
        elif isinstance(batch, DistillBatch):
            terms = self._distill_terms(batch)
        else:
            raise TypeError(f"unknown batch type {type(batch).__name__}")
        weights = batch.dataset.losses
        total = sum(weights[name] * value for name, value in terms.items())
        return total, terms

    def embed(self, views: list[tuple[Item, tuple[str, ...]]], instruction: str):
        """Embed (item, modalities) views in one forward pass; also says which views are usable."""
        prepared = [
            self.processor.prepare(item, training=self.training, rng=self.rng, modalities=mods)
            for item, mods in views
        ]
        inputs = self.processor.collate(prepared, instruction).to(self._device)
        present = [p.modalities for p in prepared]
        return self.model(inputs), present

    def _pair_terms(self, batch: PairBatch) -> dict[str, torch.Tensor]:
        config = batch.dataset
        patterns = list(config.parsed_patterns)
        if {"micl", "late_fusion"} & set(config.losses):
            patterns += [VISION_ONLY, TEXT_ONLY]
        n = len(batch.pairs)
        queries = [(pair.query, p.query) for p in patterns for pair in batch.pairs]
        targets = [(pair.target, p.target) for p in patterns for pair in batch.pairs]
        negatives = [(neg, patterns[0].target) for row in batch.negatives for neg in row]
        q, q_present = self.embed(queries, config.instructions["query"])
        t, t_present = self.embed(targets + negatives, config.instructions["target"])
        views = {}
        for index, pattern in enumerate(patterns):
            rows = slice(index * n, (index + 1) * n)
            valid = torch.tensor(
                [
                    _usable(qp, pattern.query) and _usable(tp, pattern.target)
                    for qp, tp in zip(q_present[rows], t_present[rows], strict=True)
                ],
                device=q.device,
            )
            views[pattern] = (q[rows], t[rows], valid)
        tau = self.temperatures[config.name]
        terms = {}
        main = [views[p] for p in config.parsed_patterns]
        if "infonce" in config.losses:
            directions = [(qv, tv, ok) for qv, tv, ok in main]
            if config.options.get("symmetric"):  # target->query on the same embeddings
                directions += [(tv, qv, ok) for qv, tv, ok in main]
            losses = [self._matryoshka(info_nce, a, b, tau, valid=ok) for a, b, ok in directions]
            terms["infonce"] = torch.stack(losses).mean()
        if "cosent" in config.losses:
            scores = torch.tensor([pair.score for pair in batch.pairs], device=q.device)
            terms["cosent"] = cosent(main[0][0], main[0][1], scores)
        if "micl" in config.losses:
            vq, vt, v_ok = views[VISION_ONLY]
            nq, nt, n_ok = views[TEXT_ONLY]
            terms["micl"] = micl(vq, vt, nq, nt, tau, visual_valid=v_ok, text_valid=n_ok)
        if "late_fusion" in config.losses:
            vq, vt, v_ok = views[VISION_ONLY]
            nq, nt, n_ok = views[TEXT_ONLY]
            both = v_ok & n_ok
            terms["late_fusion"] = (
                late_fusion_loss(self.gate, vq[both], nq[both], vt[both], nt[both], tau)
                if int(both.sum()) > 1
                else q.sum() * 0
            )
        if "anchor" in config.losses:
            anchors = batch.anchors.to(q.device)
            query, target, _ = main[0]
            terms["anchor"] = (
                anchor_loss(query, anchors[:, 0]) + anchor_loss(target, anchors[:, 1])
            ) / 2
        if "hard_negative" in config.losses:
            terms["hard_negative"] = self._hard_negative_term(
                batch, main[0], t[len(targets) :], tau
            )
        return terms

    def _hard_negative_term(self, batch, view, negative_vectors, tau) -> torch.Tensor:
        qv, tv, _ = view
        k = max((len(row) for row in batch.negatives), default=0)
        if k == 0:
            return info_nce(qv, tv, tau)
        padded = qv.new_zeros(len(batch.pairs), k, qv.shape[-1])
        mask = torch.zeros(len(batch.pairs), k, dtype=torch.bool, device=qv.device)
        cursor = 0
        for row, negatives in enumerate(batch.negatives):
            padded[row, : len(negatives)] = negative_vectors[cursor : cursor + len(negatives)]
            mask[row, : len(negatives)] = True
            cursor += len(negatives)
        return hard_negative_info_nce(qv, tv, padded, tau, negative_mask=mask)

    def _sequence_terms(self, batch: SequenceBatch) -> dict[str, torch.Tensor]:
        """Each user-interest vector against every item the step embeds (its targets and all
        contexts): the next item is the positive, the user's own context items are left out."""
        config = batch.dataset
        unique = {item.id: item for context in batch.contexts for item in context}
        unique.update({item.id: item for item in batch.targets})
        order = list(unique)
        vectors, _ = self.embed(
            [(unique[i], MODALITIES) for i in order], config.instructions["target"]
        )
        position = {item_id: row for row, item_id in enumerate(order)}
        contexts = [[position[i.id] for i in context] for context in batch.contexts]
        users = self.model.pool_sequences(vectors, contexts)
        positives = torch.tensor([position[item.id] for item in batch.targets], device=users.device)
        excluded = torch.zeros(len(contexts), len(order), dtype=torch.bool, device=users.device)
        for row, context in enumerate(contexts):
            excluded[row, context] = True
        excluded[torch.arange(len(contexts)), positives] = False
        tau = self.temperatures[config.name]
        loss = self._matryoshka(
            candidate_info_nce, users, vectors, tau, positives=positives, excluded=excluded
        )
        return {"seq2item": loss}

    def _distill_terms(self, batch: DistillBatch) -> dict[str, torch.Tensor]:
        """Each item's content embedding against the projected ID vectors of the teacher's
        whole catalogue: its own ID vector is the positive, every other item's a negative."""
        config = batch.dataset
        content, _ = self.embed(
            [(i, MODALITIES) for i in batch.items], config.instructions["target"]
        )
        teacher = self.teacher_projection(batch.catalogue.to(content.device))
        positives = batch.rows.to(content.device)
        tau = self.temperatures[config.name]
        loss = self._matryoshka(candidate_info_nce, content, teacher, tau, positives=positives)
        return {"id2item": loss}

    def _matryoshka(self, loss_fn, query, target, tau, **kwargs) -> torch.Tensor:
        return matryoshka(
            loss_fn,
            query,
            target,
            self.model.config.matryoshka_dims,
            self.stage.matryoshka_weights,
            temperature=tau,
            **kwargs,
        )

    @property
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device


def frozen_part(model, part: str) -> nn.Module:
    """The module a stage's `freeze` entry names: the fuser, a medium's tower, or the fitted
    map of the vision shortcut (an empty module when the model has no shortcut)."""
    if part == "fuser":
        return model.fuser
    if part == "shortcut":
        return model.vision.shortcut.linear if model.vision.shortcut else nn.Identity()
    return getattr(model, part).tower


def _usable(present: set[str], wanted: tuple[str, ...]) -> bool:
    """A view is usable when it has every wanted modality (omni: any modality at all)."""
    if set(wanted) == set(MODALITIES):
        return bool(present)
    return set(wanted) <= present
