"""How fast `resolvemeq serve` acknowledges Slack, next to a bare Bolt app (the floor).

Starts PostgreSQL database `resolvemeq_bench_ack` (recreated, migrated), Redis database
BENCH_REDIS_URL (flushed), the fake Slack (in a child process), `resolvemeq serve`
("ours") and `bench.bare_bolt` ("bare") on free loopback ports; seeds resolved tickets
with `bot.domain.actions.execute` (their messages posted to the fake Slack), then sends signed
requests — valid Yes/star clicks by the requester, clicks by a stranger, `/ticket`
commands — to both servers, alternating which goes first:

- open loop at each rate of `--rates` (requests are due at fixed times; latency is
  counted from when a request was due, so a server that falls behind shows it);
- closed loop at each concurrency of `--concurrency` (the most each server will do).

After each run the script waits for the server to go idle (its background work to
drain) before the next, so one run's backlog does not slow the next one's server.
Prints markdown tables: per run, ours beside bare, and the targets (p99 < 100 ms at
100 req/s; closed-loop throughput >= 70 % of bare's).

    python -m bench.ack_path            # full: 20 s per rate, 15 s per concurrency
    python -m bench.ack_path --quick    # about 2 minutes
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.databases import REDIS_URL, PgStats, flush_redis, fresh_database
from bench.load import closed_loop, open_loop
from bench.machine import loadavg, machine
from bench.mix import Mix, seed_resolved_tickets
from bench.processes import BenchServer, FakeSlackProcess, start_bare, start_ours, stop_all
from bench.procstat import other_busy_processes
from bench.report import machine_lines, markdown_table, ms, save_json

P99_TARGET = 0.100
P99_TARGET_RATE = 100
THROUGHPUT_TARGET = 0.70
# Every /ticket takes the full path (agent, auto-resolve, post): the heaviest
# background work an ack competes with. The default caps (50/min) would send most of
# a benchmark's tickets to triage after the first minute.
UNCAPPED = {"MAX_AUTONOMOUS_ACTIONS_PER_MINUTE": "1000000",
            "MAX_AUTONOMOUS_ACTIONS_PER_HOUR": "1000000",
            "MAX_AUTONOMOUS_ACTIONS_PER_DAY": "1000000"}


def _parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.ack_path", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about 2 minutes in all)")
    parser.add_argument("--rates", type=_parse_ints, default=[25, 50, 100, 200],
                        help="open-loop rates, requests/s (default 25,50,100,200)")
    parser.add_argument("--concurrency", type=_parse_ints, default=[16, 32],
                        help="closed-loop concurrencies (default 16,32)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="seconds per open-loop rate (default 20; --quick 5)")
    parser.add_argument("--closed-seconds", type=float, default=None,
                        help="seconds per closed-loop run (default 15; --quick 5)")
    parser.add_argument("--ticket-share", type=float, default=0.5,
                        help="share of /ticket commands; the rest are clicks (default 0.5)")
    parser.add_argument("--stranger-share", type=float, default=0.2,
                        help="share of clicks made by a stranger (default 0.2)")
    parser.add_argument("--threads", type=int, default=32, help="SERVER_THREADS for both (default 32)")
    parser.add_argument("--server-workers", type=int, default=1,
                        help="SERVER_WORKERS (gunicorn processes) for both (default 1)")
    parser.add_argument("--workers", type=int, default=8,
                        help="SLACK_BACKGROUND_WORKERS for ours (default 8)")
    parser.add_argument("--only", choices=("ours", "bare"), help="measure one server only")
    parser.add_argument("--seed", type=int, default=300, help="resolved tickets to click on")
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_NAME", "resolvemeq_bench_ack"))
    parser.add_argument("--redis", default=REDIS_URL)
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--ours-module", default="bot.platform.cli",
                        help="run `python -m MODULE serve` as ours (a stand-in to try a change)")
    parser.add_argument("--py-spy", dest="py_spy", metavar="DIR",
                        help="record a py-spy profile of ours' worker during each run into DIR")
    parser.add_argument("--py-spy-flags", default="--gil",
                        help="extra py-spy flags (default --gil: only the thread holding the GIL, "
                        "i.e. where the worker's CPU goes; '--idle' for wall time)")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (5.0 if args.quick else 20.0)
    args.closed_seconds = args.closed_seconds or (5.0 if args.quick else 15.0)
    return args


def _profile(args: argparse.Namespace, server: BenchServer, label: str, seconds: float):
    if not args.py_spy or server.name != "ours":
        return None
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    Path(args.py_spy).mkdir(parents=True, exist_ok=True)
    out = Path(args.py_spy) / f"{label.replace(' ', '_').replace('/', '')}.txt"
    return subprocess.Popen(
        [exe, "record", "--pid", str(server.worker_pid), "--duration", str(int(seconds) + 1),
         "--rate", "200", "--format", "raw", "--nonblocking", *args.py_spy_flags.split(),
         "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def measure(args: argparse.Namespace, servers: list[BenchServer], mixes: dict[str, Mix],
            ours: set[int], pg: PgStats) -> list[dict]:
    steps = [("rate", r) for r in args.rates] + [("closed", c) for c in args.concurrency]
    results = []
    for i, (how, value) in enumerate(steps):
        order = servers if i % 2 == 0 else list(reversed(servers))
        for server in order:
            label = f"{value} req/s" if how == "rate" else f"closed c={value}"
            cpu_before = server.worker_cpu()
            pg_before = pg.read()
            seconds = args.seconds if how == "rate" else args.closed_seconds
            profiler = _profile(args, server, f"{server.name} {label}", seconds)
            if how == "rate":
                run = open_loop(label, server.port, mixes[server.name].take(int(value * seconds)),
                                rate=value, ours=ours)
            else:
                run = closed_loop(label, server.port, mixes[server.name], concurrency=value,
                                  seconds=seconds, ours=ours)
            cpu_run = server.worker_cpu() - cpu_before
            drained = server.wait_idle()
            cpu_total = server.worker_cpu() - cpu_before
            time.sleep(1.2)  # let the backends report their counters
            pg_after = pg.read()
            if profiler is not None:
                profiler.wait(timeout=seconds + 30)
            summary = run.summary()
            per_kind = {k: run.summary(k) for k in ("click", "stranger", "ticket")}
            row = {"step": label, "how": how, "value": value, "server": server.name, **summary,
                   "per_kind": per_kind, "busy_cores": run.busy_cores, "load1": run.load1,
                   "other_cores": run.others, "service_cores": run.services,
                   "other_names": run.other_names,
                   "cpu_ms_per_req_ack": 1000 * cpu_run / max(1, summary["sent"]),
                   "cpu_ms_per_req_total": 1000 * cpu_total / max(1, summary["sent"]),
                   "drain_s": drained, "alive": server.alive(),
                   "pg_sessions": pg_after["sessions"] - pg_before["sessions"],
                   "pg_commits": pg_after["commits"] - pg_before["commits"]}
            results.append(row)
            print(f"  {server.name:4} {label:13} sent {summary['sent']:5} ok {summary['ok']:5} "
                  f"failed {summary['failed']:3} >3s {summary['late']:3} "
                  f"{summary['throughput']:7.1f}/s p50 {ms(summary['p50'])} p95 {ms(summary['p95'])} "
                  f"p99 {ms(summary['p99'])} max {ms(summary['max'])} ms | lag p99 "
                  f"{ms(summary['lag_p99'])} | cpu {row['cpu_ms_per_req_total']:.2f} ms/req | "
                  f"drain {drained:.1f}s | pg +{row['pg_sessions']} sessions "
                  f"{row['pg_commits'] / max(1, summary['sent']):.1f} commits/req | "
                  f"busy {run.busy_cores:.2f} cores (others {run.others:.2f}"
                  f"{' ' + ', '.join(run.other_names) if run.other_names else ''}), load {run.load1:.2f}",
                  flush=True)
    return results


def report(args: argparse.Namespace, info: dict, results: list[dict]) -> str:
    out = [f"### Ack path ({'quick' if args.quick else 'full'} run)", "", machine_lines(info), "",
           f"Mix: {args.ticket_share:.0%} `/ticket`, the rest clicks ({args.stranger_share:.0%} of them "
           f"by a stranger); SERVER_WORKERS={args.server_workers}, SERVER_THREADS={args.threads}, "
           f"SLACK_BACKGROUND_WORKERS={args.workers}; "
           f"open loop {args.seconds:g} s per rate, closed loop {args.closed_seconds:g} s. "
           "Latency in ms from when the request was due to the last byte of the answer. "
           "*busy cores*: the whole machine during the run (kernel network work included); "
           "*others' cores*: what live processes other than this benchmark, its PostgreSQL "
           "backends and Redis used (other people's test runs, PostgreSQL backends of other "
           "databases).", ""]
    header = ["run", "server", "sent", "ok", "failed", ">3 s", "req/s", "p50", "p95", "p99", "max",
              "gen lag p99", "worker CPU ms/req", "drain s", "new PG sessions", "busy cores",
              "others' cores", "load1"]
    out.append(markdown_table(header, [
        [r["step"], r["server"], r["sent"], r["ok"], r["failed"], r["late"], f"{r['throughput']:.1f}",
         ms(r["p50"]), ms(r["p95"]), ms(r["p99"]), ms(r["max"]), ms(r["lag_p99"]),
         f"{r['cpu_ms_per_req_total']:.2f}", f"{r['drain_s']:.1f}",
         r["pg_sessions"] if r["server"] == "ours" else "–", f"{r['busy_cores']:.2f}",
         f"{r['other_cores']:.2f}", f"{r['load1']:.2f}"] for r in results]))
    by = {(r["step"], r["server"]): r for r in results}
    steps = list(dict.fromkeys(r["step"] for r in results))
    if all((s, "ours") in by and (s, "bare") in by for s in steps):
        out += ["", markdown_table(
            ["run", "p99 ours", "p99 bare", "req/s ours", "req/s bare", "ours/bare req/s",
             "p99 click", "p99 stranger", "p99 /ticket"],
            [[s, ms(by[s, "ours"]["p99"]), ms(by[s, "bare"]["p99"]),
              f"{by[s, 'ours']['throughput']:.1f}", f"{by[s, 'bare']['throughput']:.1f}",
              f"{by[s, 'ours']['throughput'] / max(by[s, 'bare']['throughput'], 1e-9):.2f}",
              *(ms(by[s, "ours"]["per_kind"][k]["p99"]) for k in ("click", "stranger", "ticket"))]
             for s in steps])]
    verdicts = []
    at = by.get((f"{P99_TARGET_RATE} req/s", "ours"))
    if at:
        met = at["p99"] < P99_TARGET and at["failed"] == 0
        verdicts.append(f"- p99 at {P99_TARGET_RATE} req/s: {ms(at['p99'])} ms (target < 100 ms): "
                        f"{'met' if met else 'MISSED'}"
                        + ("" if at["failed"] == 0 else f", {at['failed']} failed"))
    for c in args.concurrency:
        o, b = by.get((f"closed c={c}", "ours")), by.get((f"closed c={c}", "bare"))
        if o and b:
            ratio = o["throughput"] / max(b["throughput"], 1e-9)
            verdicts.append(f"- throughput at c={c}: {o['throughput']:.0f} vs {b['throughput']:.0f} req/s "
                            f"= {ratio:.0%} of bare (target >= 70 %): "
                            f"{'met' if ratio >= THROUGHPUT_TARGET else 'MISSED'}")
    if verdicts:
        out += ["", *verdicts]
    out += ["", f"Load average at the end: {' '.join(f'{x:.2f}' for x in loadavg())}."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print(machine_lines(info), flush=True)
    slack = ours = bare = None
    try:
        database_url = fresh_database(args.database)
        flush_redis(args.redis)
        slack = FakeSlackProcess()
        seeded = seed_resolved_tickets(database_url, slack, args.seed)
        env = dict(database_url=database_url, slack=slack, redis_url=args.redis,
                   SERVER_THREADS=str(args.threads), SERVER_WORKERS=str(args.server_workers),
                   SLACK_BACKGROUND_WORKERS=str(args.workers), **UNCAPPED)
        servers = []
        if args.only != "bare":
            ours = start_ours(module=args.ours_module, **env)
            servers.append(ours)
        if args.only != "ours":
            bare = start_bare(**env)
            servers.append(bare)
        mixes = {s.name: Mix(seeded, ticket_share=args.ticket_share,
                             stranger_share=args.stranger_share) for s in servers}
        for server in servers:  # warm up: imports, pools, Bolt's first auth.test
            closed_loop("warm-up", server.port, mixes[server.name], concurrency=4, seconds=3)
            server.wait_idle()
        ignore = {p for s in servers for p in s.pids()} | {slack.pid or 0}
        busy = other_busy_processes(ignore)
        print(f"other busy processes before the runs: {', '.join(busy) or 'none'}", flush=True)
        pg = PgStats(database_url)
        try:
            results = measure(args, servers, mixes, ignore, pg)
        finally:
            pg.close()
        busy_after = other_busy_processes(ignore)
        text = report(args, info, results)
        text += (f"\nOther processes busy before the runs: {', '.join(busy) or 'none'}; "
                 f"after: {', '.join(busy_after) or 'none'}.")
        print()
        print(text)
        save_json(args.json, {"machine": info, "args": vars(args), "results": results,
                              "slack_calls": slack.counts()})
        for server in servers:
            print(f"{server.name}'s log: {server.log_summary()}")
        for server in servers:
            if not server.alive():
                print(f"{server.name} died during the run:\n{server.output()[-3000:]}", file=sys.stderr)
                return 1
        return 0
    finally:
        stop_all(*(s.stop for s in (ours, bare) if s is not None),
                 *(() if slack is None else (slack.stop,)))


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"(took {time.monotonic() - started:.0f} s)", file=sys.stderr)
    sys.exit(code)
