"""What a figure was measured on: the machine, the code, the database server, the load.

Every report starts with these facts, because a figure means little without them: the
cores and memory (shared with whatever else runs), the commit, the PostgreSQL version
and settings, and how busy the machine was when the run began.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def loadavg() -> tuple[float, float, float]:
    """The 1, 5 and 15-minute load averages."""
    one, five, fifteen = psutil.getloadavg()
    return one, five, fifteen


def loadavg_text() -> str:
    """The load averages as `uptime` shows them: "0.52 0.61 0.58"."""
    return " ".join(f"{x:.2f}" for x in loadavg())


def cpu_model() -> str:
    """The CPU's model name (what /proc/cpuinfo names; psutil does not say)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _gib(size: int) -> str:
    # As `free -h` shows it: whole GiB, cut rather than rounded, one decimal below 10.
    gib = size / 2**30
    return f"{int(gib * 10) / 10:.1f}Gi" if gib < 10 else f"{int(gib)}Gi"


def memory() -> str:
    """Total and available memory, as `free -h` puts them: "23Gi total, 22Gi available"."""
    found = psutil.virtual_memory()
    return f"{_gib(found.total)} total, {_gib(found.available)} available"


def revision() -> str:
    """The commit, flagged when the application's files differ from it."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                "bot", "handlers", "models"], cwd=ROOT, capture_output=True,
                               text=True, timeout=5).stdout.strip()
        return (rev or "unknown") + (" (app files modified)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, str]:
    """What the HTTP benchmarks' figures were measured on.

    Returns:
        revision, date, nproc, cpu, memory, python and load_at_start, as text.
    """
    return {
        "revision": revision(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "memory": memory(),
        "python": platform.python_version(),
        "load_at_start": loadavg_text(),
    }


def database_machine(admin_url: str) -> dict[str, str]:
    """What the database benchmarks' figures were measured on, PostgreSQL included.

    Args:
        admin_url: a URL of the PostgreSQL server (any database on it).

    Returns:
        date, nproc, cpu, memory, postgresql (version and the settings that shape
        plans), python and load, as text.
    """
    from sqlalchemy import create_engine, text

    engine = create_engine(admin_url)
    try:
        with engine.connect() as conn:
            version = conn.scalar(text("SHOW server_version"))
            settings = {name: conn.scalar(text(f"SHOW {name}")) for name in
                        ("shared_buffers", "work_mem", "max_parallel_workers_per_gather")}
    finally:
        engine.dispose()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "memory": memory(),
        "postgresql": f"{version} ({', '.join(f'{k}={v}' for k, v in settings.items())})",
        "python": platform.python_version(),
        "load": loadavg_text(),
    }
