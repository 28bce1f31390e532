"""One training variant in its own process (started by `bench.training`).

`python -m bench.training_worker PREPARED.pkl OUT.json --engine deepspeed|plain --preset P
--warmup W --threads T --cache-dir DIR` trains the pickled stage for its steps and writes
samples/s over the steps after the warm-up, the RSS high-water marks and every step's loss; the
plain engine also the seconds per step of each part of a step (`bench.step_profile`: a few clock
reads per module call, nothing against a step of seconds).
Both engines draw the same batches (the trainer's specializer and seeded RNG) from the same
initial weights and parameter groups.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pickle
import resource
import tempfile
import time
from pathlib import Path

import torch

from model_code.training.callbacks import TrainingCallback


class Finished(Exception):
    """Raised after the last measured step: checkpointing and export are not part of it."""


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # kB on Linux


class StepClock(TrainingCallback):
    """The time, loss and RSS high-water mark after each optimiser step; stops after `total`."""

    def __init__(self, total: int):
        self.total = total
        self.times: list[float] = []
        self.losses: list[float] = []
        self.peak_rss_mb = 0.0

    def on_step(self, row: dict) -> None:
        self.times.append(time.perf_counter())
        self.losses.append(float(row["loss"]))
        if len(self.times) == self.total:
            self.peak_rss_mb = peak_rss_mb()
            raise Finished


def train_deepspeed(task, sources, clock: StepClock) -> None:
    from model_code.training.trainer import Trainer

    with (
        tempfile.TemporaryDirectory(prefix="sail-bench-ds-") as out,
        contextlib.suppress(Finished),
    ):
        Trainer(task, sources, Path(out), callbacks=[clock]).fit()


def train_plain(task, sources, clock: StepClock, profile=None, warmup: int = 0) -> None:
    """The trainer's loop without DeepSpeed: torch AdamW with the same groups, betas, eps and
    weight decay, the same warm-up/cosine schedule and gradient clipping.

    A step reaches only its data set's parameters (stochastic specialization). ZeRO's flat
    gradient buffers give the others zero gradients, which Adam still applies (momentum, weight
    decay), where torch skips a parameter whose grad is None; so the loop fills in zeros too."""
    from model_code.training.lr_schedule import stage_schedule
    from model_code.training.trainer import Trainer, _seed_everything

    trainer = Trainer(task, sources, Path(tempfile.gettempdir()))  # draws, groups; no engine
    stage = trainer.stage
    _seed_everything(stage.seed)
    if stage.gradient_checkpointing:
        task.model.fuser.net.gradient_checkpointing_enable()
    options = trainer.ds_config["optimizer"]["params"]
    groups = trainer.parameter_groups()
    optimizer = torch.optim.AdamW(
        groups,
        lr=stage.lr,
        betas=tuple(options["betas"]),
        eps=options["eps"],
        weight_decay=stage.weight_decay,
    )
    scheduler = stage_schedule(optimizer, stage)
    parameters = [p for group in groups for p in group["params"]]
    part = profile.part if profile is not None else _untimed
    task.train()
    try:
        for step in range(stage.steps):
            if profile is not None and step == warmup:
                profile.start()
            name = trainer.specializer.draw(trainer.rng)
            batch = sources[name].batch(trainer.rng, stage.batch_size)
            with part("task"):
                loss, _terms = task(batch)
            optimizer.zero_grad(set_to_none=True)
            with part("backward"):
                loss.backward()
            with part("optimizer step"):
                for parameter in parameters:
                    if parameter.grad is None:
                        parameter.grad = torch.zeros_like(parameter)
                torch.nn.utils.clip_grad_norm_(parameters, stage.grad_clip)
                optimizer.step()
                scheduler.step()
            if profile is not None:
                profile.step_done()
            clock.on_step({"loss": float(loss.detach())})
    except Finished:
        pass


@contextlib.contextmanager
def _untimed(_name: str):
    yield


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.training_worker")
    parser.add_argument("prepared", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--engine", choices=("deepspeed", "plain"), required=True)
    parser.add_argument("--preset", required=True)
    parser.add_argument("--warmup", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from model_code.factory import create_model
    from model_code.training.task import SailTrainingTask

    stage, sources, teacher_dim = pickle.loads(args.prepared.read_bytes())
    torch.manual_seed(stage.seed)
    model, processor = create_model(args.preset)
    model.cache_tower_features(args.cache_dir)
    task = SailTrainingTask(model, processor, stage, teacher_dim=teacher_dim)
    before = peak_rss_mb()
    clock = StepClock(stage.steps)
    profile = None
    if args.engine == "plain":
        from bench.step_profile import StepProfile

        profile = StepProfile(task)
        train_plain(task, sources, clock, profile, args.warmup)
    else:
        train_deepspeed(task, sources, clock)
    if len(clock.times) != stage.steps:
        raise SystemExit(f"ran {len(clock.times)} of {stage.steps} steps")
    measured = stage.steps - args.warmup
    seconds = clock.times[-1] - clock.times[args.warmup - 1]
    report = {
        "batch_size": stage.batch_size,
        "steps": measured,
        "seconds": round(seconds, 4),
        "step_s": round(seconds / measured, 4),
        "samples_per_s": round(measured * stage.batch_size / seconds, 3),
        "peak_rss_mb": clock.peak_rss_mb,
        "rss_before_training_mb": before,
        "torch_threads": torch.get_num_threads(),
        "losses": [round(loss, 6) for loss in clock.losses],
    }
    if profile is not None:
        report["profile"] = profile.per_step()
    args.out.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
