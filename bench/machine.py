"""What the figures were measured on: cores, CPU model, load, date, versions."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from sail.tracking.runs import git_commit

PACKAGES = (
    "torch",
    "transformers",
    "deepspeed",
    "sentence-transformers",
    "kserve",
    "uvicorn",
    "httpx",
    "mlflow",
    "feast",
    "numpy",
)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def versions() -> dict[str, str | None]:
    """Installed versions of the packages the figures depend on (None where not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (other jobs on the machine show up here)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def machine_info(threads: int) -> dict:
    """Everything `docs/benchmarks.md` prints about the machine."""
    memory = None
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        first = meminfo.read_text().splitlines()[0].split()
        memory = round(int(first[1]) / 1024**2, 1)  # kB -> GiB
    return {
        "date": now(),
        "hostname": platform.node(),
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "memory_gib": memory,
        "torch_threads": threads,
        "platform": platform.platform(),
        "load_average": load_average(),
        "git_commit": git_commit(),
        "versions": versions(),
    }
