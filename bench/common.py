"""What every HTTP benchmark needs: the machine, the services, the servers, the load.

- `machine()` / `Load`: what the figures were measured on, and how busy it was.
- `fresh_database()`, `flush_redis()`: a PostgreSQL database of the benchmark's own,
  built by the migrations, and a Redis database number of its own.
- `FakeSlackProcess`: `tests.support.fake_slack.FakeSlack` in a child process, so its work
  (one call per acknowledged request, roughly) does not share the load generator's GIL.
- `ServerProcess`: `resolvemeq serve` or the bare Bolt app as a subprocess in its own
  process group on a free loopback port; stopped with the group.
- `Mix`: signed Slack requests (Yes/star clicks, strangers' clicks, `/ticket`).
- `open_loop()` / `closed_loop()` / `burst()`: the load generators (threads, one
  keep-alive `http.client` connection per thread, loopback only, bounded in count and
  time). Latency is measured from the moment a request was *scheduled*, so a stalled
  server cannot hide its queue (no coordinated omission); `lag` says how late the
  generator itself was.

Everything is bounded: counts, durations, waits. Everything started is stopped.
"""

from __future__ import annotations

import datetime as dt
import http.client
import itertools
import json
import multiprocessing
import os
import platform
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from bench.seed import process_ticks
from tests.support import slack_signing

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432"
).rstrip("/")
# Not a number the test suite uses (15, 14, 4) nor one seen in use by other runs.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
TEAM_ID = "T0RESOLVEQ"  # what the fake Slack's auth.test reports
REQUESTER = "UREQUESTER"
STRANGER = "USTRANGER"
CHANNEL = "CHELPDESK"
ESCALATIONS = "CESCALATE"
SLACK_DEADLINE = 3.0  # Slack shows an error if the ack takes longer
CLIENT_TIMEOUT = 10.0

ISSUES = (
    "My VPN keeps disconnecting when I work from home",
    "I forgot my password and I am locked out",
    "The office wifi drops every few minutes",
    "The printer on floor 3 says paper jam but there is none",
    "Outlook will not sync my mailbox",
    "I need access to the design software",
    "My laptop is very slow since the update",
    "The MFA app does not send me a code",
    "The shared drive says access denied",
    "My monitor does not wake up on the dock",
)


# ----- the machine -------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _free_h() -> str:
    try:
        out = subprocess.run(["free", "-h"], capture_output=True, text=True, timeout=5).stdout
        mem = next(line for line in out.splitlines() if line.startswith("Mem:")).split()
        return f"{mem[1]} total, {mem[-1]} available"
    except (OSError, StopIteration, subprocess.SubprocessError, IndexError):
        return "unknown"


def loadavg() -> tuple[float, float, float]:
    parts = Path("/proc/loadavg").read_text().split()
    return float(parts[0]), float(parts[1]), float(parts[2])


def _revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                "bot", "handlers", "models"], cwd=ROOT, capture_output=True,
                               text=True, timeout=5).stdout.strip()
        return rev + (" (app files modified)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, str]:
    """What the figures were measured on (for the report)."""
    return {
        "revision": _revision(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "memory": _free_h(),
        "python": platform.python_version(),
        "load_at_start": " ".join(f"{x:.2f}" for x in loadavg()),
    }


def _cpu_ticks() -> tuple[int, int]:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(x) for x in fields]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]), idle


def _with_descendants(roots: set[int], parents: dict[int, int]) -> set[int]:
    family = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in family and pid not in family:
                family.add(pid)
                grew = True
    return family


_SERVICES = ("postgres", "redis-server")
# The database the running benchmark uses (set by `fresh_database`), to tell its
# PostgreSQL backends from other people's.
_BENCH_DATABASE: list[str | None] = [None]


