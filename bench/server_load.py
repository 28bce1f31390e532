"""The server under test as a separate process, and an async HTTP client driving it.

The server runs as `python -m sail.serving` in its own process so the client does not share its
GIL; both still share this machine's cores, which the figures include.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.timing import Measurement

EMBEDDINGS_ROUTE = "/openai/v1/embeddings"
READY_ROUTE = "/v2/health/ready"


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process (all its threads) has used so far (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ChildServer:
    """An HTTP server under test as a child process: `command()` starts it, `ready_route`
    answers 200 once it serves, and its output goes to `log_path`."""

    ready_route = READY_ROUTE
    name = "server"

    def __init__(self, threads: int, log_dir: Path):
        self.threads = threads
        self.port = free_port()
        self.log_path = Path(log_dir) / f"{self.name}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return {**os.environ, "OMP_NUM_THREADS": str(self.threads), "PYTHONUNBUFFERED": "1"}

    def start(self) -> ChildServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.environment()
            )
        return self

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Poll the ready route until it answers 200; raise with the log's tail otherwise."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"the server exited early:\n{self.log_tail()}")
                try:
                    if client.get(self.url + self.ready_route).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
        raise TimeoutError(f"the server was not ready within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> ChildServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class ServerProcess(ChildServer):
    """`python -m sail.serving --model-uri DIR --port P --max-batch-size N [--precision P]`."""

    def __init__(
        self,
        model_dir: Path,
        max_batch_size: int,
        threads: int,
        log_dir: Path,
        precision: str = "fp32",
    ):
        self.name = f"server-batch{max_batch_size}-{precision}"
        super().__init__(threads, log_dir)
        self.model_dir = Path(model_dir)
        self.max_batch_size = max_batch_size
        self.precision = precision

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "sail.serving",
            "--model-uri",
            str(self.model_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--max-batch-size",
            str(self.max_batch_size),
            "--max-wait-ms",
            "5",
            "--precision",
            self.precision,
        ]


def embeddings_body(items: list[dict]) -> dict:
    """One OpenAI-route request for `items` (full-size float vectors, the route's default)."""
    return {"model": "sail-embedding", "input": items}


async def _drive(
    url: str, bodies: list[dict], concurrency: int, warmup: int, route: str, pids: dict
) -> Measurement:
    semaphore = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300.0, limits=limits) as client:

        async def one(body: dict, record: bool) -> None:
            async with semaphore:
                began = time.perf_counter()
                response = await client.post(route, json=body)
                response.raise_for_status()
                if record:
                    latencies.append(time.perf_counter() - began)

        if warmup:  # opens the connections and wakes the server's batcher
            await asyncio.gather(*(one(bodies[i % len(bodies)], False) for i in range(warmup)))
        began, cpu = time.perf_counter(), _cpu_now(pids)
        await asyncio.gather(*(one(body, True) for body in bodies))
        seconds = time.perf_counter() - began
        cpu = {name: used - cpu[name] for name, used in _cpu_now(pids).items()}
    items = sum(len(body["input"]) for body in bodies)
    return Measurement(items, seconds, latencies, cpu)


def _cpu_now(pids: dict[str, int]) -> dict[str, float]:
    return {"client": time.process_time()} | {name: cpu_seconds(p) for name, p in pids.items()}


def drive(
    url: str,
    bodies: list[dict],
    concurrency: int,
    warmup: int | None = None,
    route: str = EMBEDDINGS_ROUTE,
    pids: dict[str, int] | None = None,
) -> Measurement:
    """POST `bodies` to `route` with at most `concurrency` in flight (after `warmup` unrecorded
    requests, default one per slot); wall time covers the recorded requests only, and so do the
    CPU seconds of this client and of the processes in `pids` (name -> pid), e.g. the server."""
    warmup = concurrency if warmup is None else warmup
    return asyncio.run(_drive(url, bodies, concurrency, warmup, route, pids or {}))
