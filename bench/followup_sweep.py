"""How fast the follow-up DMs go out, and that each goes out once.

    python -m bench.followup_sweep                        # 10,000 due, both modes
    python -m bench.followup_sweep --concurrency 2,4,8    # Celery: threads per worker
    python -m bench.followup_sweep --slack-latency 0.05 --followups 2000
    python -m bench.followup_sweep --modes loop           # only the single process
    python -m bench.followup_sweep --quick                # 500 due, both modes (seconds)

Each run builds a fresh PostgreSQL database with the migrations
(`resolvemeq_bench_followups`), seeds `--followups` auto-resolved, unanswered tickets
whose follow-up DM (an outbox row) is due (COPY, `bench.seed.seed_due_followups`), and
sends them against
`bot.sandbox.standin.SlackStandIn`, which runs in a child process of its own (its HTTP work
must not share this process's GIL) on a loopback port:

- `loop`: this process calls `bot.delivery.outbox.deliver` (batches of 100, what the
  delivery job does) until every follow-up is recorded sent. The Slack client's
  `api_call` and the outbox's transactions are timed, so the report says where the time
  went: Slack calls (the fake's latency as the client sees it), claim transactions (the
  SELECT ... FOR UPDATE SKIP LOCKED, the claim UPDATE, the commit) and the send
  transactions, one per group of DMs (lock the group's resolutions and rows, draw the
  DMs, record them, commit; the Slack calls made inside them are counted as Slack
  calls, not here).
- `celery`: two real workers, `resolvemeq worker --pool=threads --concurrency=N`, race
  over the same rows; the broker is a Redis database of the bench's own
  (`BENCH_SWEEP_REDIS_URL`, default `redis://127.0.0.1:6379/12`, flushed before and
  after). This process plays beat: it enqueues `resolvemeq.deliver_outbox` whenever the
  queue is empty, until every follow-up is recorded sent. CPU use per process group
  says where the time went.

Either way: DMs per second, the total time, and duplicates (chat.postMessage calls the
fake answered for a resolution that already had one; must be 0). `--slack-latency S`
makes the fake answer conversations.open and chat.postMessage S seconds late (real
Slack: ~0.1-0.3 s). Everything started is stopped; the database is dropped at the end
unless `--keep`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/followup_sweep.py` as well as `-m bench.followup_sweep`
    sys.path.insert(0, str(ROOT))

from bench import seed  # noqa: E402
from bench.databases import admin_url, drop_database, fresh_database, require_loopback  # noqa: E402
from bench.machine import database_machine, loadavg_text  # noqa: E402
from bench.processes import FakeSlackProcess, Worker  # noqa: E402
from bench.procstat import CpuMeter  # noqa: E402

UTC = dt.UTC
REDIS_URL = os.environ.get("BENCH_SWEEP_REDIS_URL", "redis://127.0.0.1:6379/12")
DEADLINE = 900.0  # seconds any one run may take
BATCH = 100  # deliver's default limit, what the job uses
FEED_INTERVAL = 1.0  # seconds between this process's "beat" ticks (the app's is JOB_INTERVAL)
CLAIM_TXN = "DB claim transactions (claim_due + commit), one per batch"
SEND_TXN = "DB send transactions (lock, draw, record, commit; Slack excluded), one per group"


# ----- the fake Slack's record ---------------------------------------------------------------


def posted(fake) -> dict:
    """What the fake Slack saw (runs in its process): the resolution id of every DM it
    accepted, the calls by method and outcome, and when the first and last DM came."""
    posts = [c for c in fake.calls("chat.postMessage") if c.outcome == "ok"]
    ids = [((c.args.get("metadata") or {}).get("event_payload") or {}).get("resolution_id")
           for c in posts]
    methods = Counter(f"{c.method} {c.outcome}" for c in fake.calls())
    return {"ids": ids, "methods": dict(methods),
            "first": min((c.at for c in posts), default=0.0),
            "last": max((c.at for c in posts), default=0.0)}


def duplicates(summary: dict) -> int:
    ids = summary["ids"]
    return len(ids) - len(set(ids))


# ----- the database --------------------------------------------------------------------------


def prepare(database: str, n: int) -> str:
    url = fresh_database(database)
    seed.seed_due_followups(url, n, now=dt.datetime.now(UTC))
    return url


def sent_count(engine) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.scalar(text(
            "SELECT count(*) FROM ticket_resolution WHERE followup_sent_at IS NOT NULL"))


def takeovers(url: str) -> int:
    """Follow-ups claimed more than once: a claim expired before its batch was sent."""
    from sqlalchemy import text

    from models import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(text(
                "SELECT count(*) FROM slack_outbox WHERE purpose = 'followup' AND attempts > 1"))
    finally:
        engine.dispose()


# ----- (a) one process calling deliver ---------------------------------------------------------


class Timings:
    """Seconds spent, by kind, with counts."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.count: Counter = Counter()

    def add(self, kind: str, seconds: float) -> None:
        self.seconds[kind] += seconds
        self.count[kind] += 1