class Load:
    """How busy the machine was from construction to `measure()`, and who made it busy.

    Args:
        ours: the processes of this benchmark (servers, fake Slack; this one is added).
    """

    def __init__(self, ours: set[int] | None = None, database: str | None = None) -> None:
        self._ours = set(ours or ()) | {os.getpid()}
        self._database = database or _BENCH_DATABASE[0]
        self._start = _cpu_ticks()
        self._procs = process_ticks()
        self._t0 = time.monotonic()
        self.busy = self.bench = self.services = self.others = 0.0
        self.other_names: list[str] = []

    def measure(self) -> Load:
        """Set busy/bench/services/others in cores (services: PostgreSQL and Redis,
        shared with anything else that uses them)."""
        total, idle = _cpu_ticks()
        parents: dict[int, int] = {}
        procs = process_ticks(parents)
        ours = _with_descendants(self._ours, parents)  # workers, their pools, py-spy
        wall = max(1e-6, time.monotonic() - self._t0)
        hz = os.sysconf("SC_CLK_TCK")
        d_total, d_idle = total - self._start[0], idle - self._start[1]
        self.busy = (os.cpu_count() or 1) * (d_total - d_idle) / d_total if d_total > 0 else 0.0
        bench = services = others = 0.0
        named: dict[str, float] = {}
        for pid, (ticks, name) in procs.items():
            cores = (ticks - self._procs.get(pid, (0, ""))[0]) / hz / wall
            if pid in ours:
                bench += cores
            elif name.startswith(_SERVICES) and self._serves_us(pid, name):
                services += cores
            else:
                others += cores
                named[name] = named.get(name, 0.0) + cores
        # What no live process accounts for (the kernel's network work, processes that
        # came and went) is in `busy` but in none of these.
        self.bench, self.services, self.others = bench, services, others
        self.other_names = [f"{n} {c:.2f}" for n, c in sorted(named.items(), key=lambda x: -x[1])[:3]
                            if c >= 0.05]
        return self

    def busy_cores(self) -> float:
        return self.measure().busy

    def _serves_us(self, pid: int, name: str) -> bool:
        # A PostgreSQL backend names its database in its title; one serving another
        # database is someone else's load. Redis and PostgreSQL's own processes
        # (checkpointer, WAL writer, ...) count as shared services.
        if not name.startswith("postgres"):
            return True
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return True
        if " postgres " not in title and "@" not in title and "(" not in title:
            return True  # not a client backend
        return self._database is None or f" {self._database} " in title


def other_busy_processes(exclude: set[int], threshold: float = 0.2, window: float = 1.0) -> list[str]:
    """Processes not ours using more than `threshold` of a core over `window` seconds."""
    parents: dict[int, int] = {}
    first = process_ticks()
    time.sleep(window)
    second = process_ticks(parents)
    exclude = _with_descendants(exclude | {os.getpid()}, parents)
    hz = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (ticks, name) in second.items():
        if pid in exclude or pid == os.getpid() or pid not in first:
            continue
        share = (ticks - first[pid][0]) / hz / window
        if share >= threshold:
            busy.append(f"{name}({pid}) {share:.0%}")
    return busy


# ----- PostgreSQL and Redis ----------------------------------------------------------


def fresh_database(name: str) -> str:
    """Drop and create `name`, migrate it to head; returns its URL."""
    from sqlalchemy import create_engine, text

    from bot.platform import migrations

    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    url = f"{PG_SERVER}/{name}"
    migrations.upgrade(url)
    _BENCH_DATABASE[0] = name
    return url


class PgStats:
    """PostgreSQL's counters for one database: sessions opened, transactions committed.

    Approximate to a second: backends report their counters when idle or on exit.
    """

    def __init__(self, database_url: str) -> None:
        from sqlalchemy import create_engine

        self._engine = create_engine(database_url, pool_size=1, max_overflow=0)

    def read(self) -> dict[str, int]:
        from sqlalchemy import text

        with self._engine.connect() as conn:
            row = conn.execute(text(
                "SELECT sessions, xact_commit, xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()")).one()
        return {"sessions": int(row[0]), "commits": int(row[1]), "rollbacks": int(row[2])}

    def close(self) -> None:
        self._engine.dispose()


def flush_redis(url: str = REDIS_URL) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# ----- the fake Slack in a child process ---------------------------------------------


