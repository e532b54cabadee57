"""CPU of the serve process per acknowledgement, by kind of request, in one process.

    python -m bench.ack_cpu                # 5 rounds of 60 requests of each kind
    python -m bench.ack_cpu --quick        # 2 rounds of 15 (seconds)
    python -m bench.ack_cpu --profile DIR  # also cProfile each kind: DIR/KIND.pstats

The real app (`create_app`) in production shape for an acknowledgement: PostgreSQL,
REDIS_URL, `DECIDE_ON=workers` (a `/ticket` or a DM stores the ticket, acknowledges and
publishes its Celery task to the broker; no worker runs, the broker database is flushed
at the end), the fake Slack in a child process. Each request is signed as Slack signs
it and handed to `App.dispatch` as the WSGI adapter would (a `BoltRequest` from the raw
body and headers), on this thread; its CPU is read with a per-thread clock
(`time.thread_time`) around that call, so what runs after the ack on the app's executor
(a click's redraw, a refusal's ephemeral message) is not counted, and that work is
finished before the next request starts. Not counted either: gunicorn and the WSGI
layer (the same for the bare floor).

Kinds: *yes* (the requester's Yes on a resolved ticket not answered yet), *star* (the
requester's star rating, a different score each time, so each changes the answer),
*stranger* (a Yes by someone else: refused and audited), *ticket* (`/ticket`), *dm* (a
DM to the bot that opens a ticket). The kinds are interleaved round by round, so the
machine's load drifts over all of them alike; the report is the mean and the median CPU
per request of each kind, and the load average. Compare two versions of the code by
running this on each, alternately (figures: docs/BENCHMARKS.md, "Ack CPU").
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.databases import REDIS_URL, flush_redis, fresh_database
from bench.machine import loadavg_text, machine
from bench.processes import FakeSlackProcess
from bench.report import machine_lines

KINDS = ("yes", "star", "stranger", "ticket", "dm")


class _Slack:
    """What the request builders need of the fake Slack in its child process."""

    def __init__(self, process: FakeSlackProcess) -> None:
        self.base_url, self.token = process.base_url, process.token

    def response_url(self, key: str) -> str:
        from bot.sandbox.standin import RESPONSE_PATH

        return self.base_url.removesuffix("/api/") + RESPONSE_PATH + key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.ack_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 15 requests of each kind")
    parser.add_argument("--rounds", type=int, default=None, help="default 5; --quick 2")
    parser.add_argument("--per-round", type=int, default=None,
                        help="requests of each kind per round (default 60; --quick 15)")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"default {','.join(KINDS)}")
    parser.add_argument("--database",
                        default=os.environ.get("BENCH_DATABASE_NAME", "resolvemeq_bench_ack_cpu"))
    parser.add_argument("--redis", default=REDIS_URL, help="the app's Redis and broker (flushed)")
    parser.add_argument("--profile", metavar="DIR",
                        help="profile each kind (cProfile, per-thread CPU clock) into DIR/KIND.pstats "
                             "and print its top functions; the CPU figures then include the profiler")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    per_round = args.per_round or (15 if args.quick else 60)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")

    # As `resolvemeq serve` configures it (bot/platform/cli.py): what a request logs is
    # part of its cost.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("resolvemeq").setLevel(logging.INFO)

    print(machine_lines(machine()), flush=True)
    fake = FakeSlackProcess()
    try:
        samples = _run(args, fake, kinds, rounds, per_round)
    finally:
        fake.stop()
        flush_redis(args.redis)
    print(f"\nCPU of the request's thread per acknowledgement, ms ({rounds} rounds of {per_round}; "
          f"load average at the end {loadavg_text()}):\n")
    print("| request | n | mean | median | p90 |")
    print("|---|---:|---:|---:|---:|")
    for kind in kinds:
        ms = sorted(1000 * s for s in samples[kind])
        print(f"| {kind} | {len(ms)} | {statistics.fmean(ms):.2f} | {statistics.median(ms):.2f} | "
              f"{ms[int(0.9 * (len(ms) - 1))]:.2f} |")
    return 0


def _run(args: argparse.Namespace, fake: FakeSlackProcess, kinds: list[str], rounds: int,
         per_round: int) -> dict[str, list[float]]:
    from bench.mix import seed_resolved_tickets
    from bot.core.settings import load_settings
    from bot.delivery.background import Background
    from bot.platform.app import create_app
    from bot.workflows.runtime import Runtime
    from tests.support.harness import ADMIN, CHANNEL, ESCALATIONS, SIGNING_SECRET

    url = fresh_database(args.database)
    flush_redis(args.redis)
    settings = load_settings(
        database_url=url, redis_url=args.redis, slack_api_url=fake.base_url,
        slack_bot_token=fake.token, slack_signing_secret=SIGNING_SECRET, admin_user_ids=ADMIN,
        escalation_channel=ESCALATIONS, helpdesk_channels=CHANNEL, followup_delay="24h",
        ticket_rate_limit="off", decide_on="workers")
    runtime = Runtime.from_settings(settings, namespace="bench-ack-cpu")
    background = Background(1, queue_limit=10_000, name="ack-cpu-bg")
    reads = Background(1, queue_limit=10_000, name="ack-cpu-reads")
    app = create_app(runtime, background=background, reads=reads)
    warm = 10
    # One fresh ticket per Yes (so each Yes changes the answer), a pool for the stars
    # and the stranger.
    yes_count = (rounds * per_round + warm) if "yes" in kinds else 0
    tickets = seed_resolved_tickets(url, fake, yes_count + 50)
    requests = _Requests(app, _Slack(fake), tickets[:yes_count], tickets[yes_count:])
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    profiles = {k: cProfile.Profile(time.thread_time) for k in kinds} if args.profile else {}

    def settle() -> None:
        for executor in (reads, background):
            executor.submit(lambda: None).result(timeout=60)

    try:
        for kind in kinds:  # warm-up: imports, the pool's connections, caches
            for _ in range(warm):
                requests.send(kind)
                settle()
        for _ in range(rounds):
            for kind in kinds:
                for _ in range(per_round):
                    body, headers = requests.build(kind)
                    profile = profiles.get(kind)
                    if profile is not None:
                        profile.enable()
                    start = time.thread_time()
                    status = requests.dispatch(body, headers)
                    spent = time.thread_time() - start
                    if profile is not None:
                        profile.disable()
                    if status != 200:
                        raise SystemExit(f"a {kind} request was answered {status}")
                    samples[kind].append(spent)
                    settle()
    finally:
        reads.shutdown(wait=True)
        background.shutdown(wait=True)
        close = getattr(runtime.decisions, "close", None)
        if close is not None:
            close()
        runtime.engine.dispose()
    if args.profile:
        _report_profiles(Path(args.profile), profiles)
    return samples


class _Requests:
    """Signed requests of each kind, and their dispatch to the app."""

    def __init__(self, app, slack: _Slack, fresh: list[tuple[int, str]],
                 pool: list[tuple[int, str]]) -> None:
        from bot.sandbox import signing
        from bot.views import ActionId, feedback_value, rating_action_id
        from tests.support.harness import CHANNEL, REQUESTER, SIGNING_SECRET, STRANGER, TEAM_ID, VPN

        self._app, self._slack, self._signing = app, slack, signing
        self._fresh, self._pool, self._n = iter(fresh), pool, 0
        self._secret, self._team, self._channel = SIGNING_SECRET, TEAM_ID, CHANNEL
        self._requester, self._stranger, self._vpn = REQUESTER, STRANGER, VPN
        self._yes, self._value, self._rating = ActionId.FEEDBACK_YES.value, feedback_value, rating_action_id
        self._builders: dict[str, Callable[[], tuple[bytes, str]]] = {
            "yes": self._yes_click, "star": self._star_click, "stranger": self._stranger_click,
            "ticket": self._ticket, "dm": self._dm}

    def send(self, kind: str) -> int:
        return self.dispatch(*self.build(kind))

    def build(self, kind: str) -> tuple[bytes, dict[str, str | Sequence[str]]]:
        """The raw body and signed headers of the next request of `kind`."""
        self._n += 1
        raw, content_type = self._builders[kind]()
        ts = int(time.time())
        return raw, {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(ts),
                     "X-Slack-Signature": self._signing.signature(self._secret, raw, ts)}

    def dispatch(self, raw: bytes, headers: dict[str, str | Sequence[str]]) -> int:
        """Hand the request to the app as the WSGI adapter does; its HTTP status."""
        from slack_bolt import BoltRequest

        return self._app.dispatch(BoltRequest(body=raw.decode(), headers=dict(headers))).status

    def _click(self, action_id: str, value: str, user: str, ts: str) -> tuple[bytes, str]:
        trigger = f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:20]}"
        payload = self._signing.block_actions_payload(
            action_id, value, user_id=user, channel_id=self._channel, team_id=self._team,
            message_ts=ts, trigger_id=trigger, response_url=self._slack.response_url(f"{user}.{trigger}"))
        return self._signing.block_actions_body(payload).encode(), self._signing.FORM_CONTENT_TYPE

    def _yes_click(self) -> tuple[bytes, str]:
        ticket_id, ts = next(self._fresh)
        return self._click(self._yes, self._value(ticket_id), self._requester, ts)

    def _star_click(self) -> tuple[bytes, str]:
        ticket_id, ts = self._pool[self._n % len(self._pool)]
        score = (self._n // len(self._pool)) % 5 + 1  # not the last score on this ticket
        return self._click(self._rating(score), self._value(ticket_id, score=score), self._requester, ts)

    def _stranger_click(self) -> tuple[bytes, str]:
        ticket_id, ts = self._pool[self._n % len(self._pool)]
        return self._click(self._yes, self._value(ticket_id), self._stranger, ts)

    def _ticket(self) -> tuple[bytes, str]:
        trigger = f"trig-{uuid.uuid4().hex}"
        body = self._signing.slash_command_body(
            "/ticket", f"{self._vpn} (#{self._n})", user_id=self._requester, channel_id=self._channel,
            team_id=self._team, trigger_id=trigger, response_url=self._slack.response_url(trigger))
        return body.encode(), self._signing.FORM_CONTENT_TYPE

    def _dm(self) -> tuple[bytes, str]:
        ts = f"{time.time():.6f}"
        event = {"type": "message", "channel_type": "im", "channel": "D0REQUESTER",
                 "user": self._requester, "text": f"{self._vpn} (#{self._n})", "ts": ts, "event_ts": ts}
        body = self._signing.event_body(event, event_id=f"Ev{uuid.uuid4().hex[:10]}", team_id=self._team)
        return body.encode(), "application/json"


def _report_profiles(folder: Path, profiles: dict[str, cProfile.Profile]) -> None:
    import pstats

    folder.mkdir(parents=True, exist_ok=True)
    for kind, profile in profiles.items():
        path = folder / f"{kind}.pstats"
        profile.dump_stats(path)
        print(f"\n### {kind}: {path} (top 25 by own time)")
        pstats.Stats(str(path)).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    sys.exit(main())
