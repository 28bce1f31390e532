"""The trainer: one loop on the DeepSpeed engine (ZeRO-2), the same code on CPU and on GPUs.

On CPU it runs as one gloo process with torch's Adam (no op compilation); under the deepspeed
launcher on GPUs it runs one process per GPU with bf16. Every step draws ONE data set by weight
(stochastic specialization) and the whole batch from it.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import shutil
import socket
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from model_code.config import ConfigError
from model_code.factory import save_pretrained
from model_code.staging import staged
from model_code.training.callbacks import MetricsJsonl, TrainingCallback
from model_code.training.lr_schedule import stage_schedule
from model_code.training.stages import StageConfig
from model_code.training.task import SailTrainingTask

logger = logging.getLogger(__name__)
CHECKPOINTS = "checkpoints"
MODEL_DIR = "model"
HEADS_FILE = "heads.pt"


@dataclass
class TrainResult:
    out_dir: Path
    model_dir: Path
    steps: int
    final_loss: float
    seconds: float


class StochasticSpecializer:
    """Draws one data set per step, by the stage's sampling weights."""

    def __init__(self, stage: StageConfig, weights: dict[str, float] | None = None):
        weights = weights or {d.name: d.weight for d in stage.datasets}
        self.names = [d.name for d in stage.datasets]
        self.weights = [weights[name] for name in self.names]
        if sum(self.weights) <= 0:
            raise ValueError(f"stage {stage.name!r}: sampling weights sum to zero")

    def draw(self, rng: random.Random) -> str:
        return rng.choices(self.names, weights=self.weights, k=1)[0]


class StepPace:
    """Throughput and ETA for the step rows; the clock starts with this process's first step.

    `samples_per_second`: samples (batch size x processes) over the last `window` steps;
    `seconds_left`: the mean step time so far x the steps left; `elapsed_seconds`: since the start
    (after a resume, since the resumed step).
    """

    def __init__(self, start: int, total: int, samples_per_step: int, window: int = 20):
        self.start, self.total, self.samples_per_step = start, total, samples_per_step
        self.began = time.perf_counter()
        self.recent = deque([(start, self.began)], maxlen=window + 1)

    def after(self, step: int) -> dict[str, float]:
        """The pace once `step` steps are done."""
        now = time.perf_counter()
        self.recent.append((step, now))
        first_step, first_time = self.recent[0]
        elapsed = now - self.began
        return {
            "samples_per_second": (step - first_step) * self.samples_per_step / (now - first_time),
            "seconds_left": elapsed / (step - self.start) * (self.total - step),
            "elapsed_seconds": elapsed,
        }


def show_progress(rank: int) -> bool:
    """A progress bar on process 0, unless SAIL_PROGRESS=0 or TQDM_DISABLE is set."""
    off = os.environ.get("SAIL_PROGRESS") == "0" or bool(os.environ.get("TQDM_DISABLE"))
    return rank == 0 and not off


def process_batch(source, rng: random.Random, size: int, rank: int, world_size: int):
    """This process's batch. Every process draws one batch per process from the shared stream
    and keeps its own: the step's data set agrees across processes, the samples differ."""
    batches = [source.batch(rng, size) for _ in range(world_size)]
    return batches[rank]


def deepspeed_config(stage: StageConfig, path: Path | None = None) -> dict[str, Any]:
    """The committed ZeRO-2 config with this stage's batch size, lr, decay and clipping."""
    if path is None:
        text = resources.files("model_code.training.configs").joinpath("deepspeed_zero2.json")
        config = json.loads(text.read_text())
    else:
        config = json.loads(Path(path).read_text())
    config["train_micro_batch_size_per_gpu"] = stage.batch_size
    config["gradient_clipping"] = stage.grad_clip
    config["optimizer"]["params"].update(lr=stage.lr, weight_decay=stage.weight_decay)
    on_gpu = torch.cuda.is_available()
    config["bf16"] = {"enabled": on_gpu}
    config["optimizer"]["params"]["torch_adam"] = not on_gpu
    return config


