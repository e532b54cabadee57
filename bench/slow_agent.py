"""A slow agent with the decision pool full: what it costs the database and everyone else.

Starts the fake agent service (in this process) answering every request after
`--agent-seconds` (5 s by default, the HTTP agent's timeout), the fake Slack (a child
process) and `resolvemeq serve` (AGENT_URL set, one retry-free attempt), on PostgreSQL
(database `resolvemeq_bench_slow_agent`, recreated; Redis BENCH_REDIS_URL, flushed) or
with `--backend sqlite` on a SQLite file with no Redis (the embedded default). Seeds
resolved tickets for clicks, fills the decision pool (SLACK_BACKGROUND_WORKERS) with
`/ticket`s, then sends signed requests in the open loop for `--seconds`: `/ticket`s
(intake, which keeps the pool full) and the requester's Yes/star clicks and a
stranger's clicks (writes that must not wait for the agent). Meanwhile, on PostgreSQL,
pg_stat_activity is read every 0.2 s for the server's connections:

- *in use*: connections not idle (running a statement or inside a transaction);
- *idle in transaction*: inside a transaction with nothing running, i.e. waiting
  on something outside the database (the agent): how many, the longest such wait, and
  connection-seconds in all.

Prints one markdown table row per run, with the latency of the clicks and of the
`/ticket` acknowledgements (from when each was due), and how many decisions finished.

    python -m bench.slow_agent                      # PostgreSQL, 30 s at 20 req/s
    python -m bench.slow_agent --backend sqlite
    python -m bench.slow_agent --quick              # 8 s at 10 req/s
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.databases import REDIS_URL, flush_redis, fresh_database
from bench.load import burst, open_loop
from bench.machine import machine
from bench.mix import Mix, seed_resolved_tickets
from bench.processes import FakeSlackProcess, start_ours, stop_all
from bench.report import machine_lines, markdown_table, ms, save_json

UNCAPPED = {"MAX_AUTONOMOUS_ACTIONS_PER_MINUTE": "1000000",
            "MAX_AUTONOMOUS_ACTIONS_PER_HOUR": "1000000",
            "MAX_AUTONOMOUS_ACTIONS_PER_DAY": "1000000"}
SAMPLE_EVERY = 0.2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.slow_agent", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 s at 10 req/s")
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--agent-seconds", type=float, default=5.0,
                        help="how long the agent takes to answer (default 5)")
    parser.add_argument("--seconds", type=float, default=None, help="open-loop seconds (default 30)")
    parser.add_argument("--rate", type=float, default=None, help="requests/s (default 20; --quick 10)")
    parser.add_argument("--ticket-share", type=float, default=0.2,
                        help="share of /ticket commands; the rest are clicks (default 0.2)")
    parser.add_argument("--workers", type=int, default=8,
                        help="SLACK_BACKGROUND_WORKERS: the decision pool (default 8)")
    parser.add_argument("--threads", type=int, default=32, help="SERVER_THREADS (default 32)")
    parser.add_argument("--seed", type=int, default=100, help="resolved tickets to click on")
    parser.add_argument("--database",
                        default=os.environ.get("BENCH_DATABASE_NAME", "resolvemeq_bench_slow_agent"))
    parser.add_argument("--redis", default=REDIS_URL)
    parser.add_argument("--label", default="", help="names the run in the table (e.g. before/after)")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (8.0 if args.quick else 30.0)
    args.rate = args.rate or (10.0 if args.quick else 20.0)
    return args


@dataclass
class Activity:
    """The server's PostgreSQL connections, sampled from pg_stat_activity."""

    samples: int = 0
    in_use: list[int] = field(default_factory=list)
    idle_in_transaction: list[int] = field(default_factory=list)
    longest_idle_in_transaction: float = 0.0
    idle_in_transaction_seconds: float = 0.0  # connection-seconds, summed over the samples

    def row(self) -> dict[str, float]:
        def mean(values):
            return sum(values) / len(values) if values else float("nan")

        return {"in_use_mean": mean(self.in_use), "in_use_max": max(self.in_use, default=0),
                "idle_tx_mean": mean(self.idle_in_transaction),
                "idle_tx_max": max(self.idle_in_transaction, default=0),
                "idle_tx_longest": self.longest_idle_in_transaction,
                "idle_tx_conn_seconds": self.idle_in_transaction_seconds}


class ActivitySampler:
    """Reads pg_stat_activity for the server's database every SAMPLE_EVERY seconds."""

    def __init__(self, database_url: str) -> None:
        from sqlalchemy import create_engine

        self._engine = create_engine(database_url, pool_size=1, max_overflow=0)
        self.activity = Activity()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ActivitySampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(10)
        self._engine.dispose()

    def _loop(self) -> None:
        from sqlalchemy import text

        query = text(
            "SELECT state, extract(epoch FROM now() - state_change) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'")
        with self._engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            while not self._stop.wait(SAMPLE_EVERY):
                rows = conn.execute(query).all()
                idle_tx = [float(age or 0) for state, age in rows if state == "idle in transaction"]
                a = self.activity
                a.samples += 1
                a.in_use.append(sum(1 for state, _ in rows if state != "idle"))
                a.idle_in_transaction.append(len(idle_tx))
                a.longest_idle_in_transaction = max([a.longest_idle_in_transaction, *idle_tx])
                a.idle_in_transaction_seconds += len(idle_tx) * SAMPLE_EVERY


