"""Where a training step's time goes: wall time per part, per step, after the warm-up.

`StepProfile(task)` wraps the task's processor (`prepare`: decoding and cleaning items;
`collate`: tokenisation and padding) and hooks the model's parts (the vision tower, its
projection and Perceiver, the fuser, which embeds the text too, and the whole model); the
training loop times the task's call, `backward` and the optimiser step with `part(...)`. The
model's forward outside its hooked parts is `other forward`; the task's call outside the
processor and the model is `loss`. Steps before `start()` are not counted.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager

PARTS = (
    "prepare items",
    "tokenise and collate",
    "vision tower",
    "vision projection and Perceiver",
    "fuser (text and fusion)",
    "other forward",
    "loss",
    "backward",
    "optimizer step",
)


class StepProfile:
    """Seconds per part (see the module doc), summed while counting."""

    def __init__(self, task):
        self.seconds: dict[str, float] = defaultdict(float)
        self.steps = 0
        self.counting = False
        processor, model = task.processor, task.model
        processor.prepare = self._wrapped(processor.prepare, "prepare items")
        processor.collate = self._wrapped(processor.collate, "tokenise and collate")
        vision = model.vision
        self._hook(vision.tower, "vision tower")
        self._hook(vision.projection, "vision projection and Perceiver")
        self._hook(vision.perceiver, "vision projection and Perceiver")
        self._hook(model.fuser, "fuser (text and fusion)")
        self._hook(model, "model")

    def start(self) -> None:
        """Count from the next step on."""
        self.counting = True

    @contextmanager
    def part(self, name: str):
        began = time.perf_counter()
        try:
            yield
        finally:
            self._add(name, time.perf_counter() - began)

    def step_done(self) -> None:
        self.steps += self.counting

    def per_step(self) -> dict[str, float]:
        """Seconds per step of each part in PARTS, and `step` (their sum)."""
        s = self.seconds
        hooked = sum(s[p] for p in PARTS[2:5])
        parts = {p: s[p] for p in PARTS[:5]}
        parts["other forward"] = s["model"] - hooked
        parts["loss"] = s["task"] - s["model"] - s["prepare items"] - s["tokenise and collate"]
        parts |= {p: s[p] for p in PARTS[7:]}
        steps = max(self.steps, 1)
        out = {p: round(max(v, 0.0) / steps, 4) for p, v in parts.items()}
        return out | {"step": round(sum(out.values()), 4)}

    def _add(self, name: str, seconds: float) -> None:
        if self.counting:
            self.seconds[name] += seconds

    def _wrapped(self, method, name: str):
        def timed(*args, **kwargs):
            with self.part(name):
                return method(*args, **kwargs)

        return timed

    def _hook(self, module, name: str) -> None:
        began: list[float] = []

        def before(_module, _inputs):
            began.append(time.perf_counter())

        def after(_module, _inputs, _output):
            self._add(name, time.perf_counter() - began.pop())

        module.register_forward_pre_hook(before)
        module.register_forward_hook(after)
