"""What the end-to-end fault tests share: the server factory that remembers every
server started, the session-wide scan of their logs for secrets, the database checks,
and `run_jobs` (`resolvemeq jobs run-once` with a server's environment).
"""


from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url

from bot.core import clock
from bot.domain import actions
from bot.sandbox.standin import SlackStandIn
from models import (
    ActionHistory,
    ActionType,
    OutboxPurpose,
    SlackOutbox,
    Ticket,
    TicketResolution,
    TicketSource,
    TicketStatus,
)
from tests.support.factories import make_plan
from tests.support.harness import CHANNEL, REQUESTER, ROOT, TEAM_ID, Server, wait_until

VPN = "My VPN keeps disconnecting when I work from home"
# Slack shows the person an error after 3 s; "in time" leaves room for a loaded machine.
ACK_BUDGET = 2.5
# Shaped like real credentials, so a leak cannot hide behind an obviously fake value.
BOT_TOKEN = "xoxb-2419137045-5210683924113-Qm8vTn3KsLx2RpYw7HdJ4cFz"
DB_PASSWORD = "pg-Pa55word-never-logged-7731"
# Any Slack token shape (bot, user, app-level, refresh...).
TOKEN_SHAPES = re.compile(r"xox[abposr]-|xapp-")


# ----- every process these tests start, and the session-wide scan of their logs --------

_WATCHED: list[tuple[str, Callable[[], str], tuple[str, ...]]] = []
_SCANNED = {"done": False}


def secrets_of(env: dict[str, str]) -> tuple[str, ...]:
    """The secret values a process was given: Slack credentials, URL passwords."""
    found = [env.get(name) or "" for name in
             ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")]
    for name in ("DATABASE_URL", "REDIS_URL"):
        if env.get(name):
            found.append(make_url(env[name]).password or "")
    return tuple(s for s in found if len(s) >= 8)


def leaks(text_: str, secrets: tuple[str, ...]) -> list[str]:
    """What in `text_` is a token shape or one of `secrets` (by position, not value)."""
    found = [f"a token shape at {m.start()}: {text_[max(0, m.start() - 40):m.start()]!r}..."
             for m in TOKEN_SHAPES.finditer(text_)]
    found += [f"configured secret #{i}" for i, secret in enumerate(secrets) if secret in text_]
    return found


def watch(name: str, read: Callable[[], str], secrets: tuple[str, ...]) -> None:
    """Have the session-wide scan read this log at the end."""
    _WATCHED.append((name, read, secrets))


def start_server(*, database_url: str, slack: SlackStandIn, redis_url: str | None,
                 wait_healthy: bool = True, **env: str) -> Server:
    """`resolvemeq serve` as the harness starts it, remembered for the log scan."""
    server = Server(database_url=database_url, slack=slack, redis_url=redis_url, **env)
    watch(f"serve on port {server.port}", server.text, secrets_of(server.env))
    if wait_healthy:
        return server.start()
    return server.start(wait_healthy=False)


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_server_log():
    """After the whole session: no log of any process started here shows a secret."""
    yield
    if _SCANNED["done"]:
        return  # another module imported this fixture and scanned already
    _SCANNED["done"] = True
    found = {name: leaks(read(), secrets) for name, read, secrets in _WATCHED}
    assert not {name: f for name, f in found.items() if f}, found


def run_jobs(server: Server, **env: str) -> dict:
    """`resolvemeq jobs run-once` in a subprocess with the server's environment.

    Returns:
        The per-job results it printed.
    """
    merged = {**server.env, **env}
    done = subprocess.run([sys.executable, "-m", "bot.platform.cli", "jobs", "run-once"], cwd=ROOT,
                          env=merged, capture_output=True, timeout=90)
    output = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    watch(f"jobs run-once for port {server.port}", lambda: output, secrets_of(merged))
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"jobs run-once printed no results:\n{output}") from None


# ----- the database, seen from outside the server --------------------------------------


def tickets(sessions) -> list[Ticket]:
    with sessions() as session:
        return list(session.scalars(select(Ticket).order_by(Ticket.ticket_id)))


def actions_of(sessions, ticket_id: int) -> list[ActionHistory]:
    with sessions() as session:
        return list(session.scalars(select(ActionHistory).where(
            ActionHistory.ticket_id == ticket_id).order_by(ActionHistory.executed_at)))


