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
  due, so queueing shows): p50 and p99. With `--worker-nice N` the worker runs at that
  CPU priority, and the mixed phase is measured against ours once more with the worker
  at nice 0, for both figures (web and workers sharing cores: acknowledgements first).

Beside ours' clicks (and the mixed phase's), the redraws the worker completed (the
fake Slack's `chat.update` calls: with DECIDE_ON=workers the redraw after a click is a
task) and how long the person waited from sending a click that changed their answer
to the first redraw of that message the fake Slack answered after the click's ack
came back (its `time.time()` against the load generator's): p50 and p99, and the
clicks whose message was never redrawn (its task dropped after the drain, say).

Over each phase the CPU of every process group is read from /proc (psutil): the serve
processes, the worker, PostgreSQL (this database's backends and its own processes),
Redis, the fake Slack, the load generator (this process), others' processes and the
idle cores, so a missed target says where the cores went. Between phases the servers
and the worker drain (bounded by `--drain-seconds`; what the worker has not reached by
then is dropped from the queue and reported, so one phase's backlog does not slow the
next). Prints markdown tables; the database is dropped at the end unless `--keep`.

    python -m bench.production              # 30 s per phase and server (about 8 minutes)
    python -m bench.production --quick      # 3 s per phase (about 1-2 minutes)
    python -m bench.production --worker-nice 10   # the worker at nice 10, mixed both ways
"""

from __future__ import annotations

import argparse
import bisect
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.ack_path import UNCAPPED
from bench.databases import REDIS_URL, drop_database, flush_redis, fresh_database
from bench.load import Run, closed_loop, open_loop, percentile
from bench.machine import loadavg, machine
from bench.mix import Mix, seed_resolved_tickets
from bench.processes import BenchServer, FakeSlackProcess, Worker, start_bare, start_ours, stop_all
from bench.procstat import CpuMeter, cpu_seconds
from bench.report import machine_lines, markdown_table, ms, save_json

THROUGHPUT_TARGET = 0.35  # of the floor's, clicks and acks alike
P99_TARGET = 0.100
# The worker's queues (jobs/celery_app.py: decisions, and the work after a click): Redis
# lists in the broker's database.
QUEUES = ("celery", "redraws")
# The CPU split's columns, in the report's order.
GROUPS = ("serve", "worker", "postgres", "redis", "fake Slack", "load generator", "floor",
          "other processes", "idle")


class Phase:
    """One measurement: its name, its load, and the share of `/ticket` in its mix;
    `nice`: the worker's CPU priority during it (None: the run's); `bare`: measured
    against the floor too."""

    def __init__(self, name: str, title: str, ticket_share: float, *, concurrency: int = 0,
                 rate: float = 0.0, nice: int | None = None, bare: bool = True) -> None:
        self.name, self.title, self.ticket_share = name, title, ticket_share
        self.concurrency, self.rate, self.nice, self.bare = concurrency, rate, nice, bare


def phases(args: argparse.Namespace) -> list[Phase]:
    mixed = f"{args.rate:g} req/s, half `/ticket`, open loop"
    found = [
        Phase("clicks", f"clicks, closed loop, {args.concurrency} connections", 0.0,
              concurrency=args.concurrency),
        Phase("acks", f"`/ticket` acks, closed loop, {args.concurrency} connections", 1.0,
              concurrency=args.concurrency),
        Phase("mixed", mixed + (f", worker at nice {args.worker_nice}" if args.worker_nice else ""),
              0.5, rate=args.rate),
    ]
    if args.worker_nice:
        found.append(Phase("mixed-nice-0", mixed + ", worker at nice 0", 0.5, rate=args.rate, nice=0,
                           bare=False))
    return found


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
    parser.add_argument("--worker-nice", type=int, default=0,
                        help="the worker's CPU priority (nice -n; default 0). Not 0: the mixed phase "
                             "is measured again with the worker at nice 0")
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
        return sum(int(self._redis.llen(queue)) for queue in QUEUES)

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
            self._redis.delete(*QUEUES)
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
        mix.give_back(run.unsent)
    cpu = meter.stop()
    done = decisions.decided() - decided if decisions else 0
    return run, {("load generator" if k == "bench" else k): v for k, v in cpu.items()}, done


def redraw_waits(run: Run, updates: list[tuple[str, float]], ended: float) -> dict:
    """How long each answered click that changed the answer waited for its message to be
    redrawn: from when it was sent to the first `chat.update` of that message the fake
    Slack answered after the click's ack came back (drawn after the answer's commit).

    Args:
        run: the phase's samples (clicks that change the answer carry `redraw_ts`).
        updates: (message ts, answered at) of every `chat.update` from the phase's start
            through its drain.
        ended: when the phase's load stopped (time.time()).
    """
    by_ts: dict[str, list[float]] = {}
    for ts, at in updates:
        by_ts.setdefault(ts, []).append(at)
    for times in by_ts.values():
        times.sort()
    waits, never = [], 0
    for sample in run.samples:
        if not sample.redraw_ts or sample.status != 200:
            continue
        times = by_ts.get(sample.redraw_ts, [])
        i = bisect.bisect_left(times, sample.answered_at)
        if i == len(times):
            never += 1
        else:
            waits.append(times[i] - sample.sent_at)
    waits.sort()
    during = sum(1 for _, at in updates if at <= ended)
    return {"redraws": len(updates), "redraws_during": during,
            "redraws_per_s": during / max(run.elapsed, 1e-9), "clicks": len(waits) + never,
            "never": never, "wait_p50": percentile(waits, 50), "wait_p99": percentile(waits, 99)}


def measure(args: argparse.Namespace, ours: BenchServer, bare: BenchServer, worker: Worker,
            slack: FakeSlackProcess, seeded: list[tuple[int, str]], decisions: Decisions,
            visits: dict[int, int]) -> list[dict]:
    groups = {"serve": [ours.master_pid], "floor": [bare.master_pid],
              "worker": [worker.process.pid], "fake Slack": [slack.pid or 0]}
    pids = ours.pids() | bare.pids() | {worker.process.pid, slack.pid or 0}
    results = []
    for i, phase in enumerate(phases(args)):
        servers = (ours, bare) if i % 2 == 0 else (bare, ours)
        for server in (s for s in servers if phase.bare or s is ours):
            mix = Mix(seeded, ticket_share=phase.ticket_share, stranger_share=args.stranger_share,
                      visits=visits if server is ours else None)
            if phase.nice is not None:
                worker.renice(phase.nice)
            started = time.time()
            run, cpu, decided = _measure(phase, server, mix, args.seconds, pids, groups,
                                         decisions if server is ours else None)
            ended = time.time()
            server_drain = server.wait_idle(timeout=args.drain_seconds)
            worker_drain, dropped = decisions.drain(worker, args.drain_seconds)
            if phase.nice is not None:
                worker.renice(args.worker_nice)
            redrawn = (redraw_waits(run, slack.times("chat.update", started), ended)
                       if server is ours else {})
            summary = run.summary()
            row = {"phase": phase.name, "title": phase.title, "server": server.name, **summary,
                   "per_kind": {k: run.summary(k) for k in ("click", "stranger", "ticket")},
                   "decided": decided, "decisions_per_s": decided / max(run.elapsed, 1e-9),
                   "dropped": dropped, "drain_s": max(server_drain, worker_drain), "cpu": cpu,
                   "others": run.others, "load1": run.load1, "alive": server.alive(),
                   "worker_nice": args.worker_nice if phase.nice is None else phase.nice, **redrawn}
            results.append(row)
            print(f"  {server.name:4} {phase.name:6} sent {summary['sent']:5} ok {summary['ok']:5} "
                  f"failed {summary['failed']:3} {summary['throughput']:7.1f}/s p50 {ms(summary['p50'])} "
                  f"p99 {ms(summary['p99'])} ms | decided {decided} ({row['decisions_per_s']:.1f}/s), "
                  f"dropped {dropped} | {_redrawn_line(row)} | cpu {cpu} | load {run.load1:.2f}",
                  flush=True)
    return results


def _redrawn_line(row: dict) -> str:
    if "redraws" not in row:
        return "no redraws"
    return (f"redraws {row['redraws_during']} in the phase ({row['redraws_per_s']:.1f}/s), "
            f"{row['redraws']} with the drain; click to redrawn p50 {ms(row['wait_p50'])} "
            f"p99 {ms(row['wait_p99'])} ms over {row['clicks']} clicks, {row['never']} never redrawn")


# ----- the report ----------------------------------------------------------------------


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def _per_request(row: dict) -> list[str]:
    rate, cpu = max(row["throughput"], 1e-9), row["cpu"]
    own = ("serve" if row["server"] == "ours" else "floor")
    groups = (own, "worker", "postgres", "redis", "fake Slack", "load generator")
    return [f"{1000 * cpu.get(own, 0.0) / rate:.2f}", f"{1000 * cpu.get('worker', 0.0) / rate:.2f}",
            f"{1000 * cpu.get('postgres', 0.0) / rate:.2f}",
            f"{1000 * sum(cpu.get(g, 0.0) for g in groups) / rate:.2f}"]


def _redraws_cell(row: dict) -> str:
    if not row.get("clicks"):
        return "–"
    return (f"{row['redraws_per_s']:.0f}/s; p50 {ms(row['wait_p50'])}, p99 {ms(row['wait_p99'])} ms"
            + (f" ({row['never']} of {row['clicks']} never redrawn)" if row["never"] else ""))


def report(args: argparse.Namespace, info: dict, results: list[dict]) -> str:
    by = {(r["phase"], r["server"]): r for r in results}
    out = [f"### Production shape ({'quick' if args.quick else 'full'} run)", "", machine_lines(info), "",
           f"Ours: PostgreSQL, REDIS_URL, SERVER_WORKERS={args.server_workers}, "
           f"SERVER_THREADS={args.threads}, DECIDE_ON=workers, one `resolvemeq worker --pool=threads "
           f"--concurrency={args.worker_concurrency}`"
           + (f" at nice {args.worker_nice}" if args.worker_nice else "")
           + "; the floor on the same gunicorn settings. "
           f"{args.seconds:g} s per phase and server; clicks: {args.stranger_share:.0%} by a stranger. "
           "Latency in ms.", ""]
    rows = []
    for phase in phases(args):
        o, b = by.get((phase.name, "ours")), by.get((phase.name, "bare"))
        if not o or (phase.bare and not b):
            continue
        if phase.rate:
            met = o["p99"] < P99_TARGET and o["failed"] == 0
            rows.append([phase.title, f"p50 {ms(o['p50'])}, p99 **{ms(o['p99'])}**",
                         f"p50 {ms(b['p50'])}, p99 {ms(b['p99'])}" if b else "–", "–", "p99 < 100 ms",
                         _verdict(met), f"{o['decisions_per_s']:.1f}/s; {o['failed']} failed, "
                         f"{o['late']} > 3 s", _redraws_cell(o)])
        elif b:
            ratio = o["throughput"] / max(b["throughput"], 1e-9)
            extra = (f"{o['decisions_per_s']:.1f}/s (left queued: {o['dropped']})"
                     if phase.name == "acks" else "–")
            rows.append([phase.title, f"**{o['throughput']:.0f}**/s (p99 {ms(o['p99'])})",
                         f"{b['throughput']:.0f}/s (p99 {ms(b['p99'])})", f"**{ratio:.0%}**",
                         f"≥ {THROUGHPUT_TARGET:.0%} of the floor", _verdict(ratio >= THROUGHPUT_TARGET),
                         extra, _redraws_cell(o) if phase.name == "clicks" else "–"])
    out.append(markdown_table(["phase", "ours", "bare floor", "ours / floor", "target", "",
                               "decisions on the worker", "redraws on the worker; click → redrawn"],
                              rows))
    out += ["", f"Cores used during each phase (of {os.cpu_count()}), from /proc: *serve* is ours' "
            "gunicorn master and workers, *floor* the bare app's, *postgres* this database's backends "
            "and PostgreSQL's own processes, *other processes* everyone else's (others' test runs).", ""]
    out.append(markdown_table(["phase", "server", *GROUPS], [
        [r["phase"], r["server"], *(f"{r['cpu'].get(g, 0.0):.2f}" for g in GROUPS)] for r in results]))
    out += ["", "CPU per answered request, ms (cores × 1000 / requests per second): the worker's and "
            "PostgreSQL's include the work after the acknowledgements (decisions, redraws).", ""]
    out.append(markdown_table(["phase", "server", "requests/s", "serve or floor", "worker", "postgres",
                               "all of ours"], [
        [r["phase"], r["server"], f"{r['throughput']:.0f}", *_per_request(r)] for r in results]))
    out += ["", "Redraws after ours' clicks (the worker's `chat.update` calls during the phase, and with "
            "the drain after it); the wait is from sending a click that changed the answer to the first "
            "redraw of its message answered after its ack.", ""]
    out.append(markdown_table(
        ["phase", "worker nice", "redraws/s in the phase", "redraws with the drain", "clicks",
         "click → redrawn p50", "p99", "never redrawn"],
        [[r["phase"], str(r["worker_nice"]), f"{r['redraws_per_s']:.1f}", str(r["redraws"]), str(r["clicks"]),
          f"{ms(r['wait_p50'])} ms", f"{ms(r['wait_p99'])} ms", str(r["never"])]
         for r in results if r.get("clicks")]))
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
                        concurrency=args.worker_concurrency, nice=args.worker_nice,
                        log_dir=Path(tempfile.mkdtemp(prefix="bench-production-")), **_settings_env(ours))
        deadline = time.monotonic() + 60
        while not worker.ready():
            if time.monotonic() > deadline:
                raise RuntimeError("the worker was not ready in 60 s")
            time.sleep(0.2)
        decisions = Decisions(database_url, args.redis)
        visits: dict[int, int] = {}  # ours' clicks per ticket, across its phases
        for server in (ours, bare):  # warm up: imports, pools, Bolt's first auth.test, the worker
            mix = Mix(seeded, visits=visits if server is ours else None)
            mix.give_back(closed_loop("warm-up", server.port, mix, concurrency=4, seconds=2).unsent)
            server.wait_idle()
        decisions.drain(worker, args.drain_seconds)
        results = measure(args, ours, bare, worker, slack, seeded, decisions, visits)
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
