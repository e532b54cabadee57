"""Does `resolvemeq serve` still acknowledge in time when every listener pool is full
and Slack's Web API is slow?

Bolt's default runner answers 404 once its listener pool is full and the ack takes
more than 3 s; ours acknowledges on the request thread and hands slow work to the
background pool. Here the fake Slack answers chat.update, chat.postEphemeral and
chat.postMessage only after 2-5 s (random, seeded), and (pool size + 10) interactions
arrive at once — for the request threads (SERVER_THREADS + 10) and for the background
pool (SLACK_BACKGROUND_WORKERS + 10) — in several waves a second apart, so the
background pool is already full of slow calls when the later waves come. Every
request has its own connection, as when many people click at once.

Counted: answers that are not 200 (404 in particular) or slower than 3 s (target 0),
and, after the waves, whether the slow work still got done (Slack calls made).

    python -m bench.saturation            # 5 waves per pool
    python -m bench.saturation --quick    # 2 waves per pool
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

from bench.databases import REDIS_URL, flush_redis, fresh_database
from bench.load import SLACK_DEADLINE, burst, percentile
from bench.machine import loadavg, machine
from bench.mix import Mix, seed_resolved_tickets
from bench.processes import FakeSlackProcess, start_ours, stop_all
from bench.procstat import other_busy_processes
from bench.report import machine_lines, markdown_table, ms, save_json

SLOW_METHODS = ("chat.update", "chat.postEphemeral", "chat.postMessage")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.saturation", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 waves per pool instead of 5")
    parser.add_argument("--waves", type=int, default=None, help="waves per pool (default 5; --quick 2)")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between waves (default 1)")
    parser.add_argument("--threads", type=int, default=32, help="SERVER_THREADS (default 32)")
    parser.add_argument("--workers", type=int, default=8, help="SLACK_BACKGROUND_WORKERS (default 8)")
    parser.add_argument("--min-delay", type=float, default=2.0)
    parser.add_argument("--max-delay", type=float, default=5.0)
    parser.add_argument("--ticket-share", type=float, default=1 / 3,
                        help="share of /ticket among the interactions (default 1/3)")
    parser.add_argument("--stranger-share", type=float, default=0.25,
                        help="share of clicks by a stranger (default 0.25)")
    parser.add_argument("--drain-timeout", type=float, default=300,
                        help="longest wait for the slow work after the waves (default 300 s)")
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_NAME", "resolvemeq_bench_sat"))
    parser.add_argument("--redis", default=REDIS_URL)
    parser.add_argument("--ours-module", default="bot.platform.cli",
                        help="run `python -m MODULE serve` as ours (a stand-in to try a change)")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(argv)
    args.waves = args.waves or (2 if args.quick else 5)
    return args


def scenario(args, name: str, pool: int, server, slack: FakeSlackProcess, mix: Mix,
             ours: set[int], rng: random.Random) -> dict:
    concurrent = pool + 10
    # Every slow call of these waves (and some to spare) waits 2-5 s.
    for method in SLOW_METHODS:
        slack.delay(method, [rng.uniform(args.min_delay, args.max_delay)
                             for _ in range(concurrent * args.waves * 2)])
    before = slack.counts()
    runs = []
    for wave in range(args.waves):
        if wave:
            time.sleep(args.gap)
        run = burst(f"{name} wave {wave + 1}", server.port, mix.take(concurrent), ours=ours)
        runs.append(run)
        summary = run.summary()
        print(f"  {name} wave {wave + 1}: {concurrent} at once -> ok {summary['ok']} "
              f"failed {summary['failed']} >3s {summary['late']} p50 {ms(summary['p50'])} "
              f"p99 {ms(summary['p99'])} max {ms(summary['max'])} ms "
              f"(others {run.others:.2f} cores)", flush=True)
    # Done when the fake Slack has seen no new call for longer than its slowest answer
    # (the workers block on slow calls without using CPU, so CPU says nothing here).
    started = last_change = time.monotonic()
    seen = sum(slack.counts().values())
    while time.monotonic() - started < args.drain_timeout:
        time.sleep(1.0)
        now_seen = sum(slack.counts().values())
        if now_seen != seen:
            seen, last_change = now_seen, time.monotonic()
        elif time.monotonic() - last_change > args.max_delay + 2:
            break
    drained = last_change - started
    after = slack.counts()
    made = {m: sum(v for k, v in after.items() if k.startswith(m + ":"))
            - sum(v for k, v in before.items() if k.startswith(m + ":")) for m in SLOW_METHODS}
    samples = [s for r in runs for s in r.samples]
    statuses: dict[int, int] = {}
    for s in samples:
        statuses[s.status] = statuses.get(s.status, 0) + 1
    ok = sorted(s.latency for s in samples if s.status == 200)
    return {
        "scenario": name, "pool": pool, "concurrent": concurrent, "waves": args.waves,
        "sent": len(samples) + sum(r.scheduled - len(r.samples) for r in runs),
        "status_counts": statuses,
        "not_200": sum(n for st, n in statuses.items() if st != 200)
        + sum(r.scheduled - len(r.samples) for r in runs),
        "status_404": statuses.get(404, 0),
        "late": sum(1 for s in samples if s.status == 200 and s.latency > SLACK_DEADLINE),
        "p50": percentile(ok, 50), "p99": percentile(ok, 99), "max": ok[-1] if ok else float("nan"),
        "slack_calls": made, "drain_s": drained,
        "others": max(r.others for r in runs), "alive": server.alive(),
    }


def report(args, info: dict, results: list[dict]) -> str:
    out = [f"### Saturation ({'quick' if args.quick else 'full'} run)", "", machine_lines(info), "",
           f"SERVER_THREADS={args.threads}, SLACK_BACKGROUND_WORKERS={args.workers}; the fake Slack "
           f"answers {', '.join(SLOW_METHODS)} after {args.min_delay:g}-{args.max_delay:g} s; "
           f"{args.waves} waves {args.gap:g} s apart, each (pool + 10) requests released together on "
           f"new connections; mix {args.ticket_share:.0%} `/ticket`, the rest clicks "
           f"({args.stranger_share:.0%} of them by a stranger).", ""]
    out.append(markdown_table(
        ["pool", "at once", "waves", "sent", "not 200", "404", "> 3 s", "p50 ms", "p99 ms", "max ms",
         "slow Slack calls made afterwards", "drained after s", "others' cores (max)"],
        [[f"{r['scenario']} ({r['pool']})", r["concurrent"], r["waves"], r["sent"], r["not_200"],
          r["status_404"], r["late"], ms(r["p50"]), ms(r["p99"]), ms(r["max"]),
          ", ".join(f"{m} {n}" for m, n in r["slack_calls"].items()), f"{r['drain_s']:.0f}",
          f"{r['others']:.2f}"] for r in results]))
    bad = sum(r["not_200"] + r["late"] for r in results)
    out += ["", f"- 404 or slower than 3 s: {bad} (target 0): {'met' if bad == 0 else 'MISSED'}",
            "", f"Load average at the end: {' '.join(f'{x:.2f}' for x in loadavg())}."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print(machine_lines(info), flush=True)
    rng = random.Random(5)
    slack = server = None
    try:
        database_url = fresh_database(args.database)
        flush_redis(args.redis)
        slack = FakeSlackProcess()
        seeded = seed_resolved_tickets(database_url, slack, (args.threads + 10) * args.waves * 2)
        server = start_ours(database_url=database_url, slack=slack, redis_url=args.redis,
                            module=args.ours_module, SERVER_THREADS=str(args.threads),
                            SLACK_BACKGROUND_WORKERS=str(args.workers))
        mix = Mix(seeded, ticket_share=args.ticket_share, stranger_share=args.stranger_share)
        burst("warm-up", server.port, mix.take(8))
        server.wait_idle()
        ours = server.pids() | {slack.pid or 0}
        busy = other_busy_processes(ours)
        print(f"other busy processes before: {', '.join(busy) or 'none'}", flush=True)
        results = [
            scenario(args, "SERVER_THREADS", args.threads, server, slack, mix, ours, rng),
            scenario(args, "SLACK_BACKGROUND_WORKERS", args.workers, server, slack, mix, ours, rng),
        ]
        text = report(args, info, results)
        print()
        print(text)
        save_json(args.json, {"machine": info, "args": vars(args), "results": results})
        if not server.alive():
            print(f"the server died:\n{server.output()[-3000:]}", file=sys.stderr)
            return 1
        return 0
    finally:
        stop_all(*(() if server is None else (server.stop,)),
                 *(() if slack is None else (slack.stop,)))


if __name__ == "__main__":
    sys.exit(main())