def _fake_slack_main(conn) -> None:  # runs in the child
    from tests.support.fake_slack import FakeSlack

    fake = FakeSlack().start()
    try:
        conn.send((fake.base_url, fake.token))
        while True:
            try:
                message = conn.recv()
            except EOFError:  # the parent is gone
                return
            command, args = message[0], message[1:]
            if command == "stop":
                conn.send(None)
                return
            if command == "delay":
                method, seconds = args
                for s in seconds:
                    fake.delay(method, s, times=1)
                conn.send(None)
            elif command == "counts":
                counts: dict[str, int] = {}
                for call in fake.calls():
                    key = f"{call.method}:{call.outcome}"
                    counts[key] = counts.get(key, 0) + 1
                conn.send(counts)
            elif command == "reset":
                fake.reset()
                conn.send(None)
            else:
                conn.send(ValueError(f"unknown command {command!r}"))
    finally:
        fake.stop()


class FakeSlackProcess:
    """`tests.support.fake_slack.FakeSlack` served from a child process, driven over a pipe."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_fake_slack_main, args=(child,), daemon=True,
                                        name="fake-slack")
        self._process.start()
        child.close()
        if not self._conn.poll(30):
            self.stop()
            raise RuntimeError("the fake Slack did not start")
        self.base_url, self.token = self._conn.recv()
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def _ask(self, *message):
        with self._lock:
            self._conn.send(message)
            if not self._conn.poll(60):
                raise RuntimeError("the fake Slack did not answer")
            answer = self._conn.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def delay(self, method: str, seconds: Sequence[float]) -> None:
        """The next len(seconds) calls of `method` are answered after these delays."""
        self._ask("delay", method, list(seconds))

    def counts(self) -> dict[str, int]:
        """Calls so far, by `method:outcome`."""
        return self._ask("counts")

    def reset(self) -> None:
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(*, database_url: str, slack: FakeSlackProcess, redis_url: str | None,
               **extra: str) -> dict[str, str]:
    """The environment of a server subprocess: ours only, none of the caller's settings."""
    from bot.core.settings import Settings

    ours = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items()
           if k.upper() not in ours and not k.startswith(("SLACK_", "DATABASE_", "REDIS_"))}
    env.update({
        "DATABASE_URL": database_url,
        "SLACK_API_URL": slack.base_url,
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "ADMIN_USER_IDS": "UADMIN",
        "ESCALATION_CHANNEL": ESCALATIONS,
        "PYTHONUNBUFFERED": "1",
    })
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        rest = stat[stat.rindex(")") + 2:].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


