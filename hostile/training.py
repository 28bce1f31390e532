"""Training killed while it writes a checkpoint, then resumed.

Three runs of the tiny preset's content2 stage (the real trainer on DeepSpeed, synthetic data),
`STEPS` steps with a checkpoint every `EVERY`:

- uninterrupted, the reference;
- killed (SIGKILL) in a process of its own half way through writing the checkpoint of step
  `KILL_AT`: its `torch.save` writes half the bytes of one file of that checkpoint, then the
  process kills itself, so the folder holds a truncated checkpoint and `latest` still names the one
  before;
- resumed from that folder to the end.

The row holds when the resume starts from the newest complete checkpoint (`KILL_AT - EVERY`), ends
at the last step, and its final loss equals the uninterrupted run's within `LOSS_TOLERANCE`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from hostile.section import Context, Section

STEPS, EVERY, KILL_AT = 8, 2, 6
SETTINGS = {"batch_size": 4, "checkpoint_every": EVERY, "warmup_steps": 1}
LOSS_TOLERANCE = 1e-4

KILLED_RUN = """
import io, json, os, signal, sys
from pathlib import Path
import torch
from model_code.training.run import train_stage

out, kill_at, steps = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
settings = json.loads(sys.argv[4])
save = torch.save

def save_half_then_die(obj, target, *args, **kwargs):
    if f"step{kill_at}" in str(target):
        buffer = io.BytesIO()
        save(obj, buffer, *args, **kwargs)
        Path(target).write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return save(obj, target, *args, **kwargs)

torch.save = save_half_then_die
train_stage("tiny", "content2", out, steps=steps, **settings)
"""


def run(context: Context) -> list[Section]:
    """The killed-and-resumed run against an uninterrupted one (see the module doc)."""
    from model_code.training.run import train_stage

    began = time.perf_counter()
    work = context.folder("training")
    section = Section(
        "Training killed during a checkpoint write",
        ["run", "steps", "resumed from", "steps lost", "final loss", "vs uninterrupted", "holds"],
        note=(
            f"The tiny preset's content2 stage, {STEPS} steps, a checkpoint every {EVERY}; one "
            f"run is SIGKILLed half way through writing the checkpoint of step {KILL_AT} (a "
            "truncated file, `latest` not moved), then resumed from its folder. It must resume "
            "from the newest complete checkpoint and end with the uninterrupted run's loss."
        ),
    )
    reference = train_stage("tiny", "content2", work / "uninterrupted", steps=STEPS, **SETTINGS)
    section.add("uninterrupted", reference.steps, "", "", round(reference.final_loss, 6), "", "yes")

    killed = work / "killed"
    child = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(killed), str(KILL_AT), str(STEPS)]
        + [json.dumps(SETTINGS)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    last_logged = max(row["step"] for row in _rows(killed))
    truncated = (killed / "checkpoints" / f"step{KILL_AT}").is_dir()
    section.add(
        f"killed (exit {child.returncode})",
        last_logged,
        "",
        "",
        "",
        f"checkpoint step{KILL_AT} left truncated: {'yes' if truncated else 'no'}",
        "yes" if child.returncode == -9 and truncated else "NO",
        ok=child.returncode == -9 and truncated,
    )

    with _resume_log() as messages:
        resumed = train_stage("tiny", "content2", killed, steps=STEPS, resume=killed, **SETTINGS)
    start = next(int(m.rsplit(" ", 1)[1]) for m in messages if m.startswith("resumed "))
    difference = abs(resumed.final_loss - reference.final_loss)
    held = start == KILL_AT - EVERY and resumed.steps == STEPS and difference <= LOSS_TOLERANCE
    section.add(
        "resumed",
        resumed.steps,
        f"step {start}",
        last_logged - start,
        round(resumed.final_loss, 6),
        f"{difference:.1e}",
        "yes" if held else "NO",
        ok=held,
    )
    section.seconds = round(time.perf_counter() - began, 1)
    return [section]


def _rows(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@contextlib.contextmanager
def _resume_log() -> Iterator[list[str]]:
    """The trainer's log messages while the block runs (it names the step it resumed at)."""
    messages: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: messages.append(record.getMessage())
    trainer_log = logging.getLogger("model_code.training.trainer")
    level = trainer_log.level
    trainer_log.addHandler(handler)
    trainer_log.setLevel(logging.INFO)
    try:
        yield messages
    finally:
        trainer_log.removeHandler(handler)
        trainer_log.setLevel(level)
