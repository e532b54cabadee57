"""Memory of one `resolvemeq serve` process (or, with `--server bare`, of the bare Bolt
floor) over 10,000 requests.

Resident memory (RSS, read with psutil) of the gunicorn master and of its worker: after start,
after a warm-up, then after every batch of requests (mixed Yes/star clicks, strangers'
clicks and `/ticket` commands, open loop at `--rate`), each time once the background
work has drained. Growth that keeps climbing batch after batch is a leak; a step at
warm-up that then stays flat is caches and pools filling.

    python -m bench.memory            # 10,000 requests at 50/s in 5 batches (~4 min)
    python -m bench.memory --quick    # 2,000 requests
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from bench.databases import REDIS_URL, flush_redis, fresh_database
from bench.load import open_loop
from bench.machine import loadavg, machine
from bench.mix import Mix, seed_resolved_tickets
from bench.processes import FakeSlackProcess, start_bare, start_ours, stop_all
from bench.procstat import rss_kib
from bench.report import machine_lines, markdown_table, ms, save_json


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.memory", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 requests instead of 10,000")
    parser.add_argument("--requests", type=int, default=None, help="default 10000; --quick 2000")
    parser.add_argument("--batches", type=int, default=5, help="RSS is read after each (default 5)")
    parser.add_argument("--warm-up", type=int, default=500, help="requests before the baseline")
    parser.add_argument("--rate", type=float, default=50.0,
                        help="requests/s (default 50: the background keeps up on 2 cores)")
    parser.add_argument("--ticket-share", type=float, default=0.5)
    parser.add_argument("--stranger-share", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=32, help="SERVER_THREADS (default 32)")
    parser.add_argument("--workers", type=int, default=8, help="SLACK_BACKGROUND_WORKERS (default 8)")
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_NAME", "resolvemeq_bench_mem"))
    parser.add_argument("--redis", default=REDIS_URL)
    parser.add_argument("--ours-module", default="bot.platform.cli",
                        help="run `python -m MODULE serve` as ours (a stand-in to try a change)")
    parser.add_argument("--server", choices=("ours", "bare"), default="ours",
                        help="measure `resolvemeq serve` (default) or the bare Bolt floor")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(argv)
    args.requests = args.requests or (2000 if args.quick else 10_000)
    return args


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print(machine_lines(info), flush=True)
    slack = server = None
    points: list[dict] = []
    try:
        database_url = fresh_database(args.database)
        flush_redis(args.redis)
        slack = FakeSlackProcess()
        seeded = seed_resolved_tickets(database_url, slack, 300)
        env = dict(database_url=database_url, slack=slack, redis_url=args.redis,
                   SERVER_THREADS=str(args.threads), SLACK_BACKGROUND_WORKERS=str(args.workers),
                   # every /ticket takes the full path, as in bench.ack_path
                   MAX_AUTONOMOUS_ACTIONS_PER_MINUTE="1000000",
                   MAX_AUTONOMOUS_ACTIONS_PER_HOUR="1000000",
                   MAX_AUTONOMOUS_ACTIONS_PER_DAY="1000000")
        server = start_bare(**env) if args.server == "bare" else start_ours(module=args.ours_module, **env)
        ours = server.pids() | {slack.pid or 0}
        mix = Mix(seeded, ticket_share=args.ticket_share, stranger_share=args.stranger_share)
        worker = server.worker_pid

        def point(label: str, sent: int, run=None) -> None:
            drained = server.wait_idle()
            row: dict[str, Any] = {"point": label, "requests": sent,
                   "total": sent + (args.warm_up if run else 0),
                   "master_kib": rss_kib(server.master_pid),
                   "worker_kib": rss_kib(worker), "drain_s": drained,
                   "load1": loadavg()[0]}
            if run is not None:
                summary = run.summary()
                row.update(failed=summary["failed"], p99=summary["p99"], others=run.others)
            points.append(row)
            print(f"  {label:>16}: {sent:6} requests, master {mib(row['master_kib'])} MiB, "
                  f"worker {mib(row['worker_kib'])} MiB (drained {drained:.1f} s)", flush=True)

        point("started", 0)
        run = open_loop("warm-up", server.port, mix.take(args.warm_up), rate=args.rate, ours=ours)
        point("after warm-up", 0, run)
        sent = 0
        per_batch = args.requests // args.batches
        for batch in range(args.batches):
            count = per_batch if batch < args.batches - 1 else args.requests - sent
            run = open_loop(f"batch {batch + 1}", server.port, mix.take(count), rate=args.rate, ours=ours)
            sent += count
            point(f"batch {batch + 1}", sent, run)
        if worker not in server.worker_pids:
            print("the worker was replaced during the run (gunicorn restarted it)", file=sys.stderr)

        base = points[1]["worker_kib"]
        per_k = (points[-1]["worker_kib"] - base) / max(1, points[-1]["requests"]) * 1000
        first_half = points[1 + args.batches // 2]
        text = "\n".join([
            f"### Memory of {args.server} ({'quick' if args.quick else 'full'} run)", "",
            machine_lines(info), "",
            f"{args.requests:,} requests after a {args.warm_up}-request warm-up, open loop at "
            f"{args.rate:g}/s, {args.ticket_share:.0%} `/ticket`, the rest clicks "
            f"({args.stranger_share:.0%} of them by a stranger); SERVER_THREADS={args.threads}, "
            f"SLACK_BACKGROUND_WORKERS={args.workers}. RSS read once the background work drained.",
            "",
            markdown_table(
                ["point", "requests sent", "master RSS MiB", "worker RSS MiB",
                 "worker Δ since warm-up MiB", "failed", "p99 ms", "others' cores"],
                [[p["point"], p["total"], mib(p["master_kib"]), mib(p["worker_kib"]),
                  f"{(p['worker_kib'] - base) / 1024:+.1f}" if i > 1 else "–",
                  p.get("failed", "–"), ms(p["p99"]) if "p99" in p else "–",
                  f"{p['others']:.2f}" if "others" in p else "–"] for i, p in enumerate(points)]),
            "",
            f"- worker growth after warm-up: {(points[-1]['worker_kib'] - base) / 1024:+.1f} MiB over "
            f"{points[-1]['requests']:,} requests ({per_k:+.0f} KiB per 1,000); in the second half "
            f"alone {(points[-1]['worker_kib'] - first_half['worker_kib']) / 1024:+.1f} MiB.",
            f"- master: {mib(points[0]['master_kib'])} → {mib(points[-1]['master_kib'])} MiB.",
            "", f"Load average at the end: {' '.join(f'{x:.2f}' for x in loadavg())}.",
        ])
        print()
        print(text)
        save_json(args.json, {"machine": info, "args": vars(args), "points": points})
        return 0 if server.alive() else 1
    finally:
        stop_all(*(() if server is None else (server.stop,)),
                 *(() if slack is None else (slack.stop,)))


if __name__ == "__main__":
    sys.exit(main())
