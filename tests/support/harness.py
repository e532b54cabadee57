"""End-to-end harness: the real `resolvemeq serve` (gunicorn) in a subprocess, talking
to a fake Slack Web API on loopback, real PostgreSQL and real Redis.

Tests send requests signed exactly as Slack signs them and read what people saw
from the fake Slack, and what was stored from the database.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from bot.core import clock
from bot.domain import actions
from bot.sandbox import signing
from bot.sandbox.standin import SlackStandIn
from bot.views import ActionId
from models import ActionHistory, Ticket, TicketSource, TicketStatus
from tests.support.factories import make_plan

SIGNING_SECRET = "e2e-signing-secret-0123456789abcdef"
TEAM_ID = "T0RESOLVEQ"
ADMIN = "UADMIN"
REQUESTER = "UREQUESTER"
STRANGER = "USTRANGER"
CHANNEL = "CHELPDESK"
ESCALATIONS = "CESCALATE"
BARRIER_USER = "UBARRIER"
BARRIER_CHANNEL = "DBARRIER"
VPN = "My VPN keeps disconnecting when I work from home"
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SlackRequests:
    """Requests shaped and signed exactly as Slack sends them.

    Subclasses say how a signed body reaches the app (`deliver`): over HTTP to a real
    server (`Server`), or straight into the Bolt app (`tests.support.bolt_requests`).
    """

    slack: SlackStandIn

    def deliver(self, raw: bytes, headers: dict[str, str]) -> Any:
        raise NotImplementedError

    def post(self, body: str | bytes, *, content_type: str = signing.FORM_CONTENT_TYPE,
             timestamp: int | str | None = None, secret: str = SIGNING_SECRET,
             headers: dict[str, str] | None = None) -> Any:
        raw = body.encode() if isinstance(body, str) else body
        ts = int(time.time()) if timestamp is None else timestamp
        signed = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signing.signature(secret, raw, ts),
            **(headers or {}),
        }
        return self.deliver(raw, signed)

    def command(self, command: str, text: str, *, user: str = REQUESTER, channel: str = CHANNEL,
                team: str = TEAM_ID, enterprise: str | None = None) -> Any:
        trigger = f"trig-{uuid.uuid4().hex}"
        body = signing.slash_command_body(
            command, text, user_id=user, channel_id=channel, team_id=team, trigger_id=trigger,
            response_url=self.slack.response_url(trigger), enterprise_id=enterprise,
        )
        return self.post(body)

    def click(self, action_id: str, value: str, *, user: str = REQUESTER, channel: str = CHANNEL,
              message_ts: str = "1732527000.000100", team: str = TEAM_ID,
              trigger_id: str | None = None, enterprise: str | None = None,
              ephemeral: bool = False) -> Any:
        """Click a button. The click's response URL is the fake Slack's, keyed
        "USER.TRIGGER" (`SlackStandIn.responses(user)`); `ephemeral`: on an ephemeral message."""
        trigger = trigger_id or f"trig-{uuid.uuid4().hex}"
        payload = signing.block_actions_payload(
            action_id, value, user_id=user, channel_id=channel, team_id=team, message_ts=message_ts,
            trigger_id=trigger, enterprise_id=enterprise,
            response_url=self.slack.response_url(f"{user}.{trigger}"), is_ephemeral=ephemeral,
        )
        return self.post(signing.block_actions_body(payload))

    def home_click(self, action_id: str, value: str, *, user: str = REQUESTER, team: str = TEAM_ID,
                   trigger_id: str | None = None) -> Any:
        """Click a button in `user`'s App Home tab (the view the fake Slack has for them)."""
        payload = signing.home_actions_payload(
            action_id, value, user_id=user, team_id=team, view=self.slack.home_view(user),
            trigger_id=trigger_id or f"trig-{uuid.uuid4().hex}",
        )
        return self.post(signing.block_actions_body(payload))

    def message_shortcut(self, callback_id: str, message: dict[str, Any], *, user: str = REQUESTER,
                         channel: str = CHANNEL, team: str = TEAM_ID) -> Any:
        """Use a message shortcut on `message` (as Slack carries it in the payload)."""
        payload = signing.message_shortcut_payload(
            callback_id, message, user_id=user, channel_id=channel, team_id=team,
            trigger_id=f"trig-{uuid.uuid4().hex}",
        )
        return self.post(signing.block_actions_body(payload))

    def submit_view(self, view: dict[str, Any], values: dict[str, dict[str, str]], *,
                    user: str = REQUESTER, team: str = TEAM_ID) -> Any:
        """Press Submit on a modal the app opened (`view`: views.open's view, as the
        fake Slack stored it), with `values` typed into it: {block_id: {action_id: text}}."""
        payload = signing.view_submission_payload(view, values, user_id=user, team_id=team)
        return self.post(signing.block_actions_body(payload))

    def event(self, event: dict[str, Any], *, event_id: str | None = None, team: str = TEAM_ID,
              retry: int | None = None, enterprise: str | None = None) -> Any:
        body = signing.event_body(event, event_id=event_id or f"Ev{uuid.uuid4().hex[:10]}",
                                        team_id=team, enterprise_id=enterprise)
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None
        return self.post(body, content_type="application/json", headers=headers)