def resolution_of(sessions, ticket_id: int) -> TicketResolution | None:
    with sessions() as session:
        return session.scalars(select(TicketResolution).where(
            TicketResolution.ticket_id == ticket_id)).one_or_none()


def count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def assert_consistent(sessions) -> None:
    """Nothing half-written: every ticket has a known status; a decided ticket has its
    action; an AUTO_RESOLVE action has its resolution and a resolution its action and
    its follow-up DM (at most one still owed, pending or held)."""
    with sessions() as session:
        all_tickets = list(session.scalars(select(Ticket)))
        all_actions = list(session.scalars(select(ActionHistory)))
        resolutions = list(session.scalars(select(TicketResolution)))
        followups = list(session.scalars(
            select(SlackOutbox).where(SlackOutbox.purpose == OutboxPurpose.FOLLOWUP)))
    by_id = {a.id: a for a in all_actions}
    acted_on = {a.ticket_id for a in all_actions}
    resolved_actions = {r.action_id for r in resolutions}
    for ticket in all_tickets:
        assert ticket.status in set(TicketStatus), ticket.status
        if ticket.status != TicketStatus.NEW or ticket.agent_processed:
            assert ticket.ticket_id in acted_on, f"ticket #{ticket.ticket_id} decided, no action"
    for action in all_actions:
        if action.action_type == ActionType.AUTO_RESOLVE:
            assert action.id in resolved_actions, f"AUTO_RESOLVE {action.id} has no resolution"
    for resolution in resolutions:
        action = by_id.get(resolution.action_id)
        assert action is not None and action.action_type == ActionType.AUTO_RESOLVE, resolution.ticket_id
        assert action.ticket_id == resolution.ticket_id
        its = [f for f in followups if f.resolution_id == resolution.id]
        assert its, f"resolution of #{resolution.ticket_id} owes no follow-up"
        assert len([f for f in its if f.status in ("pending", "held")]) <= 1, resolution.ticket_id


def seed_resolved_ticket(sessions, *, user: str = REQUESTER) -> tuple[int, str]:
    """An auto-resolved ticket written straight into the database; (ticket id, action id)."""
    now = clock.now()
    with sessions() as session:
        ticket = Ticket(user_id=user, issue_type=VPN, description=VPN, status=TicketStatus.NEW, tags=[],
                        source=TicketSource.SLASH_COMMAND, slack_team_id=TEAM_ID, slack_channel_id=CHANNEL,
                        created_at=now, updated_at=now)
        session.add(ticket)
        session.flush()
        row = actions.execute(session, ticket, make_plan(), now=now,
                              followup_delay=timedelta(hours=24))
        session.commit()
        return ticket.ticket_id, row.id.hex


def make_posts_due(sessions) -> int:
    """Move every pending post's next attempt into the past (no waiting on backoff).

    Follow-up DMs keep their due time: they are owed a day later, not retried."""
    with sessions() as session:
        moved = session.execute(update(SlackOutbox).where(
            SlackOutbox.status == "pending", SlackOutbox.purpose != OutboxPurpose.FOLLOWUP).values(
            next_attempt_at=func.now() - text("interval '1 second'"))).rowcount
        session.commit()
        return moved


def about(ticket_id: int) -> Callable[[dict], bool]:
    """Whether a message (or a call's args) is about this ticket."""
    return lambda message: re.match(rf"Ticket #{ticket_id}\b", message.get("text") or "") is not None


def port_of(url: str) -> int:
    return urlsplit(url).port


def timed(call: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def answered(sessions, ticket_id: int, timeout: float = 15) -> Ticket:
    def done():
        ticket = next((t for t in tickets(sessions) if t.ticket_id == ticket_id), None)
        return ticket if ticket is not None and ticket.slack_message_ts else None

    return wait_until(done, timeout=timeout, what=f"ticket #{ticket_id}'s answer posted")


def slash_ticket(server, text_: str = VPN, **kw):
    response, seconds = timed(lambda: server.command("/ticket", text_, **kw))
    assert response.status_code == 200
    assert seconds < ACK_BUDGET, f"/ticket took {seconds:.2f}s to answer"
    return response


def ticket_number(response) -> int:
    return int(re.search(r"ticket #(\d+)", response.json()["text"]).group(1))