class ServerProcess:
    """A gunicorn-served app in its own process group on a free loopback port.

    Args:
        name: for the report ("ours", "bare").
        argv: the command after `python -m`, with `{port}` where the port goes.
        env: the environment.
    """

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.argv = [sys.executable, "-m", *[a.replace("{port}", str(self.port)) for a in argv]]
        self.env = env
        self.process: subprocess.Popen | None = None
        self._log: list[str] = []
        self._log_lock = threading.Lock()

    def start(self, timeout: float = 60) -> ServerProcess:
        self.process = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log()[-4000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                status = conn.getresponse().status
                conn.close()
                if status == 200 and self.worker_pid:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become healthy:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            with self._log_lock:
                self._log.append(line.decode(errors="replace"))
                if len(self._log) > 20000:  # bounded: keep the newest
                    del self._log[:10000]

    def log(self) -> str:
        with self._log_lock:
            return "".join(self._log)

    def log_summary(self, top: int = 5) -> str:
        """Counts of the server's WARNING/ERROR lines by logger and message (no values)."""
        counts: dict[str, int] = {}
        for line in self.log().splitlines():
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

    @property
    def master_pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def worker_pids(self) -> list[int]:
        """The gunicorn workers (`serve` runs one), children of the master."""
        return _children(self.master_pid) if self.process else []

    @property
    def worker_pid(self) -> int | None:
        workers = self.worker_pids
        return workers[0] if workers else None

    def pids(self) -> set[int]:
        return {self.master_pid, *self.worker_pids}

    def worker_cpu(self) -> float:
        """CPU seconds of the workers so far (user + system)."""
        return sum(cpu_seconds(pid) for pid in self.worker_pids)

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


def start_ours(env: dict[str, str], module: str = "bot.platform.cli") -> ServerProcess:
    """`resolvemeq serve` (`module` may name a stand-in with the same CLI, to try a change)."""
    return ServerProcess("ours", [module, "serve", "--host", "127.0.0.1", "--port", "{port}"],
                         env).start()


def start_bare(env: dict[str, str]) -> ServerProcess:
    return ServerProcess("bare", ["bench.bare_bolt", "--host", "127.0.0.1", "--port", "{port}"],
                         env).start()


# ----- the data the clicks need ------------------------------------------------------


def seed_resolved_tickets(database_url: str, slack: FakeSlackProcess, count: int) -> list[tuple[int, str]]:
    """`count` auto-resolved tickets of REQUESTER, written with `bot.actions.execute`,
    each with its resolution message posted to the fake Slack; (ticket_id, message ts)."""
    from slack_sdk import WebClient

    from bot import views
    from bot.core import clock
    from bot.domain import actions
    from bot.domain.actions import PlannedAction
    from models import Ticket, make_engine, make_session_factory

    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    client = WebClient(token=slack.token, base_url=slack.base_url, timeout=10)
    seeded = []
    try:
        now = clock.now()
        with sessions() as session:
            rows = []
            for i in range(count):
                text = ISSUES[i % len(ISSUES)]
                ticket = Ticket(user_id=REQUESTER, issue_type=text[:100], description=text,
                                status="new", tags=[], source="slash_command",
                                slack_team_id=TEAM_ID, slack_channel_id=CHANNEL,
                                created_at=now, updated_at=now)
                session.add(ticket)
                session.flush()
                plan = PlannedAction(action_type=actions.AUTO_RESOLVE, confidence=0.9,
                                     reasoning="Matched KB article 'vpn'",
                                     params={"steps": ["Reconnect"], "team": "Network"})
                rows.append((ticket, actions.execute(session, ticket, plan, now=now,
                                                     followup_delay=timedelta(hours=24))))
            session.commit()
            for ticket, action in rows:
                text, blocks = views.resolution_message(ticket, action, ticket_text=ticket.description)
                ts = client.chat_postMessage(channel=CHANNEL, text=text, blocks=blocks)["ts"]
                ticket.slack_message_ts = ts
                seeded.append((ticket.ticket_id, ts))
            session.commit()
    finally:
        engine.dispose()
    return seeded


# ----- requests ----------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    kind: str  # "click", "stranger", "ticket"
    body: bytes
    content_type: str = slack_signing.FORM_CONTENT_TYPE


class Mix:
    """Signed Slack requests in a fixed, repeatable mix.

    Args:
        tickets: (ticket_id, message ts) of resolved tickets the clicks answer.
        ticket_share: the share of `/ticket` commands; the rest are clicks.
        stranger_share: the share of clicks made by someone who is not the requester.
    """

    def __init__(self, tickets: Sequence[tuple[int, str]], *, ticket_share: float = 0.5,
                 stranger_share: float = 0.2) -> None:
        from bot.views import ActionId, feedback_value, rating_action_id

        self._tickets = list(tickets)
        self._ticket_share = ticket_share
        self._stranger_share = stranger_share
        self._n = itertools.count()
        self._clicks = itertools.count()
        self._visits: dict[int, int] = {}
        self._yes, self._value, self._rating = ActionId.FEEDBACK_YES.value, feedback_value, rating_action_id
        self._lock = threading.Lock()

    def _every(self, share: float, n: int) -> bool:
        # Spread evenly: request n is of this kind when floor((n+1)*share) > floor(n*share).
        return int((n + 1) * share) > int(n * share)

    def next(self) -> Request:
        with self._lock:
            n = next(self._n)
            if self._every(self._ticket_share, n):
                return self._command(n)
            c = next(self._clicks)
            ticket_id, ts = self._tickets[c % len(self._tickets)]
            if self._every(self._stranger_share, c):
                return self._click("stranger", self._yes, self._value(ticket_id), STRANGER, ts)
            visit = self._visits[ticket_id] = self._visits.get(ticket_id, -1) + 1
            if visit % 3 == 0:
                return self._click("click", self._yes, self._value(ticket_id), REQUESTER, ts)
            score = visit % 5 + 1  # a different score than last time: the answer changes
            return self._click("click", self._rating(score), self._value(ticket_id, score=score),
                               REQUESTER, ts)

    def take(self, count: int) -> list[Request]:
        return [self.next() for _ in range(count)]

    def _click(self, kind: str, action_id: str, value: str, user: str, ts: str) -> Request:
        payload = slack_signing.block_actions_payload(
            action_id, value, user_id=user, channel_id=CHANNEL, team_id=TEAM_ID, message_ts=ts,
            trigger_id=f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:20]}",
        )
        return Request(kind, slack_signing.block_actions_body(payload).encode())

    def _command(self, n: int) -> Request:
        body = slack_signing.slash_command_body(
            "/ticket", f"{ISSUES[n % len(ISSUES)]} (#{n})", user_id=REQUESTER, channel_id=CHANNEL,
            team_id=TEAM_ID, trigger_id=f"trig-{uuid.uuid4().hex}",
        )
        return Request("ticket", body.encode())