def run_loop(url: str, slack: FakeSlackProcess, n: int, claim_ttl: str) -> dict:
    from sqlalchemy import event

    from bot import views
    from bot.core.settings import load_settings
    from bot.delivery import outbox
    from bot.delivery.slack_client import make_web_client
    from models import make_engine, make_session_factory

    settings = load_settings(database_url=url, slack_api_url=slack.base_url,
                             slack_bot_token=slack.token, slack_signing_secret="unused-here",
                             claim_ttl=claim_ttl)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    client = make_web_client(settings)
    timings = Timings()

    api_call = client.api_call
    # Which transaction we are in, when its COMMIT started (engine "commit" event), and
    # the Slack time spent inside it (a follow-up is sent inside its transaction).
    inside: dict[str, Any] = {"claim": False, "commit_at": None, "slack": 0.0}

    def timed_api_call(api_method, *args, **kwargs):
        started = time.perf_counter()
        try:
            return api_call(api_method, *args, **kwargs)
        finally:
            spent = time.perf_counter() - started
            inside["slack"] += spent
            timings.add(f"Slack {api_method}", spent)

    # What safe_call reaches through client.<method>.
    setattr(client, "api_call", timed_api_call)  # noqa: B010 (mypy refuses assigning a method)

    from bot.delivery import followup_batches

    real_claim, real_transaction = outbox.claim_due, outbox.transaction
    real_render = views.followup_dm

    def timed_claim(*args, **kwargs):
        inside["claim"] = True
        return real_claim(*args, **kwargs)

    def timed_render(*args, **kwargs):
        started = time.perf_counter()
        try:
            return real_render(*args, **kwargs)
        finally:
            timings.add("  send: render the DM (views.followup_dm)", time.perf_counter() - started)

    @contextlib.contextmanager
    def timed_transaction(factory):
        started = time.perf_counter()
        inside.update(claim=False, commit_at=None, slack=0.0)
        with real_transaction(factory) as session:
            yield session
        ended = time.perf_counter()
        where = "claim" if inside["claim"] else "send"
        timings.add(CLAIM_TXN if inside["claim"] else SEND_TXN, ended - started - inside["slack"])
        if inside["commit_at"] is not None:
            timings.add(f"  {where}: COMMIT", ended - inside["commit_at"])

    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb == "SELECT" and "FOR UPDATE" in statement:
            verb = "SELECT ... FOR UPDATE SKIP LOCKED"
        where = "claim" if inside["claim"] else "send"
        timings.add(f"  {where}: {verb}", time.perf_counter() - conn.info["bench_t0"])

    def on_commit(conn):
        inside["commit_at"] = time.perf_counter()

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "commit", on_commit)
    views.followup_dm = timed_render
    outbox.claim_due, outbox.transaction = timed_claim, timed_transaction
    followup_batches.transaction = timed_transaction  # follow-ups: a transaction per group
    sent, rounds = 0, 0
    started = time.monotonic()
    try:
        while sent < n and rounds < 3 * (n // BATCH + 1) and time.monotonic() - started < DEADLINE:
            rounds += 1
            done = outbox.deliver(sessions, client, ttl=settings.claim_ttl, limit=BATCH)
            sent += done
            if not done:
                time.sleep(0.05)  # nothing claimable: the rest is claimed by a dead attempt
    finally:
        outbox.claim_due, outbox.transaction = real_claim, real_transaction
        followup_batches.transaction = real_transaction
        views.followup_dm = real_render
    elapsed = time.monotonic() - started
    recorded = sent_count(engine)
    engine.dispose()
    return {"mode": "loop: one process, outbox.deliver in a loop", "seconds": elapsed,
            "recorded": recorded, "rounds": rounds, "timings": timings}


# ----- (b) two Celery workers ------------------------------------------------------------------


def _redis():
    import redis

    client = redis.Redis.from_url(require_loopback(REDIS_URL))
    foreign = [k for k in client.scan_iter(count=1000)
               if not k.startswith((b"_kombu", b"celery", b"unacked", b"resolvemeq", b"LIMITS"))]
    if foreign:
        raise SystemExit(f"{REDIS_URL} holds keys that are not ours ({foreign[:3]}); "
                         "choose another with BENCH_SWEEP_REDIS_URL")
    return client


def run_celery(url: str, slack: FakeSlackProcess, n: int, concurrency: int, workers: int,
               claim_ttl: str) -> dict:
    from bot.core.settings import load_settings
    from jobs.celery_app import create_celery
    from models import make_engine

    broker = _redis()
    broker.flushdb()
    app = create_celery(load_settings(database_url="sqlite://", redis_url=REDIS_URL))
    engine = make_engine(url)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-followups-"))
    started_workers = [Worker(f"bench{i + 1}", database_url=url, redis_url=REDIS_URL, slack=slack,
                              concurrency=concurrency, log_dir=log_dir, CLAIM_TTL=claim_ttl)
                       for i in range(workers)]
    enqueued = 0
    try:
        deadline = time.monotonic() + 60
        while not all(w.ready() for w in started_workers):
            if time.monotonic() > deadline:
                raise RuntimeError("workers not ready in 60 s")
            time.sleep(0.2)
        meter = CpuMeter({f"worker {i + 1}": [w.process.pid] for i, w in enumerate(started_workers)}
                         | {"fake Slack": [slack.pid or 0]})
        started = time.monotonic()
        sent, fed = 0, 0.0
        while sent < n and time.monotonic() - started < DEADLINE:
            # What beat does every JOB_INTERVAL: a task per worker thread, if none waits.
            if broker.llen("celery") == 0 and time.monotonic() - fed >= FEED_INTERVAL:
                for _ in range(workers * concurrency):
                    app.send_task("resolvemeq.deliver_outbox")
                enqueued += workers * concurrency
                fed = time.monotonic()
            time.sleep(0.1)
            sent = sent_count(engine)
        elapsed = time.monotonic() - started
        cpu = meter.stop()
    finally:
        for worker in started_workers:
            worker.stop()
        broker.flushdb()
        engine.dispose()
    engine = make_engine(url)
    recorded = sent_count(engine)
    engine.dispose()
    return {"mode": f"celery: {workers} workers --pool=threads --concurrency={concurrency}",
            "seconds": elapsed, "recorded": recorded, "tasks": enqueued, "cpu": cpu,
            "logs": str(log_dir)}


# ----- report --------------------------------------------------------------------------------


def describe(result: dict, summary: dict, n: int) -> list[str]:
    posts = len(summary["ids"])
    dups = duplicates(summary)
    rate = result["recorded"] / result["seconds"] if result["seconds"] else 0.0
    lines = [f"{result['mode']}",
             f"  {result['recorded']:,} of {n:,} recorded sent in {result['seconds']:.1f} s: "
             f"{rate:,.0f} DMs/s; chat.postMessage ok: {posts:,}; duplicates: {dups}"
             + ("" if dups == 0 and result["recorded"] == n else "  <-- NOT exactly once"),
             f"  Slack calls: {summary['methods']}; claimed more than once (claim expired "
             f"mid-batch, taken over): {result['takeovers']:,}"]
    if "timings" in result:
        timings: Timings = result["timings"]
        total = result["seconds"]
        lines.append(f"  where the time went ({result['rounds']} deliver calls):")
        children = {CLAIM_TXN: "  claim:", SEND_TXN: "  send:"}
        for kind, _seconds in sorted(timings.seconds.items(), key=lambda kv: -kv[1]):
            if kind.startswith("  "):
                continue
            shown = [kind] + sorted((k for k in timings.seconds
                                     if children.get(kind) and k.startswith(children[kind])),
                                    key=lambda k: -timings.seconds[k])
            for name in shown:
                spent, count = timings.seconds[name], timings.count[name]
                lines.append(f"    {name:<62} {spent:7.2f} s {spent / total:6.1%}  "
                             f"{count:6,} x {1000 * spent / count:7.2f} ms")
        accounted = sum(s for k, s in timings.seconds.items() if not k.startswith("  "))
        lines.append(f"    {'the rest (Python between the calls)':<62} "
                     f"{total - accounted:7.2f} s {(total - accounted) / total:6.1%}")
    if "cpu" in result:
        lines.append(f"  CPU during the run, in cores (of {os.cpu_count()}): "
                     + ", ".join(f"{k} {v:.2f}" for k, v in result["cpu"].items()))
        lines.append(f"  tasks enqueued: {result['tasks']}; worker logs: {result['logs']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 due follow-ups instead of 10,000")
    parser.add_argument("--followups", type=int, default=None, help="default 10,000; --quick 500")
    parser.add_argument("--modes", default="loop,celery")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", default="4", help="threads per worker; a list: 2,4,8")
    parser.add_argument("--slack-latency", type=float, default=0.0,
                        help="seconds the fake waits before answering open/postMessage")
    parser.add_argument("--claim-ttl", default="2m",
                        help="CLAIM_TTL for the sender(s); the app's default is 2m")
    parser.add_argument("--database", default="resolvemeq_bench_followups")
    parser.add_argument("--keep", action="store_true", help="keep the database of the last run")
    args = parser.parse_args(argv)
    n = max(1, min(args.followups or (500 if args.quick else 10_000), 100_000))
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    levels = [max(1, min(int(c), 32)) for c in args.concurrency.split(",")]

    print(database_machine(admin_url()), flush=True)
    print(f"{n:,} due follow-ups, fake Slack latency {args.slack_latency * 1000:.0f} ms "
          f"on conversations.open and chat.postMessage, CLAIM_TTL {args.claim_ttl}", flush=True)
    slack = FakeSlackProcess()
    report: list[str] = []
    try:
        runs: list[tuple[str, int]] = ([("loop", 0)] if "loop" in modes else []) + \
               ([("celery", c) for c in levels] if "celery" in modes else [])
        for mode, concurrency in runs:
            slack.reset()
            if args.slack_latency > 0:
                slack.slow(("conversations.open", "chat.postMessage"), args.slack_latency)
            url = prepare(args.database, n)
            load = loadavg_text()
            result = (run_loop(url, slack, n, args.claim_ttl) if mode == "loop"
                      else run_celery(url, slack, n, concurrency, args.workers, args.claim_ttl))
            result["takeovers"] = takeovers(url)
            lines = [f"[load before {load}, after {loadavg_text()}]",
                     *describe(result, slack.query(posted), n), ""]
            print("\n".join(lines), flush=True)
            report += lines
    finally:
        slack.stop()
        if not args.keep:
            drop_database(args.database)
    print("\n".join(["", "summary", *report]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
