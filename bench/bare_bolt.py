"""The floor: a bare Bolt app on our server stack whose listeners only `ack()`.

Same stack as `resolvemeq serve`: gunicorn gthread through `bot.server.run_gunicorn`
(one worker, SERVER_THREADS threads), the `SlackWSGI` front with its signature and
timestamp checks, a Bolt `App` with `process_before_response=True` and the same
signing-secret verification and lazy `auth.test` against SLACK_API_URL. What it lacks
is everything that is ours: the middlewares, the database, the background work.

    python -m bench.bare_bolt --host 127.0.0.1 --port 3001
    python -m bench.bare_bolt --quick     # measure the floor alone (seconds), then exit

Reads SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN, SLACK_API_URL and SERVER_THREADS like
`resolvemeq serve`. With `--quick` it starts its own fake Slack and a copy of itself on a
free loopback port, sends signed clicks and `/ticket` commands (open loop at 100/s, then
closed loop with 16 connections, `--seconds` each) and prints what came back: the floor
`bench.ack_path` compares ours with, without a database.
"""

from __future__ import annotations

import argparse
import re
import sys

from pydantic import SecretStr
from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.core.settings import Settings, load_settings
from bot.platform.server import SlackWSGI, run_gunicorn


def _ack_only(ack: Ack) -> None:
    ack()


def _secret(value: SecretStr | None) -> str:
    if value is None:
        raise SystemExit("SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are required")
    return value.get_secret_value()


def build_app(settings: Settings) -> App:
    """A Bolt app configured like ours, with ack-only listeners for /ticket and clicks."""
    client = WebClient(token=_secret(settings.slack_bot_token),
                       base_url=str(settings.slack_api_url), timeout=10)
    app = App(
        client=client,
        signing_secret=_secret(settings.slack_signing_secret),
        process_before_response=True,
        token_verification_enabled=False,
        raise_error_for_unhandled_request=False,
    )
    app.command("/ticket")(_ack_only)
    app.action(re.compile(".*"))(_ack_only)
    return app


def build_wsgi(settings: Settings) -> SlackWSGI:
    return SlackWSGI(
        build_app(settings),
        signing_secret=_secret(settings.slack_signing_secret),
        health=lambda: (True, {"app": "bare"}),
    )


def measure_floor(seconds: float) -> int:
    """Start a fake Slack and this app, load it for `seconds` open loop and as long closed
    loop, print the figures; 1 if the app died, else 0."""
    from bench.load import closed_loop, open_loop
    from bench.machine import machine
    from bench.mix import Mix
    from bench.processes import FakeSlackProcess, start_bare, stop_all
    from bench.report import machine_lines, markdown_table, ms

    info = machine()
    print(machine_lines(info), flush=True)
    slack = server = None
    try:
        slack = FakeSlackProcess()
        # The floor reads no database; "sqlite://" only satisfies the settings.
        server = start_bare(database_url="sqlite://", slack=slack, redis_url=None)
        # Clicks on messages the floor never sees: it acks them all the same.
        mix = Mix([(n, f"1732527000.{n:06d}") for n in range(1, 51)])
        ours = server.pids() | {slack.pid or 0}
        closed_loop("warm-up", server.port, mix, concurrency=4, seconds=1)
        rows = []
        for how, value in (("rate", 100), ("closed", 16)):
            cpu = server.worker_cpu()
            if how == "rate":
                run = open_loop(f"{value} req/s", server.port, mix.take(int(value * seconds)),
                                rate=value, ours=ours)
            else:
                run = closed_loop(f"closed c={value}", server.port, mix, concurrency=value,
                                  seconds=seconds, ours=ours)
            cpu = server.worker_cpu() - cpu
            s = run.summary()
            rows.append([run.label, s["sent"], s["ok"], s["failed"], f"{s['throughput']:.1f}",
                         ms(s["p50"]), ms(s["p95"]), ms(s["p99"]), ms(s["max"]),
                         f"{1000 * cpu / max(1, s['sent']):.2f}", f"{run.others:.2f}"])
        print()
        print("### The bare Bolt floor (quick run)\n")
        print(markdown_table(["run", "sent", "ok", "failed", "req/s", "p50", "p95", "p99", "max",
                              "worker CPU ms/req", "others' cores"], rows))
        print(f"\nLatency in ms. The app's log: {server.log_summary()}.")
        return 0 if server.alive() else 1
    finally:
        stop_all(*(() if server is None else (server.stop,)),
                 *(() if slack is None else (slack.stop,)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bare_bolt", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    parser.add_argument("--quick", action="store_true",
                        help="measure the floor alone for a few seconds (its own fake Slack, "
                        "loopback port and load), print the figures and exit")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="with --quick: seconds of each load run (default 3)")
    args = parser.parse_args(argv)
    if args.quick:
        return measure_floor(args.seconds)
    settings = load_settings()
    if settings.slack_bot_token is None or settings.slack_signing_secret is None:
        print("bench.bare_bolt: SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET must be set", file=sys.stderr)
        return 2
    run_gunicorn(lambda: build_wsgi(settings), host=args.host, port=args.port,
                 threads=settings.server_threads, workers=settings.server_workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
