"""Learning-rate schedule of a stage: linear warm-up over `warmup_steps`, then cosine decay from
each parameter group's peak to `min_lr / lr` of it at the last step. It is transformers'
`get_cosine_with_min_lr_schedule_with_warmup_lr_rate`; the trainer and the bench's plain loop
both take it from here."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from transformers.optimization import get_cosine_with_min_lr_schedule_with_warmup_lr_rate

from model_code.training.stages import StageConfig


def stage_schedule(optimizer: Optimizer, stage: StageConfig) -> LambdaLR:
    """The stage's schedule over `optimizer`'s groups (each scaled from its own initial lr)."""
    return get_cosine_with_min_lr_schedule_with_warmup_lr_rate(
        optimizer,
        num_warmup_steps=stage.warmup_steps,
        num_training_steps=stage.steps,
        min_lr_rate=stage.min_lr / stage.lr,
    )
