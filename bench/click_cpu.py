"""CPU of the serving process per click, with the redraw in it or on the workers.

    python -m bench.click_cpu              # 3 rounds of 300 clicks per shape, after 50
    python -m bench.click_cpu --quick      # 1 round of 60 clicks per shape, after 20

The real Slack app (`create_app`) in this process, against PostgreSQL and Redis, the
fake Slack in a child process: the requester's star ratings, each changing the answer,
dispatched as Slack sends them (signed) and run to the end, the work after the ack
included. The CPU counted is this process's, every thread (`time.process_time`):

- *serve*: `DECIDE_ON=serve`, the redraw (message lock, read, draw, `chat.update`) on
  the app's background pool, as without Redis and as `serve` did before the redraw
  became a task;
- *workers*: `DECIDE_ON=workers`, the redraw published as a `resolvemeq.redraw` task
  (nothing consumes it here; the queue is emptied at the end): what a click costs
  `serve` in production shape.

The shapes alternate round by round, so a machine that gets busier mid-run weighs on
both. `bench.production` measures the same under load, where the run-to-run spread on a
shared machine hides a change of this size (figures in docs/BENCHMARKS.md,
"Production shape").
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from bench.databases import REDIS_URL, flush_redis, fresh_database
from bench.machine import loadavg, machine
from bench.mix import Mix, seed_resolved_tickets
from bench.processes import FakeSlackProcess
from bench.report import machine_lines

SHAPES = ("serve", "workers")


def _clicks(app, requests, background) -> None:
    """Dispatch each request as Slack would send it, then wait for the work after it."""
    from slack_bolt import BoltRequest

    from bot.sandbox import signing
    from tests.support.harness import SIGNING_SECRET

    for request in requests:
        ts = int(time.time())
        headers = {"content-type": request.content_type, "x-slack-request-timestamp": str(ts),
                   "x-slack-signature": signing.signature(SIGNING_SECRET, request.body, ts)}
        response = app.dispatch(BoltRequest(body=request.body.decode(), headers=headers))
        if response.status != 200:
            raise RuntimeError(f"a click was answered {response.status}: {response.body[:200]}")
    background.submit(lambda: None).result(timeout=120)  # one thread: everything before it ran


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.click_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 60 clicks after 20")
    parser.add_argument("--clicks", type=int, default=None, help="per round and shape (300; --quick 60)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (3; --quick 1)")
    parser.add_argument("--warm-up", type=int, default=None, help="clicks per shape first (50; --quick 20)")
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_NAME", "resolvemeq_bench_click"))
    parser.add_argument("--redis", default=REDIS_URL, help="REDIS_URL (flushed)")
    args = parser.parse_args(argv)
    args.clicks = args.clicks or (60 if args.quick else 300)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.warm_up = args.warm_up if args.warm_up is not None else (20 if args.quick else 50)

    from bot.core.settings import load_settings
    from bot.delivery.background import Background
    from bot.platform.app import create_app
    from bot.workflows.runtime import Runtime
    from tests.support.harness import ADMIN, CHANNEL, ESCALATIONS, SIGNING_SECRET

    print(machine_lines(machine()), flush=True)
    slack = FakeSlackProcess()
    apps = {}
    try:
        url = fresh_database(args.database)
        flush_redis(args.redis)
        seeded = seed_resolved_tickets(url, slack, 100)
        visits: dict[int, int] = {}  # one history of clicks: each rating changes the answer
        mix = Mix(seeded, ticket_share=0.0, stranger_share=0.0, visits=visits)
        for shape in SHAPES:
            # The end-to-end server's settings (tests/support/harness.Server).
            settings = load_settings(
                database_url=url, redis_url=args.redis, slack_api_url=slack.base_url,
                slack_bot_token=slack.token, slack_signing_secret=SIGNING_SECRET,
                admin_user_ids=ADMIN, escalation_channel=ESCALATIONS, helpdesk_channels=CHANNEL,
                followup_delay="24h", ticket_rate_limit="off", decide_on=shape)
            runtime = Runtime.from_settings(settings, namespace="bench-click")
            background = Background(1, queue_limit=100_000, name=f"click-{shape}")
            reads = Background(1, queue_limit=100, name=f"click-reads-{shape}")
            app = create_app(runtime, background=background, reads=reads)
            apps[shape] = (app, background, reads, runtime)
            _clicks(app, mix.take(args.warm_up), background)
        cpu: dict[str, list[float]] = {shape: [] for shape in SHAPES}
        for round_ in range(args.rounds):
            for shape in (SHAPES if round_ % 2 == 0 else SHAPES[::-1]):
                app, background, _, _ = apps[shape]
                requests = mix.take(args.clicks)
                started = time.process_time()
                _clicks(app, requests, background)
                cpu[shape].append(1000 * (time.process_time() - started) / args.clicks)
                print(f"  round {round_ + 1} {shape:7}: {cpu[shape][-1]:.2f} ms of CPU per click "
                      f"(load {loadavg()[0]:.2f})", flush=True)
        print()
        print("| redraw after the ack | CPU per click, ms (each round) | median |")
        print("|---|---|---|")
        for shape in SHAPES:
            where = "in serve's pool (`DECIDE_ON=serve`)" if shape == "serve" else \
                "a task for the workers (`DECIDE_ON=workers`)"
            print(f"| {where} | {', '.join(f'{x:.2f}' for x in cpu[shape])} | "
                  f"**{statistics.median(cpu[shape]):.2f}** |")
        print(f"\n{args.clicks} star ratings per round, each changing the answer; load average at the "
              f"end: {' '.join(f'{x:.2f}' for x in loadavg())}.")
    finally:
        for _, background, reads, runtime in apps.values():
            background.shutdown(wait=True)
            reads.shutdown(wait=True)
            runtime.engine.dispose()
        slack.stop()
        flush_redis(args.redis)
    return 0


if __name__ == "__main__":
    sys.exit(main())
