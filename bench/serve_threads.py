"""Where serve's CPU goes, thread by thread, under the production shape's closed loops.

    python -m bench.serve_threads                  # 10 s of clicks, then 10 s of /ticket
    python -m bench.serve_threads --spy DIR        # also py-spy --gil samples into DIR

Ours as `bench.production` starts it (PostgreSQL, REDIS_URL, `resolvemeq serve` with
SERVER_WORKERS=2 and SERVER_THREADS=32, `DECIDE_ON=workers`, one Celery worker), then an
idle window and two closed loops of 32 connections (clicks, a fifth by a stranger; then
only `/ticket`). Each serve thread's CPU is read from /proc/PID/task before and after;
threads are named from `py-spy dump` when py-spy is installed (gunicorn's request threads
are `ThreadPoolExecutor-0_N`, its event loop `MainThread`, our pool `resolvemeq-bg_N`).
Issue 13, point 5: what serve spends beyond the request thread.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench.ack_path import UNCAPPED
from bench.databases import REDIS_URL, drop_database, flush_redis, fresh_database
from bench.load import closed_loop
from bench.mix import Mix, seed_resolved_tickets
from bench.processes import FakeSlackProcess, Worker, start_ours, stop_all
from bench.production import _settings_env

TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pids: list[int]) -> dict[tuple[int, int], float]:
    """CPU seconds (user + system) of every thread of these processes."""
    out = {}
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:  # the thread ended
                continue
            out[(pid, int(tid))] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def thread_names(pid: int) -> dict[int, str]:
    """Python thread names by OS thread id, from `py-spy dump` ({} without py-spy)."""
    try:
        text = subprocess.run(["py-spy", "dump", "-p", str(pid)], capture_output=True,
                              text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    names = {}
    for line in text.splitlines():
        if line.startswith("Thread ") and '"' in line:
            try:
                names[int(line.split()[1], 0)] = line.split('"')[1]
            except ValueError:
                continue
    return names


def _group(name: str) -> str:
    if name.startswith("ThreadPoolExecutor-"):
        return "request threads (gunicorn gthread)"
    if name.startswith("resolvemeq-bg"):
        return "resolvemeq-bg (our background pool)"
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.serve_threads", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database", default="resolvemeq_bench_serve_threads")
    parser.add_argument("--redis", default=REDIS_URL)
    parser.add_argument("--spy", help="directory for py-spy --gil --threads samples (raw format)")
    args = parser.parse_args(argv)
    slack = ours = worker = None
    try:
        url = fresh_database(args.database)
        flush_redis(args.redis)
        slack = FakeSlackProcess()
        seeded = seed_resolved_tickets(url, slack, 300)
        env = dict(database_url=url, slack=slack, redis_url=args.redis, SERVER_THREADS="32",
                   SERVER_WORKERS="2", **UNCAPPED)
        ours = start_ours(DECIDE_ON="workers", **env)
        worker = Worker("serve-threads", database_url=url, redis_url=args.redis, slack=slack,
                        concurrency=8, nice=0, log_dir=Path(tempfile.mkdtemp(prefix="serve-threads-")),
                        **_settings_env(ours))
        while not worker.ready():
            time.sleep(0.2)
        visits: dict[int, int] = {}
        mix = Mix(seeded, visits=visits)
        mix.give_back(closed_loop("warm-up", ours.port, mix, concurrency=4, seconds=2).unsent)
        ours.wait_idle()
        pids = sorted(ours.pids())
        before = thread_cpu(pids)
        time.sleep(args.seconds)
        idle = sum(thread_cpu(pids).values()) - sum(before.values())
        print(f"idle {args.seconds:.0f} s: serve used {idle:.2f} s of CPU (scheduler, heartbeats, "
              f"publisher threads); load average {os.getloadavg()[0]:.1f}")
        for name, share in (("clicks", 0.0), ("/ticket", 1.0)):
            mix = Mix(seeded, ticket_share=share, visits=visits)
            spies = [] if not args.spy else [subprocess.Popen(
                ["py-spy", "record", "-p", str(p), "-d", str(int(args.seconds)), "-r", "100",
                 "--nonblocking", "--gil", "--threads", "-f", "raw",
                 "-o", str(Path(args.spy) / f"{name.strip('/')}_{p}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in ours.worker_pids]
            before = thread_cpu(pids)
            run = closed_loop(name, ours.port, mix, concurrency=args.concurrency,
                              seconds=args.seconds, ours=set(pids))
            after = thread_cpu(pids)
            for spy in spies:
                spy.wait()
            mix.give_back(run.unsent)
            ok = max(1, run.summary()["ok"])
            used = {k: v - before.get(k, 0.0) for k, v in after.items()}
            names: dict[int, str] = {}
            for pid in ours.worker_pids:
                names.update(thread_names(pid))
            groups: dict[str, float] = collections.defaultdict(float)
            for (pid, tid), cpu in used.items():
                label = "gunicorn master" if pid == ours.master_pid else _group(names.get(tid, "unnamed"))
                groups[label] += cpu
            total = sum(used.values())
            print(f"{name}: {ok} answered, {ok / args.seconds:.0f}/s, serve {1000 * total / ok:.2f} ms "
                  f"of CPU per request; load average {os.getloadavg()[0]:.1f}")
            for label, cpu in sorted(groups.items(), key=lambda kv: -kv[1]):
                print(f"  {label:40s} {1000 * cpu / ok:6.3f} ms/request")
            ours.wait_idle()
        return 0
    finally:
        stop_all(*(s.stop for s in (worker, ours, slack) if s is not None))
        stop_all(lambda: drop_database(args.database))


if __name__ == "__main__":
    raise SystemExit(main())
