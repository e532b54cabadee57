"""Who used the CPU and the memory during a run: this benchmark, the services, or others.

The machine is shared (other people's test runs, their PostgreSQL backends), so a
figure is only worth its "others' cores" beside it. Everything here reads the
process table through psutil:

- `Load`: how busy the machine was between two moments, split into this benchmark's
  processes (and their descendants), the services it uses (PostgreSQL backends of its
  own database, PostgreSQL's and Redis's own processes) and everyone else.
- `CpuMeter`: cores used per labelled group of processes (workers, the fake Slack).
- `other_busy_processes()`: who else is busy right now.
- `rss_kib()`, `cpu_seconds()`, `children()`: one process's memory, CPU time, children.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence

import psutil

_SERVICES = ("postgres", "redis-server")
# The PostgreSQL database the running benchmark uses (see `count_database_as_ours`),
# to tell its backends from other people's.
_OUR_DATABASE: list[str | None] = [None]


def count_database_as_ours(name: str | None) -> None:
    """Count PostgreSQL backends serving database `name` as this benchmark's services."""
    _OUR_DATABASE[0] = name


def cpu_by_process(parents: dict[int, int] | None = None) -> dict[int, tuple[float, str]]:
    """CPU seconds (user + system) and name of every process now.

    Args:
        parents: filled with each process's parent pid, when given.

    Returns:
        pid -> (CPU seconds so far, process name).
    """
    found: dict[int, tuple[float, str]] = {}
    for proc in psutil.process_iter(["name", "ppid", "cpu_times"]):
        info = proc.info
        times = info.get("cpu_times")
        if times is None:  # gone, or not ours to read
            continue
        found[proc.pid] = (times.user + times.system, info.get("name") or "?")
        if parents is not None and info.get("ppid") is not None:
            parents[proc.pid] = info["ppid"]
    return found


def _system_times() -> tuple[float, float]:
    """All CPU time and idle CPU time of the machine so far, in seconds (guest time is
    already in user time, so it is left out)."""
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    total = t.user + t.nice + t.system + idle + sum(
        getattr(t, name, 0.0) for name in ("irq", "softirq", "steal"))
    return total, idle


def with_descendants(roots: set[int], parents: dict[int, int]) -> set[int]:
    """`roots` and every process descended from them."""
    family = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in family and pid not in family:
                family.add(pid)
                grew = True
    return family


class Load:
    """How busy the machine was from construction to `measure()`, and who made it busy.

    Args:
        ours: the processes of this benchmark (servers, fake Slack; this one is added,
            and every descendant of them: workers, their pools, py-spy).
        database: whose PostgreSQL backends count as services (default: the database
            `count_database_as_ours` named).
    """

    def __init__(self, ours: set[int] | None = None, database: str | None = None) -> None:
        self._ours = set(ours or ()) | {os.getpid()}
        self._database = database or _OUR_DATABASE[0]
        self._start = _system_times()
        self._procs = cpu_by_process()
        self._t0 = time.monotonic()
        self.busy = self.bench = self.services = self.others = 0.0
        self.other_names: list[str] = []

    def measure(self) -> Load:
        """Set busy/bench/services/others, in cores, since construction.

        Returns:
            self. `busy` is the whole machine; what no live process accounts for (the
            kernel's network work, processes that came and went) is in `busy` but in
            none of the others.
        """
        total, idle = _system_times()
        parents: dict[int, int] = {}
        procs = cpu_by_process(parents)
        ours = with_descendants(self._ours, parents)
        wall = max(1e-6, time.monotonic() - self._t0)
        d_total, d_idle = total - self._start[0], idle - self._start[1]
        self.busy = (os.cpu_count() or 1) * (d_total - d_idle) / d_total if d_total > 0 else 0.0
        bench = services = others = 0.0
        named: dict[str, float] = {}
        for pid, (seconds, name) in procs.items():
            cores = (seconds - self._procs.get(pid, (0.0, ""))[0]) / wall
            if pid in ours:
                bench += cores
            elif name.startswith(_SERVICES) and serves_database(pid, name, self._database):
                services += cores
            else:
                others += cores
                named[name] = named.get(name, 0.0) + cores
        self.bench, self.services, self.others = bench, services, others
        self.other_names = [f"{n} {c:.2f}" for n, c in sorted(named.items(), key=lambda x: -x[1])[:3]
                            if c >= 0.05]
        return self

    def busy_cores(self) -> float:
        """Cores the whole machine used since construction."""
        return self.measure().busy


