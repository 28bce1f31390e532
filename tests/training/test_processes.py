"""Several training processes (what the deepspeed launcher starts on GPUs), here two gloo ranks."""

import json
import os
import random
import subprocess
import sys

import torch

from model_code.factory import load_pretrained
from model_code.training.trainer import _free_port, process_batch


class Numbers:
    """A source of plain numbers, enough to see which samples each process gets."""

    def batch(self, rng, size):
        return rng.sample(range(1000), size)


def test_each_process_keeps_its_own_batch_from_the_shared_stream():
    single = process_batch(Numbers(), random.Random(7), 8, rank=0, world_size=1)
    streams = [random.Random(7), random.Random(7)]
    first = process_batch(Numbers(), streams[0], 8, rank=0, world_size=2)
    second = process_batch(Numbers(), streams[1], 8, rank=1, world_size=2)
    assert first == single  # one process trains exactly as before
    assert first != second
    assert streams[0].getstate() == streams[1].getstate()  # the next data set draw agrees


def _clean_env() -> dict[str, str]:
    """This process's environment without the distributed settings earlier tests left in it."""
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def _launch(tmp_path, processes, *args):
    env = _clean_env()
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}"]
    command += [f"--master_port={_free_port()}", "-m", "sail", "train", "--preset", "tiny", *args]
    return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)


def test_two_processes_train_one_run(tmp_path):
    out = tmp_path / "run"
    done = _launch(tmp_path, 2, "--stage", "content2", "--steps", "4", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4]  # written once, not per process
    load_pretrained(out / "model", expected_preset="tiny")
    state = torch.load(
        next((out / "checkpoints" / "step4").glob("mp_rank_00_model_states.pt")),
        weights_only=False,
    )
    ranks = state["ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["torch_rng"], ranks[1]["torch_rng"])
    # several processes: ZeRO-2 as configured, one optimizer partition each
    assert len(list((out / "checkpoints" / "step4").glob("zero_pp_rank_*_optim_states.pt"))) == 2

    alone = [sys.executable, "-m", "sail", "train", "--preset", "tiny", "--stage", "content2"]
    alone += ["--steps", "6", "--out", str(out), "--resume", str(out)]
    again = subprocess.run(alone, env=_clean_env(), cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 2
    assert "written by 2 processes; resume it with as many" in again.stderr