class Server(SlackRequests):
    """One `resolvemeq serve` process with its own environment."""

    def __init__(self, *, database_url: str, slack: SlackStandIn, redis_url: str | None,
                 **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **self.inherited_env(),
            "DATABASE_URL": database_url,
            "SLACK_API_URL": slack.base_url,
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "ADMIN_USER_IDS": ADMIN,
            "ESCALATION_CHANNEL": ESCALATIONS,
            # The tests' /ticket is typed in CHANNEL, where people ask in the open.
            "HELPDESK_CHANNELS": CHANNEL,
            # A module's server takes more tickets from one person than a person may
            # open; the limit's own tests set it.
            "TICKET_RATE_LIMIT": "off",
            "FOLLOWUP_DELAY": "24h",
            # Decisions in the server's own pool, even with REDIS_URL: most tests start
            # no worker (tests/e2e/test_workers.py does, with DECIDE_ON=workers).
            "DECIDE_ON": "serve",
            **env,
        }
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.slack = slack
        self.process: subprocess.Popen | None = None
        self.http = httpx.Client(base_url=self.url, timeout=10)
        self._log: list[str] = []
        self._log_lock = threading.Lock()

    def inherited_env(self) -> dict[str, str]:
        """What the server keeps of this process's environment: all but its Slack,
        database and Redis settings (bench narrows this further)."""
        return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_", "REDIS_"))}

    def server_argv(self) -> list[str]:
        """The server's command line (bench runs a bare Bolt app the same way)."""
        return [sys.executable, "-m", "bot.platform.cli", "serve", "--host", "127.0.0.1",
                "--port", str(self.port)]

    def start(self, wait_healthy: bool = True, timeout: float = 30) -> Server:
        """Start the server; wait until /healthz says 200 (or, with `wait_healthy`
        False, until it answers at all, e.g. while a service is down on purpose),
        for `timeout` seconds at most."""
        self.process = subprocess.Popen(
            self.server_argv(), cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        # Drain the server's output as it comes: a full pipe would block its logging,
        # and with it the server.
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.output()}")
            try:
                if self.http.get("/healthz").status_code == 200 or not wait_healthy:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become healthy:\n{self.output()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.http.close()

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            with self._log_lock:
                self._log.append(line.decode(errors="replace"))

    def mark(self) -> int:
        """A position in the server's log, for `text(since=...)`."""
        with self._log_lock:
            return len(self._log)

    def text(self, since: int = 0) -> str:
        """What the server has logged since `since`."""
        with self._log_lock:
            return "".join(self._log[since:])

    def output(self) -> str:
        """What the server has logged so far."""
        return self.text()

    def deliver(self, raw: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.http.post("/slack/events", content=raw, headers=headers)


def wait_until(predicate, *, timeout: float = 10, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def shown(payload: dict) -> str:
    """What a person can read in a message or ack: its text and every text in its blocks."""
    parts = [payload.get("text") or ""]

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    parts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(payload.get("blocks") or [])
    return "\n".join(parts)


def barrier(e2e, slack) -> None:
    """Wait until the work of every request acknowledged so far has started.

    A click on a rollback's Cancel is answered off the request path (through its
    response URL), on the same
    first-in first-out executor as every decision and Slack post: once its word to the
    clicker is out, what was queued before it has run or is running. (The App Home has
    an executor of its own, so it cannot serve.) `without_barrier` leaves its calls out.
    """
    before = len(barrier_calls(slack))
    response = e2e.click(ActionId.ROLLBACK_CANCEL, "cancel", user=BARRIER_USER,
                         channel=BARRIER_CHANNEL)
    assert response.status_code == 200
    wait_until(lambda: len(barrier_calls(slack)) > before, what="the barrier's reply")


def barrier_calls(slack) -> list:
    """The fake Slack's calls that answered a barrier (through the click's response URL)."""
    return without_barrier(slack.calls(), keep=False)


def without_barrier(calls: list, *, keep: bool = True) -> list:
    """`calls` (the fake Slack's) without those that answered a barrier (with `keep`
    False: only those)."""
    def answered_barrier(call) -> bool:
        return (call.args.get("user") == BARRIER_USER
                or str(call.args.get("response_key", "")).startswith(BARRIER_USER + "."))

    return [c for c in calls if answered_barrier(c) is not keep]


def resolved_ticket(e2e_sessions, *, user: str = REQUESTER) -> int:
    """An auto-resolved ticket written straight into the server's database."""
    now = clock.now()
    with e2e_sessions() as session:
        ticket = Ticket(user_id=user, issue_type=VPN, description=VPN, status=TicketStatus.NEW, tags=[],
                        source=TicketSource.SLASH_COMMAND, slack_team_id=TEAM_ID, slack_channel_id=CHANNEL,
                        created_at=now, updated_at=now)
        session.add(ticket)
        session.flush()
        actions.execute(session, ticket, make_plan(), now=now, followup_delay=timedelta(hours=24))
        session.commit()
        return ticket.ticket_id


def ephemeral_answer(answer) -> dict:
    """The JSON of a listener's HTTP answer, which must be a 200 only the clicker sees."""
    assert answer.status_code == 200, answer.text
    said = answer.json()
    assert said["response_type"] == "ephemeral", said
    return said


def rows(sessions, query) -> list:
    """Every row `query` selects, read in a session of its own."""
    with sessions() as session:
        return list(session.scalars(query))


def newest_decision(sessions) -> ActionHistory:
    """Wait for the bot's action on the newest ticket."""
    def done():
        [ticket] = rows(sessions, select(Ticket).order_by(Ticket.ticket_id.desc()).limit(1))
        actions = rows(sessions, select(ActionHistory).where(ActionHistory.ticket_id == ticket.ticket_id))
        return actions[0] if actions else None

    return wait_until(done, what="the bot's decision")
