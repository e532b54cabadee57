"""CPU and wall time of one ticket decision, in one process, with nothing else running.

    python -m bench.decision_cpu               # 400 decisions after 50 to warm up
    python -m bench.decision_cpu --decisions 1000
    python -m bench.decision_cpu --quick       # 40 decisions after 10 (seconds)

`announce.decide_and_announce` is what every `/ticket` runs after its ack: agent,
autonomy caps in Redis, action, resolution, outbox row, the Slack post (to the fake Slack
in a child process) and its record. The HTTP benchmarks measure it under load, where the
run-to-run spread hides changes of 10-20%; this loop runs it alone, so two versions of
the code can be compared by running it on each, alternately (figures in
docs/BENCHMARKS.md, "Ack path").
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench.databases import REDIS_URL, flush_redis, fresh_database
from bench.machine import machine
from bench.processes import FakeSlackProcess
from bench.report import machine_lines

TEXTS = ("My VPN keeps disconnecting when I work from home",
         "I forgot my password and can't log in",
         "printer jammed on floor 3")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.decision_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 decisions after 10 to warm up")
    parser.add_argument("--decisions", type=int, default=None, help="default 400; --quick 40")
    parser.add_argument("--warm-up", type=int, default=None, help="default 50; --quick 10")
    parser.add_argument("--database",
                        default=os.environ.get("BENCH_DATABASE_NAME", "resolvemeq_bench_decide"))
    parser.add_argument("--redis", default=REDIS_URL)
    parser.add_argument("--default-caps", action="store_true",
                        help="keep the default autonomy caps: past them every ticket goes to "
                             "human triage (an ESCALATE with two posts) instead of auto-resolving")
    args = parser.parse_args(argv)
    args.decisions = args.decisions or (40 if args.quick else 400)
    args.warm_up = args.warm_up if args.warm_up is not None else (10 if args.quick else 50)

    from bot.core.settings import load_settings
    from bot.delivery.slack_client import make_web_client
    from bot.domain import intake
    from bot.workflows import announce
    from bot.workflows.runtime import Runtime
    from models import transaction

    print(machine_lines(machine()), flush=True)
    slack = FakeSlackProcess()
    try:
        url = fresh_database(args.database)
        flush_redis(args.redis)
        uncapped = {} if args.default_caps else {
            "max_autonomous_actions_per_minute": 1_000_000,
            "max_autonomous_actions_per_hour": 1_000_000,
            "max_autonomous_actions_per_day": 1_000_000}
        settings = load_settings(
            database_url=url, slack_api_url=slack.base_url, slack_bot_token=slack.token,
            slack_signing_secret="unused-here", redis_url=args.redis, **uncapped)
        runtime = Runtime.from_settings(settings, namespace="bench-decide")
        client = make_web_client(settings)
        total = args.warm_up + args.decisions
        with transaction(runtime.sessions) as session:
            ids = [intake.open_ticket(session, user_id=f"U{n % 50:04d}", text=TEXTS[n % 3],
                                      source="slash_command", channel_id="CHELP").ticket.ticket_id
                   for n in range(total)]
        for ticket_id in ids[:args.warm_up]:
            announce.decide_and_announce(runtime, client, ticket_id)
        cpu, wall = time.process_time(), time.monotonic()
        for ticket_id in ids[args.warm_up:]:
            announce.decide_and_announce(runtime, client, ticket_id)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        caps = "default caps" if args.default_caps else "uncapped"
        print(f"{args.decisions} decisions ({caps}): CPU {1000 * cpu / args.decisions:.2f} ms each, "
              f"wall {1000 * wall / args.decisions:.2f} ms each")
        runtime.engine.dispose()
    finally:
        slack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
