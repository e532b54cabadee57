"""What keeping the audit chain in order costs where decisions run: the two options.

    python -m bench.audit_chain --quick     # 120 decisions per run, PostgreSQL and SQLite
    python -m bench.audit_chain             # 600 decisions per run
    python -m bench.audit_chain --backends postgresql --threads 1,8 --rounds 3

Each run decides pre-opened tickets with `Runtime.process` (the knowledge-base agent,
the policy, the action row, the resolution, the follow-up owed: one transaction per
ticket, as a worker runs it) from 1 and 8 threads, under three ways of chaining:

- `none`: no chain (the floor);
- `lock` (what the app does): each transaction appends its rows' entries just before
  it commits, under `pg_advisory_xact_lock` on PostgreSQL (on SQLite the transaction
  holds the database's write lock already);
- `seal`: decisions write no entries; a sealing job on its own thread chains whatever
  is unchained every 50 ms, in time and id order, off the decision path.

It reports decisions per second and the per-decision latency (p50, p99), and for `seal`
how far the chain lags (rows left unchained at the end of the run, the sealer's passes).
Runs alternate between the options, `--rounds` times, so a busy neighbour on this
shared machine slows all three alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.databases import drop_database, fresh_database
from bench.load import percentile
from bench.machine import machine
from bench.report import machine_lines, markdown_table

TEXTS = ("My VPN keeps disconnecting when I work from home", "I forgot my password and can't log in",
         "printer jammed on floor 3", "my laptop was stolen from my car")
OPTIONS = ("none", "lock", "seal")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.audit_chain", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="120 decisions per run, one round")
    parser.add_argument("--decisions", type=int, default=None, help="per run; default 600, --quick 120")
    parser.add_argument("--threads", default="1,8", help="deciding threads per run, comma-separated")
    parser.add_argument("--rounds", type=int, default=None, help="default 2; --quick 1")
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--database",
                        default=os.environ.get("BENCH_DATABASE_NAME", "resolvemeq_bench_chain"))
    args = parser.parse_args(argv)
    decisions = args.decisions or (120 if args.quick else 600)
    rounds = args.rounds or (1 if args.quick else 2)
    threads = [int(n) for n in args.threads.split(",")]

    print(machine_lines(machine()), flush=True)
    for backend in args.backends.split(","):
        plain, chained = _interleaved(backend, decisions * rounds, args.database)
        print(f"\n### {backend}: the append's own cost, one thread, {decisions * rounds} decisions "
              "alternating\n")
        print(markdown_table(["chain", "p50 ms", "mean ms", "p90 ms"], [
            [name, f"{percentile(v, 50) * 1000:.2f}", f"{statistics.fmean(v) * 1000:.2f}",
             f"{percentile(v, 90) * 1000:.2f}"] for name, v in (("`none`", plain), ("`lock`", chained))]))
        results: dict[tuple[str, int], list[Run]] = {}
        for _ in range(rounds):
            for count in threads:
                for option in OPTIONS:
                    run = _run(backend, option, count, decisions, args.database)
                    results.setdefault((option, count), []).append(run)
                    print(f"  {backend} {option} x{count}: {run.rate:.0f}/s", file=sys.stderr, flush=True)
        print(f"\n### {backend}: {decisions} decisions per run, {rounds} round(s)\n")
        rows = []
        for count in threads:
            floor = _median([r.rate for r in results[("none", count)]])
            for option in OPTIONS:
                runs = results[(option, count)]
                rate = _median([r.rate for r in runs])
                rows.append([f"`{option}`", count, f"{rate:.0f}", f"{100 * (rate / floor - 1):+.0f}%",
                             f"{_median([r.p50 for r in runs]) * 1000:.1f}",
                             f"{_median([r.p99 for r in runs]) * 1000:.1f}", runs[-1].note])
        print(markdown_table(["chain", "threads", "decisions/s", "vs none", "p50 ms", "p99 ms", "chain"],
                             rows))
    return 0


class Run:
    """One run's figures."""

    def __init__(self, latencies: list[float], wall: float, note: str) -> None:
        ordered = sorted(latencies)
        self.rate = len(ordered) / wall
        self.p50 = percentile(ordered, 50)
        self.p99 = percentile(ordered, 99)
        self.note = note


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _run(backend: str, option: str, threads: int, decisions: int, database: str) -> Run:
    from bot.domain import audit_verify, intake
    from models import make_session_factory, transaction

    runtime, cleanup = _runtime(backend, database)
    if option != "lock":
        runtime.sessions = make_session_factory(runtime.engine)  # no chaining at commit
    with transaction(runtime.sessions) as session:
        ids = [intake.open_ticket(session, user_id=f"U{n:05d}", text=TEXTS[n % len(TEXTS)],
                                  source="cli").ticket.ticket_id for n in range(decisions + 20)]
    for ticket_id in ids[:20]:  # warm the agent and the pool
        runtime.process(ticket_id)
    sealer = _Sealer(runtime) if option == "seal" else None
    latencies: list[float] = []
    lock = threading.Lock()

    def work(mine: list[int]) -> None:
        for ticket_id in mine:
            started = time.perf_counter()
            runtime.process(ticket_id)
            took = time.perf_counter() - started
            with lock:
                latencies.append(took)

    todo = ids[20:]
    started = time.perf_counter()
    _in_threads(work, [todo[n::threads] for n in range(threads)])
    wall = time.perf_counter() - started
    note = ""
    if sealer is not None:
        left = sealer.stop()
        note = f"{left} unchained at the end; {sealer.passes} seal passes"
    with audit_verify.snapshot_session(runtime.engine) as session:
        report = audit_verify.verify(session, key=None)
    if option != "none" and not report.ok:
        raise SystemExit(f"{option}: the chain does not verify: {report.problems[:3]}")
    note = note or (f"{report.entries} entries, verified" if option != "none" else "")
    cleanup()
    return Run(latencies, wall, note)