def _decisions(database_url: str) -> int:
    from sqlalchemy import create_engine, func, select

    from models import ActionHistory

    # A plain engine: it reads without waiting for SQLite's write lock, which a server
    # holding it while the agent answers would keep from this count for good.
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(ActionHistory)).scalar_one())
    finally:
        engine.dispose()


def run(args: argparse.Namespace) -> dict:
    """One run; returns its figures."""
    from tests.support.fake_agent import running_fake_agent, slow

    slack = server = None
    workdir = tempfile.TemporaryDirectory(prefix="bench-slow-agent-")
    try:
        if args.backend == "postgresql":
            database_url, redis_url = fresh_database(args.database), args.redis
            flush_redis(redis_url)
        else:
            from bot.platform.migrations import upgrade

            database_url, redis_url = f"sqlite:///{Path(workdir.name) / 'bench.db'}", None
            upgrade(database_url)
        slack = FakeSlackProcess()
        seeded = seed_resolved_tickets(database_url, slack, args.seed)
        with running_fake_agent() as agent:
            agent.answer(then=slow(args.agent_seconds))
            server = start_ours(
                database_url=database_url, slack=slack, redis_url=redis_url,
                AGENT_URL=agent.url, AGENT_TIMEOUT=str(args.agent_seconds * 2 + 5), AGENT_RETRIES="0",
                SERVER_THREADS=str(args.threads), SLACK_BACKGROUND_WORKERS=str(args.workers),
                **UNCAPPED)
            clicks_only = Mix(seeded, ticket_share=0.0)
            burst("warm-up", server.port, clicks_only.take(4))  # Bolt's first auth.test
            mix = Mix(seeded, ticket_share=1.0)
            fill = burst("fill the pool", server.port, mix.take(args.workers))
            deadline = time.monotonic() + 30
            while agent.count < args.workers and time.monotonic() < deadline:
                time.sleep(0.05)
            asked_before, decided_before = agent.count, _decisions(database_url)
            requests = Mix(seeded, ticket_share=args.ticket_share).take(int(args.rate * args.seconds))
            if args.backend == "postgresql":
                with ActivitySampler(database_url) as sampler:
                    loop = open_loop("load", server.port, requests, rate=args.rate)
                activity = sampler.activity.row()
            else:
                loop = open_loop("load", server.port, requests, rate=args.rate)
                activity = {}
            decided = _decisions(database_url) - decided_before
            asked = agent.count - asked_before
            server.stop()
            server = None
        return {"label": args.label, "backend": args.backend, "agent_seconds": args.agent_seconds,
                "workers": args.workers, "rate": args.rate, "seconds": args.seconds,
                "fill_ok": fill.summary()["ok"], "all": loop.summary(),
                "click": loop.summary("click"), "stranger": loop.summary("stranger"),
                "ticket": loop.summary("ticket"), "decided": decided, "agent_asked": asked,
                **activity}
    finally:
        stop_all(*(() if server is None else (server.stop,)),
                 *(() if slack is None else (slack.stop,)), workdir.cleanup)


def report(result: dict) -> str:
    r = result
    header = ["run", "backend", "agent", "pool", "req/s", "sent", "failed", ">3 s",
              "click p50", "click p99", "click max", "/ticket ack p99", "/ticket ack max",
              "PG conns in use mean/max", "idle in tx mean/max", "longest idle in tx s",
              "idle in tx conn-s", "decisions done", "agent asked"]
    pg = r["backend"] == "postgresql"
    clicks = {"sent": r["click"]["sent"] + r["stranger"]["sent"]}
    row = [r["label"] or "–", r["backend"], f"{r['agent_seconds']:g} s", r["workers"],
           f"{r['rate']:g}", r["all"]["sent"], r["all"]["failed"], r["all"]["late"],
           ms(r["click"]["p50"]), ms(r["click"]["p99"]), ms(r["click"]["max"]),
           ms(r["ticket"]["p99"]), ms(r["ticket"]["max"]),
           f"{r['in_use_mean']:.1f} / {r['in_use_max']}" if pg else "n/a",
           f"{r['idle_tx_mean']:.1f} / {r['idle_tx_max']}" if pg else "n/a",
           f"{r['idle_tx_longest']:.1f}" if pg else "n/a",
           f"{r['idle_tx_conn_seconds']:.1f}" if pg else "n/a",
           r["decided"], r["agent_asked"]]
    return "\n".join([
        f"### A {r['agent_seconds']:g}-second agent, the decision pool ({r['workers']}) full "
        f"({r['seconds']:g} s at {r['rate']:g} req/s, {r['ticket']['sent']} /ticket and "
        f"{clicks['sent']} clicks)", "", markdown_table(header, [row])])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print(machine_lines(info), flush=True)
    result = run(args)
    print()
    print(report(result))
    save_json(args.json, {"machine": info, "args": vars(args), "result": result})
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"(took {time.monotonic() - started:.0f} s)", file=sys.stderr)
    sys.exit(code)
