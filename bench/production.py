"""Ours in production shape beside the bare floor, in one run (issue 13, point 5).

Production shape: PostgreSQL, REDIS_URL, `resolvemeq serve` with two gunicorn
processes (SERVER_WORKERS=2, SERVER_THREADS=32) that store and acknowledge, decisions on
one real `resolvemeq worker` (DECIDE_ON=workers), and the bare Bolt floor
(`bench.bare_bolt`) on the same gunicorn settings, all on this machine's cores with the
fake Slack (a child process) and this load generator. Three phases, each run against
ours and against the floor (alternating which goes first):

- clicks: closed loop, 32 connections, the requester's Yes and star clicks with a
  fifth of them by a stranger (refused): the most clicks each will answer;
- acks: closed loop, 32 connections, only `/ticket`: the most acknowledgements, with the
  decisions the worker completed meanwhile (tickets no longer `new`) beside them;
- mixed: open loop at 100 requests/s, half `/ticket` (latency from when each request was
  due, so queueing shows): p50 and p99.

Over each phase the CPU of every process group is read from /proc (psutil): the serve
processes, the worker, PostgreSQL (this database's backends and its own processes),
Redis, the fake Slack, the load generator (this process), others' processes and the
idle cores, so a missed target says where the cores went. Between phases the servers
and the worker drain (bounded by `--drain-seconds`; what the worker has not reached by
then is dropped from the queue and reported, so one phase's backlog does not slow the
next). Prints markdown tables; the database is dropped at the end unless `--keep`.

    python -m bench.production              # 30 s per phase and server (about 8 minutes)
    python -m bench.production --quick      # 3 s per phase (about 1-2 minutes)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.ack_path import UNCAPPED
from bench.databases import REDIS_URL, drop_database, flush_redis, fresh_database
from bench.load import Run, closed_loop, open_loop
from bench.machine import loadavg, machine
from bench.mix import Mix, seed_resolved_tickets
from bench.processes import BenchServer, FakeSlackProcess, Worker, start_bare, start_ours, stop_all
from bench.procstat import CpuMeter, cpu_seconds
from bench.report import machine_lines, markdown_table, ms, save_json

THROUGHPUT_TARGET = 0.35  # of the floor's, clicks and acks alike
P99_TARGET = 0.100
QUEUE = "celery"  # Celery's default queue: a Redis list in the broker's database
# The CPU split's columns, in the report's order.
GROUPS = ("serve", "worker", "postgres", "redis", "fake Slack", "load generator", "floor",
          "other processes", "idle")


class Phase:
    """One measurement: its name, its load, and the share of `/ticket` in its mix."""

    def __init__(self, name: str, title: str, ticket_share: float, *, concurrency: int = 0,
                 rate: float = 0.0) -> None:
        self.name, self.title, self.ticket_share = name, title, ticket_share
        self.concurrency, self.rate = concurrency, rate


def phases(args: argparse.Namespace) -> list[Phase]:
    return [
        Phase("clicks", f"clicks, closed loop, {args.concurrency} connections", 0.0,
              concurrency=args.concurrency),
        Phase("acks", f"`/ticket` acks, closed loop, {args.concurrency} connections", 1.0,
              concurrency=args.concurrency),
        Phase("mixed", f"{args.rate:g} req/s, half `/ticket`, open loop", 0.5, rate=args.rate),
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.production", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per phase, 50 seeded tickets")
    parser.add_argument("--seconds", type=float, default=None,
                        help="seconds per phase and server (default 30; --quick 3)")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop connections (32)")
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop requests/s (100)")
    parser.add_argument("--server-workers", type=int, default=2, help="SERVER_WORKERS for both (2)")
    parser.add_argument("--threads", type=int, default=32, help="SERVER_THREADS for both (32)")
    parser.add_argument("--worker-concurrency", type=int, default=8,
                        help="threads of the one Celery worker (default 8, as SLACK_BACKGROUND_WORKERS)")
    parser.add_argument("--drain-seconds", type=float, default=None,
                        help="longest wait for the worker's backlog after a phase (default 60; --quick 10)")
    parser.add_argument("--stranger-share", type=float, default=0.2,
                        help="share of clicks made by a stranger (default 0.2)")
    parser.add_argument("--seed", type=int, default=None,
                        help="resolved tickets to click on (300; --quick 50)")
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_NAME",
                                                             "resolvemeq_bench_production"))
    parser.add_argument("--redis", default=REDIS_URL, help="REDIS_URL of ours and the worker (flushed)")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (3.0 if args.quick else 30.0)
    args.drain_seconds = args.drain_seconds or (10.0 if args.quick else 60.0)
    args.seed = args.seed or (50 if args.quick else 300)
    return args


# ----- what the worker did -------------------------------------------------------------


class Decisions:
    """Tickets decided so far (no longer `new`) and the worker's queue."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        import redis
        from sqlalchemy import create_engine

        self._engine = create_engine(database_url, pool_size=1, max_overflow=0)
        self._redis = redis.Redis.from_url(redis_url)

    def decided(self) -> int:
        from sqlalchemy import text

        with self._engine.connect() as conn:
            return int(conn.scalar(text("SELECT count(*) FROM tickets WHERE status <> 'new'")) or 0)

    def queued(self) -> int:
        return int(self._redis.llen(QUEUE))

    def drain(self, worker: Worker, timeout: float) -> tuple[float, int]:
        """Wait until the queue is empty and the worker idle, for `timeout` at most; then
        drop what is still queued. Returns (seconds waited, tasks dropped)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            before = cpu_seconds(worker.process.pid)
            time.sleep(0.5)
            if self.queued() == 0 and cpu_seconds(worker.process.pid) - before < 0.015:
                break
        dropped = self.queued()
        if dropped:
            self._redis.delete(QUEUE)
        return time.monotonic() - start, dropped

    def close(self) -> None:
        self._engine.dispose()
        self._redis.close()


# ----- the run -------------------------------------------------------------------------


def _settings_env(server: BenchServer) -> dict[str, str]:
    """The server's settings a worker shares (channels, admins, caps, follow-up delay):
    not how it serves HTTP nor what it connects to (the worker sets those)."""
    from bot.core.settings import Settings

    names = {name.upper() for name in Settings.model_fields}
    return {k: v for k, v in server.env.items() if k in names
            and not k.startswith(("SLACK_", "DATABASE_", "REDIS_", "SERVER_"))}


def _measure(phase: Phase, server: BenchServer, mix: Mix, seconds: float, ours: set[int],
             groups: dict[str, list[int]], decisions: Decisions | None) -> tuple[Run, dict, int]:
    meter = CpuMeter(groups, idle=True)
    decided = decisions.decided() if decisions else 0
    if phase.rate:
        run = open_loop(phase.name, server.port, mix.take(int(phase.rate * seconds)), rate=phase.rate,
                        ours=ours)
    else:
        run = closed_loop(phase.name, server.port, mix, concurrency=phase.concurrency, seconds=seconds,
                          ours=ours)
    cpu = meter.stop()
    done = decisions.decided() - decided if decisions else 0
    return run, {("load generator" if k == "bench" else k): v for k, v in cpu.items()}, done


def measure(args: argparse.Namespace, ours: BenchServer, bare: BenchServer, worker: Worker,
            slack: FakeSlackProcess, seeded: list[tuple[int, str]], decisions: Decisions) -> list[dict]:
    groups = {"serve": [ours.master_pid], "floor": [bare.master_pid],
              "worker": [worker.process.pid], "fake Slack": [slack.pid or 0]}
    pids = ours.pids() | bare.pids() | {worker.process.pid, slack.pid or 0}
    results = []
    for i, phase in enumerate(phases(args)):
        for server in ((ours, bare) if i % 2 == 0 else (bare, ours)):
            mix = Mix(seeded, ticket_share=phase.ticket_share, stranger_share=args.stranger_share)
            run, cpu, decided = _measure(phase, server, mix, args.seconds, pids, groups,
                                         decisions if server is ours else None)
            server_drain = server.wait_idle(timeout=args.drain_seconds)
            worker_drain, dropped = decisions.drain(worker, args.drain_seconds)
            summary = run.summary()
            row = {"phase": phase.name, "title": phase.title, "server": server.name, **summary,
                   "per_kind": {k: run.summary(k) for k in ("click", "stranger", "ticket")},
                   "decided": decided, "decisions_per_s": decided / max(run.elapsed, 1e-9),
                   "dropped": dropped, "drain_s": max(server_drain, worker_drain), "cpu": cpu,
                   "others": run.others, "load1": run.load1, "alive": server.alive()}
            results.append(row)
            print(f"  {server.name:4} {phase.name:6} sent {summary['sent']:5} ok {summary['ok']:5} "
                  f"failed {summary['failed']:3} {summary['throughput']:7.1f}/s p50 {ms(summary['p50'])} "
                  f"p99 {ms(summary['p99'])} ms | decided {decided} ({row['decisions_per_s']:.1f}/s), "
                  f"dropped {dropped} | cpu {cpu} | load {run.load1:.2f}", flush=True)
    return results


# ----- the report ----------------------------------------------------------------------


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def report(args: argparse.Namespace, info: dict, results: list[dict]) -> str:
    by = {(r["phase"], r["server"]): r for r in results}
    out = [f"### Production shape ({'quick' if args.quick else 'full'} run)", "", machine_lines(info), "",
           f"Ours: PostgreSQL, REDIS_URL, SERVER_WORKERS={args.server_workers}, "
           f"SERVER_THREADS={args.threads}, DECIDE_ON=workers, one `resolvemeq worker --pool=threads "
           f"--concurrency={args.worker_concurrency}`; the floor on the same gunicorn settings. "
           f"{args.seconds:g} s per phase and server; clicks: {args.stranger_share:.0%} by a stranger. "
           "Latency in ms.", ""]
    rows = []
    for phase in phases(args):
        o, b = by.get((phase.name, "ours")), by.get((phase.name, "bare"))
        if not o or not b:
            continue
        if phase.rate:
            met = o["p99"] < P99_TARGET and o["failed"] == 0
            rows.append([phase.title, f"p50 {ms(o['p50'])}, p99 **{ms(o['p99'])}**",
                         f"p50 {ms(b['p50'])}, p99 {ms(b['p99'])}", "–", "p99 < 100 ms", _verdict(met),
                         f"{o['decisions_per_s']:.1f}/s; {o['failed']} failed, {o['late']} > 3 s"])
        else:
            ratio = o["throughput"] / max(b["throughput"], 1e-9)
            extra = (f"{o['decisions_per_s']:.1f}/s (left queued: {o['dropped']})"
                     if phase.name == "acks" else "–")
            rows.append([phase.title, f"**{o['throughput']:.0f}**/s (p99 {ms(o['p99'])})",
                         f"{b['throughput']:.0f}/s (p99 {ms(b['p99'])})", f"**{ratio:.0%}**",
                         f"≥ {THROUGHPUT_TARGET:.0%} of the floor", _verdict(ratio >= THROUGHPUT_TARGET),
                         extra])
    out.append(markdown_table(["phase", "ours", "bare floor", "ours / floor", "target", "",
                               "decisions on the worker"], rows))
    out += ["", f"Cores used during each phase (of {os.cpu_count()}), from /proc: *serve* is ours' "
            "gunicorn master and workers, *floor* the bare app's, *postgres* this database's backends "
            "and PostgreSQL's own processes, *other processes* everyone else's (others' test runs).", ""]
    out.append(markdown_table(["phase", "server", *GROUPS], [
        [r["phase"], r["server"], *(f"{r['cpu'].get(g, 0.0):.2f}" for g in GROUPS)] for r in results]))
    out += ["", f"Load average at the end: {' '.join(f'{x:.2f}' for x in loadavg())}."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print(machine_lines(info), flush=True)
    slack = ours = bare = worker = decisions = None
    database_url = None
    try:
        database_url = fresh_database(args.database)
        flush_redis(args.redis)
        slack = FakeSlackProcess()
        seeded = seed_resolved_tickets(database_url, slack, args.seed)
        env = dict(database_url=database_url, slack=slack, redis_url=args.redis,
                   SERVER_THREADS=str(args.threads), SERVER_WORKERS=str(args.server_workers), **UNCAPPED)
        ours = start_ours(DECIDE_ON="workers", **env)
        bare = start_bare(**env)
        worker = Worker("production", database_url=database_url, redis_url=args.redis, slack=slack,
                        concurrency=args.worker_concurrency,
                        log_dir=Path(tempfile.mkdtemp(prefix="bench-production-")), **_settings_env(ours))
        deadline = time.monotonic() + 60
        while not worker.ready():
            if time.monotonic() > deadline:
                raise RuntimeError("the worker was not ready in 60 s")
            time.sleep(0.2)
        decisions = Decisions(database_url, args.redis)
        for server in (ours, bare):  # warm up: imports, pools, Bolt's first auth.test, the worker
            closed_loop("warm-up", server.port, Mix(seeded), concurrency=4, seconds=2)
            server.wait_idle()
        decisions.drain(worker, args.drain_seconds)
        results = measure(args, ours, bare, worker, slack, seeded, decisions)
        text = report(args, info, results)
        print()
        print(text)
        save_json(args.json, {"machine": info, "args": vars(args), "results": results})
        for server in (ours, bare):
            print(f"{server.name}'s log: {server.log_summary()}")
        print(f"the worker's log: {worker.log}")
        dead = [s.name for s in (ours, bare) if not s.alive()] + (
            ["worker"] if worker.process.poll() is not None else [])
        if dead:
            print(f"died during the run: {', '.join(dead)}", file=sys.stderr)
            return 1
        return 0
    finally:
        stop_all(*(s.stop for s in (worker, ours, bare, slack) if s is not None),
                 *(() if decisions is None else (decisions.close,)))
        if database_url and not args.keep:
            stop_all(lambda: drop_database(args.database))


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"(took {time.monotonic() - started:.0f} s)", file=sys.stderr)
    sys.exit(code)