def _interleaved(backend: str, decisions: int, database: str) -> tuple[list[float], list[float]]:
    """Decisions alternating between a plain and a chaining session factory on one
    database and one thread: the difference is the append's cost, with whatever else
    the machine does spread over both alike."""
    from bot.domain import intake
    from models import make_session_factory, transaction

    runtime, cleanup = _runtime(backend, database)
    chained, plain = runtime.sessions, make_session_factory(runtime.engine)
    with transaction(runtime.sessions) as session:
        ids = [intake.open_ticket(session, user_id=f"U{n:05d}", text=TEXTS[n % len(TEXTS)],
                                  source="cli").ticket.ticket_id for n in range(decisions + 20)]
    for ticket_id in ids[:20]:
        runtime.process(ticket_id)
    took: dict[bool, list[float]] = {True: [], False: []}
    for n, ticket_id in enumerate(ids[20:]):
        runtime.sessions = chained if n % 2 else plain
        started = time.perf_counter()
        runtime.process(ticket_id)
        took[bool(n % 2)].append(time.perf_counter() - started)
    cleanup()
    return sorted(took[False]), sorted(took[True])


def _runtime(backend: str, database: str):
    """A runtime on a fresh database of `backend`, and what removes both after."""
    from bot.core.settings import load_settings
    from bot.workflows.runtime import Runtime

    folder = None
    if backend == "postgresql":
        url = fresh_database(database)
    else:
        from bot.platform.migrations import upgrade

        folder = tempfile.mkdtemp(prefix="resolvemeq-bench-chain-")
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
    uncapped = {"max_autonomous_actions_per_minute": 10**6, "max_autonomous_actions_per_hour": 10**6,
                "max_autonomous_actions_per_day": 10**6}
    runtime = Runtime.from_settings(load_settings(database_url=url, **uncapped), namespace="bench-chain")

    def cleanup() -> None:
        runtime.engine.dispose()
        if folder is None:
            drop_database(database)
        else:
            shutil.rmtree(folder, ignore_errors=True)

    return runtime, cleanup


def _in_threads(work: Callable[[list[int]], None], shares: list[list[int]]) -> None:
    workers = [threading.Thread(target=work, args=(share,)) for share in shares]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


class _Sealer:
    """Option `seal`: a job that chains unchained rows every 50 ms, off the decision path."""

    def __init__(self, runtime) -> None:
        self._runtime = runtime
        self._stop = threading.Event()
        self.passes = 0
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            self.seal_once()

    def seal_once(self) -> int:
        from sqlalchemy import select

        from bot.domain import audit_chain
        from models import ActionHistory, AuditChainEntry, AuditEvent, transaction

        with transaction(self._runtime.sessions) as session:
            audit_chain.lock(session)
            found = []
            for table, model, at, link in (
                (audit_chain.ACTIONS, ActionHistory, ActionHistory.executed_at, AuditChainEntry.action_id),
                (audit_chain.EVENTS, AuditEvent, AuditEvent.occurred_at, AuditChainEntry.event_id),
            ):
                unchained = ~select(AuditChainEntry.seq).where(link == model.id).exists()
                ids = session.scalars(select(model.id).where(unchained).order_by(at, model.id)
                                      .limit(500)).all()
                found += [audit_chain.digests_of(table, row)
                          for row in audit_chain.read_rows(session, table, ids).values()]
            found.sort(key=lambda d: audit_chain.chain_order(d.ref.table, d.ref.id, d.at))
            audit_chain.append(session, found, key=None)
        self.passes += 1
        return len(found)

    def stop(self) -> int:
        """Stop, and say how many rows were still unchained (the lag at the end)."""
        from sqlalchemy import func, select

        from models import ActionHistory, AuditChainEntry

        self._stop.set()
        self._thread.join()
        with self._runtime.engine.connect() as conn:
            left = conn.scalar(select(func.count()).select_from(ActionHistory).where(
                ~select(AuditChainEntry.seq).where(AuditChainEntry.action_id == ActionHistory.id)
                .exists()))
        while self.seal_once():
            pass
        return int(left or 0)


if __name__ == "__main__":
    sys.exit(main())
