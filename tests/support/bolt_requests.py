"""Slack's requests dispatched to the real Bolt app inside the test process.

The bodies and signatures are the end-to-end harness's (`harness.SlackRequests`);
instead of going over HTTP to a `resolvemeq serve` subprocess, each becomes a
`BoltRequest` handed to `App.dispatch` of an app built by `create_app`, against real
PostgreSQL and Redis and the fake Slack Web API. The answer is what Slack would get
back (for a slash command, the ephemeral text the person reads); what else the person
saw is read from the fake Slack, what was stored from the database.

The app's executors (decisions and reads) have one worker each, so work runs in the
order it was handed off and `settled()` returns once everything handed off before it
has run: a test can then say that nothing (more) was posted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from slack_bolt import App, BoltRequest

from bot.core.settings import Settings, load_settings
from bot.delivery.background import Background
from bot.platform.app import create_app
from bot.sandbox.standin import SlackStandIn
from bot.workflows.runtime import Runtime
from tests.support.harness import ADMIN, CHANNEL, ESCALATIONS, SIGNING_SECRET, SlackRequests


@dataclass(frozen=True)
class Answer:
    """The HTTP answer Slack would get: status and body."""

    status_code: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class InProcess(SlackRequests):
    """The real Bolt app, spoken to as Slack speaks to it, without a server.

    Args:
        app: the app from `create_app`.
        slack: the fake Slack it calls.
        background: its decisions' executor (one worker, see the module).
        reads: its reads' executor (App Home, /resolution-stats).
    """

    def __init__(self, app: App, slack: SlackStandIn, background: Background,
                 reads: Background) -> None:
        self.app, self.slack, self.background, self.reads = app, slack, background, reads

    def deliver(self, raw: bytes, headers: dict[str, str]) -> Answer:
        response = self.app.dispatch(BoltRequest(body=raw.decode(), headers=headers))
        return Answer(response.status, response.body)

    def settled(self, timeout: float = 10) -> None:
        """Wait until the work handed off so far has run."""
        for executor in (self.reads, self.background):
            executor.submit(lambda: None).result(timeout=timeout)


def listener_settings(*, database_url: str, slack: SlackStandIn, redis_url: str,
                      **overrides: Any) -> Settings:
    """The settings of the end-to-end server (harness.Server), for an app in this process."""
    return load_settings(**{
        "database_url": database_url, "redis_url": redis_url,
        "slack_api_url": slack.base_url, "slack_bot_token": slack.token,
        "slack_signing_secret": SIGNING_SECRET, "admin_user_ids": ADMIN,
        "escalation_channel": ESCALATIONS, "helpdesk_channels": CHANNEL, "followup_delay": "24h",
        "ticket_rate_limit": "off", "decide_on": "serve", **overrides,
    })


@contextmanager
def in_process(runtime: Runtime, slack: SlackStandIn, *, background: Background | None = None,
               reads: Background | None = None) -> Iterator[InProcess]:
    """An app for `runtime` that answers in this process; its background work is
    finished and its connections closed on exit.

    Args:
        runtime: what `resolvemeq serve` would build.
        slack: the fake Slack.
        background, reads: the app's executors (default: one worker each, room to spare).
    """
    background = background or Background(1, queue_limit=1000, name="listener-test-bg")
    reads = reads or Background(1, queue_limit=1000, name="listener-test-reads")
    app = create_app(runtime, background=background, reads=reads)
    try:
        yield InProcess(app, slack, background, reads)
    finally:
        reads.shutdown(wait=True)
        background.shutdown(wait=True)
        runtime.engine.dispose()
