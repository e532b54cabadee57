"""The processes a benchmark starts and stops: the fake Slack, servers, Celery workers.

- `FakeSlackProcess`: the tests' `SlackStandIn` served from a child process, so its
  work (one call per acknowledged request, roughly) does not share the load
  generator's interpreter lock; driven over a pipe.
- `BenchServer`: the tests' `harness.Server` (`resolvemeq serve` in its own process
  group on a free loopback port, healthy before use) with what a benchmark reads
  besides: its gunicorn worker, that worker's CPU and memory, an environment free of
  the caller's settings, and a wait for its background work to drain.
  `start_ours()` and `start_bare()` start ours and the bare Bolt floor.
- `Worker`: `resolvemeq worker --pool=threads` in its own process group.
- `stop_all()`: stop everything, even when one stopper fails.

Everything started is stopped; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import procstat
from tests.support import harness

ROOT = harness.ROOT


# ----- the fake Slack in a child process ---------------------------------------------


def _serve_fake_slack(conn) -> None:  # runs in the child
    from bot.sandbox.standin import SlackStandIn

    fake = SlackStandIn().start()
    try:
        conn.send((fake.base_url, fake.token))
        while True:
            try:
                command, *args = conn.recv()
            except EOFError:  # the parent is gone
                return
            if command == "stop":
                conn.send(None)
                return
            try:
                conn.send(_COMMANDS[command](fake, *args))
            except Exception as error:  # noqa: BLE001 - the parent raises it
                conn.send(error)
    finally:
        fake.stop()


def _delay(fake, method: str, seconds: Sequence[float]) -> None:
    for s in seconds:
        fake.delay(method, s, times=1)


def _slow(fake, methods: Sequence[str], seconds: float) -> None:
    for method in methods:
        fake.delay(method, seconds, times=10**9)


def _times(fake, method: str, since: float) -> list[tuple[str, float]]:
    return [(str(call.args.get("ts", "")), call.at) for call in fake.calls(method) if call.at >= since]


def _counts(fake) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in fake.calls():
        key = f"{call.method}:{call.outcome}"
        counts[key] = counts.get(key, 0) + 1
    return counts


_COMMANDS: dict[str, Callable[..., Any]] = {
    "delay": _delay,
    "slow": _slow,
    "counts": _counts,
    "times": _times,
    "reset": lambda fake: fake.reset(),
    "query": lambda fake, function, *args: function(fake, *args),
}


class FakeSlackProcess:
    """`bot.sandbox.standin.SlackStandIn` served from a child process.

    `base_url` and `token` are what a server's SLACK_API_URL and SLACK_BOT_TOKEN take.
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_fake_slack, args=(child,), daemon=True,
                                        name="fake-slack")
        self._process.start()
        child.close()
        if not self._conn.poll(30):
            self.stop()
            raise RuntimeError("the fake Slack did not start in 30 s")
        self.base_url, self.token = self._conn.recv()
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def _ask(self, *message: Any) -> Any:
        with self._lock:
            self._conn.send(message)
            if not self._conn.poll(60):
                raise RuntimeError(f"the fake Slack did not answer {message[0]!r}")
            answer = self._conn.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def delay(self, method: str, seconds: Sequence[float]) -> None:
        """The next len(seconds) calls of `method` are answered after these delays."""
        self._ask("delay", method, list(seconds))

    def slow(self, methods: Sequence[str], seconds: float) -> None:
        """Every call of these methods is answered `seconds` late (until `reset`)."""
        self._ask("slow", list(methods), seconds)

    def counts(self) -> dict[str, int]:
        """Calls so far, by `method:outcome`."""
        return self._ask("counts")

    def query(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(fake, *args)` run in the child: `function` must be importable by
        name (a module-level function) and its answer picklable."""
        return self._ask("query", function, *args)

    def times(self, method: str, since: float = 0.0) -> list[tuple[str, float]]:
        """(the `ts` argument, when it was answered by the fake's `time.time()`) of each
        call of `method` answered at or after `since`, oldest first."""
        return self._ask("times", method, since)

    def reset(self) -> None:
        """Forget the calls and delays so far."""
        self._ask("reset")

    def stop(self) -> None:
        try:
            if self._process.is_alive():
                self._conn.send(("stop",))
                self._conn.poll(5)
        except (OSError, EOFError, BrokenPipeError):
            pass
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._conn.close()


# ----- the servers -------------------------------------------------------------------


class BenchServer(harness.Server):
    """A gunicorn-served app (ours or the bare floor) as the tests' harness starts it.

    Args:
        name: for the report ("ours", "bare").
        argv: the command after `python -m`, with `{port}` where the port goes.
        database_url, slack, redis_url: as for `harness.Server`.
        **env: more settings (SERVER_THREADS=..., ...).
    """

    def __init__(self, name: str, argv: Sequence[str], *, database_url: str,
                 slack: FakeSlackProcess, redis_url: str | None, **env: str) -> None:
        self.name = name
        self._argv = list(argv)
        super().__init__(database_url=database_url, slack=slack,  # type: ignore[arg-type]
                         redis_url=redis_url, PYTHONUNBUFFERED="1", **env)

    def inherited_env(self) -> dict[str, str]:
        # None of the caller's settings either: a stray AUTONOMY_THRESHOLD in the shell
        # would change what is measured.
        from bot.core.settings import Settings

        ours = {name.upper() for name in Settings.model_fields}
        return {k: v for k, v in super().inherited_env().items() if k.upper() not in ours}

    def server_argv(self) -> list[str]:
        return [sys.executable, "-m", *(a.replace("{port}", str(self.port)) for a in self._argv)]

    def start(self, wait_healthy: bool = True, timeout: float = 60) -> BenchServer:
        """Start; wait until /healthz says 200 and gunicorn's worker is there."""
        super().start(wait_healthy, timeout)
        deadline = time.monotonic() + 10
        while not self.worker_pid:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} has no worker:\n{self.output()[-4000:]}")
            time.sleep(0.05)
        return self

    def log_summary(self, top: int = 5) -> str:
        """Counts of the server's WARNING/ERROR lines by logger and message (no values)."""
        counts: dict[str, int] = {}
        for line in self.output().splitlines():
            parts = line.split(" ", 4)
            if len(parts) == 5 and parts[2] in ("WARNING", "ERROR", "CRITICAL"):
                key = f"{parts[2]} {parts[3]} {parts[4][:90]}"
                counts[key] = counts.get(key, 0) + 1
            elif line.startswith("Traceback"):
                counts["Traceback"] = counts.get("Traceback", 0) + 1
        if not counts:
            return "no warnings or errors"
        items = sorted(counts.items(), key=lambda kv: -kv[1])
        return "; ".join(f"{n}x {k}" for k, n in items[:top]) + (
            f"; and {len(items) - top} more kinds" if len(items) > top else "")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def master_pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def worker_pids(self) -> list[int]:
        """The gunicorn workers (`serve` runs one), children of the master."""
        return procstat.children(self.master_pid) if self.process else []

    @property
    def worker_pid(self) -> int | None:
        workers = self.worker_pids
        return workers[0] if workers else None

    def pids(self) -> set[int]:
        return {self.master_pid, *self.worker_pids}

    def worker_cpu(self) -> float:
        """CPU seconds of the workers so far (user + system)."""
        return sum(procstat.cpu_seconds(pid) for pid in self.worker_pids)

    def wait_idle(self, *, below: float = 0.03, window: float = 0.5, timeout: float = 180) -> float:
        """Wait until the workers use less than `below` of a core over `window` seconds
        (their background work after the acks is done); returns the seconds waited."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            before = self.worker_cpu()
            time.sleep(window)
            if (self.worker_cpu() - before) / window < below:
                break
        return time.monotonic() - start


def start_ours(*, database_url: str, slack: FakeSlackProcess, redis_url: str | None,
               module: str = "bot.platform.cli", **env: str) -> BenchServer:
    """`resolvemeq serve` (`module` may name a stand-in with the same CLI, to try a change)."""
    return BenchServer("ours", [module, "serve", "--host", "127.0.0.1", "--port", "{port}"],
                       database_url=database_url, slack=slack, redis_url=redis_url, **env).start()


def start_bare(*, database_url: str, slack: FakeSlackProcess, redis_url: str | None,
               **env: str) -> BenchServer:
    """`bench.bare_bolt`: the same server stack, listeners that only ack."""
    return BenchServer("bare", ["bench.bare_bolt", "--host", "127.0.0.1", "--port", "{port}"],
                       database_url=database_url, slack=slack, redis_url=redis_url, **env).start()


# ----- Celery workers ----------------------------------------------------------------


class Worker:
    """`resolvemeq worker --pool=threads` in its own process group, its log in a file.

    Args:
        name: the worker's node name (`NAME@host`) and log file name.
        database_url, redis_url (the broker), slack: what it talks to.
        concurrency: threads.
        log_dir: where `NAME.log` goes.
        nice: its CPU priority (`nice -n`; 10: it takes what the serve processes leave).
        **env: more settings (CLAIM_TTL=..., ...).
    """

    def __init__(self, name: str, *, database_url: str, redis_url: str, slack: FakeSlackProcess,
                 concurrency: int, log_dir: Path, nice: int = 0, **env: str) -> None:
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith(("SLACK_", "DATABASE_", "REDIS_", "SENTRY_"))}
        environ.update(DATABASE_URL=database_url, REDIS_URL=redis_url, SLACK_API_URL=slack.base_url,
                       SLACK_BOT_TOKEN=slack.token, SLACK_SIGNING_SECRET="unused-here", **env)
        # `python -m` from ROOT, not the installed `resolvemeq` script: the script imports
        # the installed checkout, and the worker must run the code under test, as serve does.
        command = [sys.executable, "-m", "bot.platform.cli"]
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*(["nice", "-n", str(nice)] if nice else []), *command, "worker", "--pool=threads",
                 f"--concurrency={concurrency}",
                 f"--hostname={name}@%h", "--without-gossip", "--without-mingle",
                 "--without-heartbeat"],
                cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def ready(self) -> bool:
        """Whether Celery has said it is ready (raises if the worker exited)."""
        if self.process.poll() is not None:
            raise RuntimeError(f"worker exited: {self.log.read_text()[-2000:]}")
        return b" ready." in self.log.read_bytes()

    def renice(self, nice: int) -> None:
        """Set the worker's CPU priority now, on every thread (Linux keeps one per
        thread; threads started later inherit it). Lowering it needs root."""
        for tid in os.listdir(f"/proc/{self.process.pid}/task"):
            with contextlib.suppress(ProcessLookupError):
                os.setpriority(os.PRIO_PROCESS, int(tid), nice)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def stop_all(*things: Callable[[], None]) -> None:
    """Call each stopper, even if an earlier one fails."""
    for stop in things:
        try:
            stop()
        except Exception as error:  # noqa: BLE001 - cleanup goes on
            print(f"cleanup: {error!r}", file=sys.stderr)