@contextmanager
def distributed_defaults() -> Iterator[None]:
    """Single-process defaults when not started by the deepspeed launcher (CPU: gloo).

    The rendezvous address and port it sets hold only while the process group starts: the group
    keeps listening on that port, and a process started later from this one (a pipeline step run
    by a test, say) must pick a free port of its own instead of inheriting a taken one."""
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    rendezvous = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    set_here = [name for name in rendezvous if name not in os.environ]
    for name in set_here:
        os.environ[name] = rendezvous[name]
    for name, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1")):
        os.environ.setdefault(name, value)
    try:
        yield
    finally:
        for name in set_here:
            os.environ.pop(name, None)


class Trainer:
    """Runs one stage: DeepSpeed engine, schedule, checkpoints, resume, callbacks, export."""

    def __init__(
        self,
        task: SailTrainingTask,
        sources: dict[str, Any],
        out_dir: Path,
        callbacks: list[TrainingCallback] | None = None,
        sampling_weights: dict[str, float] | None = None,
        deepspeed_config_path: Path | None = None,
    ):
        self.task = task
        self.stage = task.stage
        self.sources = sources
        self.out_dir = Path(out_dir)
        self.callbacks = list(callbacks or [])
        self.specializer = StochasticSpecializer(self.stage, sampling_weights)
        self.ds_config = deepspeed_config(self.stage, deepspeed_config_path)
        self.rng = random.Random(self.stage.seed)  # shared by all processes
        self.rank, self.world_size = 0, 1  # set from the engine in `fit`

    def fit(self, resume: Path | None = None) -> TrainResult:
        import deepspeed

        _seed_everything(self.stage.seed)
        stage = self.stage
        checkpointing = stage.gradient_checkpointing
        if checkpointing or (checkpointing is None and torch.cuda.is_available()):
            self.task.model.fuser.net.activation_checkpointing_enable()
        with distributed_defaults():
            engine, _, _, scheduler = deepspeed.initialize(
                model=self.task,
                model_parameters=self.parameter_groups(),
                config=self.engine_config(int(os.environ["WORLD_SIZE"])),
                lr_scheduler=lambda optimizer: stage_schedule(optimizer, stage),
            )
        self.rank, self.world_size = engine.global_rank, engine.world_size
        zero_fill = engine.zero_optimization_stage() == 0
        if self.rank:  # other processes: their own dropout and field-dropout draws
            torch.manual_seed(stage.seed + self.rank)
            self.task.rng.seed(stage.seed + self.rank)
        start = self._resume(engine, resume) if resume else 0
        callbacks = []
        if self.rank == 0:  # one process writes metrics, reports and the exported model
            metrics = MetricsJsonl(self.out_dir / "metrics.jsonl", resume_step=start)
            callbacks = [metrics, *self.callbacks]
        info = {"stage": stage.name, "steps": stage.steps, "start_step": start}
        info["config"] = self.resolved_config()
        for callback in callbacks:
            callback.on_start(info)
        began, loss_value = time.time(), float("nan")
        pace = StepPace(start, stage.steps, stage.batch_size * self.world_size)
        bar = tqdm(
            total=stage.steps,
            initial=start,
            desc=stage.name,
            unit="step",
            file=sys.stderr,
            mininterval=0.5 if sys.stderr.isatty() else 10,
            disable=not show_progress(self.rank),
        )
        engine.train()
        with bar:
            for step in range(start, stage.steps):
                name = self.specializer.draw(self.rng)
                batch = process_batch(
                    self.sources[name], self.rng, stage.batch_size, self.rank, self.world_size
                )
                loss, terms = engine(batch)
                if not loss.requires_grad:
                    raise ConfigError(
                        f"stage {stage.name!r}, data set {name!r}: its loss reaches no trainable "
                        f"parameter (frozen: {stage.freeze})"
                    )
                engine.backward(loss)
                if zero_fill:
                    _fill_missing_gradients(self.task)
                engine.step()
                loss_value = float(loss.detach())
                row = {
                    "step": step + 1,
                    "dataset": name,
                    "loss": loss_value,
                    **{name_: float(v.detach()) for name_, v in terms.items()},
                    "lr": scheduler.get_last_lr()[0],
                    **{
                        f"temperature/{d}": float(self.task.temperatures[d].detach())
                        for d in self.task.temperatures.names
                    },
                    **pace.after(step + 1),
                }
                bar.set_postfix(
                    {"loss": f"{loss_value:.4f}", "samples/s": f"{row['samples_per_second']:.1f}"},
                    refresh=False,
                )
                bar.update()
                for callback in callbacks:
                    callback.on_step(row)
                if (step + 1) % stage.checkpoint_every == 0 or step + 1 == stage.steps:
                    self._checkpoint(engine, step + 1, callbacks)
        model_dir = self.out_dir / MODEL_DIR
        if self.rank == 0:
            self.export(model_dir)
        if self.world_size > 1:
            torch.distributed.barrier()  # no process returns before the model is written
        result = TrainResult(self.out_dir, model_dir, stage.steps, loss_value, time.time() - began)
        for callback in callbacks:
            callback.on_end(result.__dict__)
        return result

    def engine_config(self, world_size: int) -> dict[str, Any]:
        """The DeepSpeed config for `world_size` processes: ZeRO as configured across several,
        stage 0 for one (nothing to partition; ZeRO-2's flat gradient buffers would only add
        copies to every step). Under stage 0 `fit` gives the parameters a step did not reach
        zero gradients, as ZeRO's flat buffers do, so Adam updates them the same way."""
        if world_size > 1:
            return self.ds_config
        return {**self.ds_config, "zero_optimization": {"stage": 0}}

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Weights that start from a solution (the pretrained fuser, the ridge-fitted vision
        shortcut) at the stage's lr, everything else at `head_lr_scale` x lr."""
        model = self.task.model
        fitted = [model.fuser] + ([model.vision.shortcut.linear] if model.vision.shortcut else [])
        fitted_ids = {id(p) for part in fitted for p in part.parameters()}
        trainable = [p for p in self.task.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in trainable if id(p) in fitted_ids], "lr": self.stage.lr},
            {
                "params": [p for p in trainable if id(p) not in fitted_ids],
                "lr": self.stage.lr * self.stage.head_lr_scale,
            },
        ]
        return [group for group in groups if group["params"]]

    def resolved_config(self) -> dict[str, Any]:
        """Everything this run trains with, by section: the stage (data sets, losses,
        optimisation), the DeepSpeed config as given to the engine, the model's config, and the
        run's processes and sampling weight of each data set."""
        names, weights = self.specializer.names, self.specializer.weights
        return {
            "stage": self.stage.to_dict(),
            "deepspeed": self.engine_config(self.world_size),
            "model": self.task.model.config.to_dict(),
            "run": {
                "world_size": self.world_size,
                "sampling": dict(zip(names, weights, strict=True)),
            },
        }

    def export(self, path: Path) -> Path:
        """The trained model as a self-contained folder, plus the task heads beside it. Written
        beside `path` and renamed into place, so `path` never holds half a model."""
        with staged(path) as partial:
            self._write_model(partial)
        return path

    def _write_model(self, path: Path) -> None:
        save_pretrained(self.task.model, self.task.processor, path)
        heads = {
            "stage": self.stage.to_dict(),
            "temperatures": self.task.temperatures.state_dict(),
            "gate": self.task.gate.state_dict(),
            "teacher_projection": (
                self.task.teacher_projection.state_dict() if self.task.teacher_projection else None
            ),
        }
        torch.save(heads, path / HEADS_FILE)

    def _checkpoint(self, engine, step: int, callbacks) -> None:
        ranks = [None] * self.world_size
        torch.distributed.all_gather_object(ranks, self._rank_rng_state())
        state = {
            "step": step,
            "python_rng": self.rng.getstate(),
            "numpy_rng": np.random.get_state(),
            "ranks": ranks,
        }
        path = self.out_dir / CHECKPOINTS
        engine.save_checkpoint(str(path), tag=f"step{step}", client_state=state)
        if self.world_size > 1:
            torch.distributed.barrier()  # every process has written its part
        if self.rank == 0:
            for old in _checkpoint_tags(path)[self.stage.keep_checkpoints :]:
                shutil.rmtree(path / old)
        for callback in callbacks:
            callback.on_checkpoint(path / f"step{step}", step)

    def _resume(self, engine, resume: Path) -> int:
        resume = Path(resume)
        folder = resume / CHECKPOINTS if (resume / CHECKPOINTS).is_dir() else resume
        tags = _resume_order(folder)
        if not tags:
            raise FileNotFoundError(f"no checkpoint to resume from in {resume}")
        for tag in tags:  # the newest first; an unreadable one (a write cut short) is skipped
            written = _writers(folder / tag)
            if written != self.world_size:  # ZeRO cannot re-partition its optimizer state
                raise ConfigError(
                    f"checkpoint {folder / tag} was written by {written} processes; "
                    f"resume it with as many (this run has {self.world_size})"
                )
            try:
                _, state = engine.load_checkpoint(str(folder), tag=tag)
                break
            except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as error:
                if tag == tags[-1]:
                    raise
                logger.warning("checkpoint %s unreadable (%s); trying the one before", tag, error)
        self.rng.setstate(state["python_rng"])
        np.random.set_state(state["numpy_rng"])
        mine = state["ranks"][self.rank]
        self.task.rng.setstate(mine["task_rng"])
        torch.set_rng_state(mine["torch_rng"])
        if "cuda_rng" in mine:
            torch.cuda.set_rng_state(mine["cuda_rng"])
        logger.info("resumed %s at step %d", folder, state["step"])
        return int(state["step"])

    def _rank_rng_state(self) -> dict[str, Any]:
        """The random states that differ between processes."""
        state = {"task_rng": self.task.rng.getstate(), "torch_rng": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state()
        return state


def _fill_missing_gradients(module: torch.nn.Module) -> None:
    """Zero gradients for the trainable parameters a step did not reach (ZeRO-2's behaviour)."""
    for parameter in module.parameters():
        if parameter.requires_grad and parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)


def _writers(checkpoint: Path) -> int:
    """How many processes wrote a checkpoint: one ZeRO optimizer file each, or one process
    (ZeRO stage 0, the optimizer in the model states file)."""
    partitions = len(list(checkpoint.glob("zero_pp_rank_*_optim_states.pt")))
    return partitions or int((checkpoint / "mp_rank_00_model_states.pt").is_file())


def _checkpoint_tags(folder: Path) -> list[str]:
    """The checkpoint tags (`step<N>`) in `folder`, the newest first."""
    steps = [p.name for p in folder.glob("step*") if p.is_dir() and p.name[4:].isdigit()]
    return sorted(steps, key=lambda name: int(name[4:]), reverse=True)


def _resume_order(folder: Path) -> list[str]:
    """Tags to resume from, best first: the one `latest` names (DeepSpeed writes it once a
    checkpoint is complete), then the older ones. A newer tag was never completed."""
    tags = _checkpoint_tags(folder)
    latest_file = folder / "latest"
    latest = latest_file.read_text().strip() if latest_file.is_file() else ""
    return tags[tags.index(latest) :] if latest in tags else tags


def _free_port() -> int:
    """A local port nothing listens on now (a fixed one collides with other runs)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