# ----- the load generators -----------------------------------------------------------


@dataclass
class Sample:
    kind: str
    status: int  # 0: no answer (connection error or timeout)
    latency: float  # seconds from the scheduled send to the last byte of the answer
    lag: float  # seconds the generator sent late


@dataclass
class Run:
    label: str
    samples: list[Sample] = field(default_factory=list)
    elapsed: float = 0.0
    scheduled: int = 0  # requests the run meant to send
    busy_cores: float = 0.0
    load1: float = 0.0
    others: float = 0.0  # cores used by processes that are not this benchmark's nor the services
    services: float = 0.0  # cores used by PostgreSQL and Redis
    other_names: list[str] = field(default_factory=list)

    def took_load(self, load: Load) -> None:
        load.measure()
        self.busy_cores, self.others, self.services = load.busy, load.others, load.services
        self.other_names = load.other_names

    def summary(self, kind: str | None = None) -> dict[str, float]:
        chosen = [s for s in self.samples if kind is None or s.kind == kind]
        ok = sorted(s.latency for s in chosen if s.status == 200)
        lags = sorted(s.lag for s in chosen)
        failed = sum(1 for s in chosen if s.status != 200)
        late = sum(1 for s in chosen if s.status == 200 and s.latency > SLACK_DEADLINE)
        return {
            "sent": len(chosen),
            "ok": len(ok),
            "failed": failed + (self.scheduled - len(self.samples) if kind is None else 0),
            "late": late,
            "throughput": len(ok) / self.elapsed if self.elapsed else 0.0,
            "p50": percentile(ok, 50),
            "p95": percentile(ok, 95),
            "p99": percentile(ok, 99),
            "max": ok[-1] if ok else float("nan"),
            "lag_p99": percentile(lags, 99),
        }


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted values (nan when empty)."""
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


class _Client:
    """One keep-alive connection; reconnects once when the server closed an idle one."""

    def __init__(self, port: int, secret: str) -> None:
        self._port, self._secret = port, secret
        self._conn: http.client.HTTPConnection | None = None

    def send(self, request: Request) -> int:
        for attempt in (0, 1):
            fresh = self._conn is None
            if fresh:
                self._conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=CLIENT_TIMEOUT)
            ts = int(time.time())
            headers = {
                "Content-Type": request.content_type,
                "X-Slack-Request-Timestamp": str(ts),
                "X-Slack-Signature": slack_signing.signature(self._secret, request.body, ts),
            }
            try:
                self._conn.request("POST", "/slack/events", body=request.body, headers=headers)
                response = self._conn.getresponse()
                response.read()
                if response.will_close:
                    self.close()
                return response.status
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if fresh or attempt:  # not a stale keep-alive connection: a real failure
                    return 0
            except (OSError, http.client.HTTPException):
                self.close()
                return 0
        return 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def open_loop(label: str, port: int, requests: Sequence[Request], *, rate: float,
              workers: int = 64, secret: str = SIGNING_SECRET, ours: set[int] | None = None) -> Run:
    """Send `requests` at `rate` per second whatever the answers' pace (open loop).

    A request is due at start + i/rate; a pool of `workers` threads sends each as it
    falls due. Bounded: len(requests) sends, then at most CLIENT_TIMEOUT for the last.
    """
    run = Run(label, scheduled=len(requests), load1=loadavg()[0])
    due: queue.Queue = queue.Queue()
    lock = threading.Lock()
    load = Load(ours)
    start = time.monotonic() + 0.05
    finish = [start]

    def work() -> None:
        client = _Client(port, secret)
        try:
            while True:
                item = due.get()
                if item is None:
                    return
                scheduled, request = item
                began = time.monotonic()
                status = client.send(request)
                ended = time.monotonic()
                with lock:
                    run.samples.append(Sample(request.kind, status, ended - scheduled, began - scheduled))
                    finish[0] = max(finish[0], ended)
        finally:
            client.close()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for i, request in enumerate(requests):
        at = start + i / rate
        pause = at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        due.put((at, request))
    for _ in threads:
        due.put(None)
    hard_stop = time.monotonic() + CLIENT_TIMEOUT + 5
    for thread in threads:
        thread.join(max(0.0, hard_stop - time.monotonic()))
    run.elapsed = finish[0] - start
    run.took_load(load)
    return run


def closed_loop(label: str, port: int, mix: Mix, *, concurrency: int, seconds: float,
                max_requests: int = 100_000, secret: str = SIGNING_SECRET,
                ours: set[int] | None = None) -> Run:
    """`concurrency` threads each send the next request as soon as the last is answered,
    for `seconds` (or `max_requests` in all): the most the server will do."""
    requests = mix.take(min(max_requests, int(seconds * 2000)))
    run = Run(label, scheduled=0, load1=loadavg()[0])
    index = itertools.count()
    lock = threading.Lock()
    load = Load(ours)
    start = time.monotonic()
    deadline = start + seconds

    def work() -> None:
        client = _Client(port, secret)
        try:
            while time.monotonic() < deadline:
                i = next(index)
                if i >= len(requests):
                    return
                began = time.monotonic()
                status = client.send(requests[i])
                ended = time.monotonic()
                with lock:
                    run.samples.append(Sample(requests[i].kind, status, ended - began, 0.0))
        finally:
            client.close()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + CLIENT_TIMEOUT + 5)
    run.elapsed = time.monotonic() - start
    run.scheduled = len(run.samples)
    run.took_load(load)
    return run


def burst(label: str, port: int, requests: Sequence[Request], *,
          secret: str = SIGNING_SECRET, ours: set[int] | None = None) -> Run:
    """Every request on its own thread and its own new connection, released together
    (as when many people click at once): Slack opens connections as it needs them."""
    run = Run(label, scheduled=len(requests), load1=loadavg()[0])
    gate = threading.Barrier(len(requests) + 1)
    lock = threading.Lock()
    load = Load(ours)

    def work(request: Request) -> None:
        client = _Client(port, secret)
        try:
            gate.wait(30)
            began = time.monotonic()
            status = client.send(request)
            ended = time.monotonic()
            with lock:
                run.samples.append(Sample(request.kind, status, ended - began, 0.0))
        except threading.BrokenBarrierError:
            pass
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(r,), daemon=True) for r in requests]
    for thread in threads:
        thread.start()
    start = time.monotonic()
    gate.wait(30)
    for thread in threads:
        thread.join(CLIENT_TIMEOUT + 5)
    run.elapsed = time.monotonic() - start
    run.took_load(load)
    return run


# ----- output -------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return "–" if seconds != seconds else f"{seconds * 1000:.1f}"


def markdown_table(header: Sequence[str], rows: Iterator[Sequence[str]] | Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_lines(info: dict[str, str]) -> str:
    return (f"Machine: {info['nproc']} cores ({info['cpu']}), memory {info['memory']}, "
            f"Python {info['python']}; {info['date']}; commit {info['revision']}; "
            f"load average at start {info['load_at_start']}.")


def save_json(path: str | None, data: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2, default=str))


def stop_all(*things: Callable[[], None]) -> None:
    """Call each stopper, even if an earlier one fails."""
    for stop in things:
        try:
            stop()
        except Exception as error:  # noqa: BLE001 - cleanup goes on
            print(f"cleanup: {error!r}", file=sys.stderr)