def serves_database(pid: int, name: str, database: str | None) -> bool:
    """Whether a PostgreSQL or Redis process works for `database` (None: any).

    A PostgreSQL backend names its database in its title; one serving another database
    is someone else's load. Redis and PostgreSQL's own processes (checkpointer, WAL
    writer, ...) count as shared services.
    """
    if not name.startswith("postgres"):
        return True
    try:
        title = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return True
    if " postgres " not in title and "@" not in title and "(" not in title:
        return True  # not a client backend
    return database is None or f" {database} " in title


def other_busy_processes(exclude: set[int], threshold: float = 0.2, window: float = 1.0) -> list[str]:
    """Processes not ours using more than `threshold` of a core over `window` seconds.

    Args:
        exclude: our processes (their descendants and this process are excluded too).

    Returns:
        "name(pid) share" of each, e.g. "postgres(812) 35%".
    """
    parents: dict[int, int] = {}
    first = cpu_by_process()
    time.sleep(window)
    second = cpu_by_process(parents)
    exclude = with_descendants(exclude | {os.getpid()}, parents)
    busy = []
    for pid, (seconds, name) in second.items():
        if pid in exclude or pid not in first:
            continue
        share = (seconds - first[pid][0]) / window
        if share >= threshold:
            busy.append(f"{name}({pid}) {share:.0%}")
    return busy


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


class CpuMeter:
    """Cores used between construction and `stop()`, per group of processes.

    Args:
        groups: label -> process-group ids (a subprocess started with
            `start_new_session=True` leads its own group) or pids. This process is
            "bench"; PostgreSQL and Redis are named (backends of another database than
            the one `count_database_as_ours` named are "other processes"); the rest is
            "other processes".
        idle: also report "idle": the cores nobody used (the machine's idle time).
    """

    def __init__(self, groups: Mapping[str, Sequence[int]] | None = None, *, idle: bool = False) -> None:
        self.groups = {k: set(v) for k, v in (groups or {}).items()}
        self._idle = idle
        self._system = _system_times()
        self._t0, self._start = time.monotonic(), cpu_by_process()

    def stop(self) -> dict[str, float]:
        """Cores per label since construction, largest first, rounded to 0.01."""
        end, wall = cpu_by_process(), max(1e-6, time.monotonic() - self._t0)
        total, idle = _system_times()
        used: dict[str, float] = {}
        for pid, (seconds, name) in end.items():
            cores = (seconds - self._start.get(pid, (0.0, ""))[0]) / wall
            if cores <= 0:
                continue
            label = "bench" if pid == os.getpid() else None
            for group, members in self.groups.items():
                if pid in members or _group_of(pid) in members:
                    label = group
            if label is None:
                label = ("other processes" if not serves_database(pid, name, _OUR_DATABASE[0]) else
                         "postgres" if name.startswith("postgres") else
                         "redis" if name.startswith("redis") else "other processes")
            used[label] = used.get(label, 0.0) + cores
        if self._idle and total > self._system[0]:
            share = (idle - self._system[1]) / (total - self._system[0])
            used["idle"] = (os.cpu_count() or 1) * share
        return {k: round(v, 2) for k, v in sorted(used.items(), key=lambda kv: -kv[1])}


def children(pid: int) -> list[int]:
    """The direct children of a process (none if it is gone)."""
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def rss_kib(pid: int | None) -> int:
    """Resident memory of a process, in KiB (0 if it is gone)."""
    if pid is None:
        return 0
    try:
        return psutil.Process(pid).memory_info().rss // 1024
    except psutil.Error:
        return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 if it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system
