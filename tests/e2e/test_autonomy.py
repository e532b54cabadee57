"""The autonomy switch across processes: an admin pauses through `resolvemeq serve`, and
every process that decides obeys it at its next decision: the server itself, a
`resolvemeq ask` in another process, and the sweep of `resolvemeq jobs run-once`;
resume brings autonomy back in the server and the sweep; shadow records without acting. On
PostgreSQL (with Redis, the server running no jobs) and on the embedded SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.core import clock
from bot.sandbox.standin import SlackStandIn
from models import (
    ActionHistory,
    ActionType,
    AuditEvent,
    ShadowDecision,
    Ticket,
    TicketSource,
    TicketStatus,
    make_engine,
    make_session_factory,
)
from tests.support.databases import E2E_REDIS_URL, clean_e2e
from tests.support.factories import make_ticket
from tests.support.harness import ADMIN, ROOT, Server, shown, wait_until

VPN = "My VPN keeps disconnecting when I work from home"
ALERTS = "C0ALERTS"


@pytest.fixture(params=["postgresql", "sqlite"])
def backend(request, sqlite_url):
    """(database URL, Redis URL) for the server; the PostgreSQL database is emptied after."""
    if request.param == "sqlite":
        # No Redis: the embedded mode. Its jobs thread runs rarely here, so the sweep
        # this test sees is the `jobs run-once` process's.
        yield sqlite_url, None, {"JOB_INTERVAL": "1h"}
        return
    engine = request.getfixturevalue("e2e_engine")
    yield request.getfixturevalue("e2e_db_url"), E2E_REDIS_URL, {}
    clean_e2e(engine)


def _cli(server: Server, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "bot.platform.cli", *args], cwd=ROOT, env=server.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _ask(server: Server) -> dict:
    """A ticket opened and decided by another process (`resolvemeq ask`)."""
    return json.loads(_cli(server, "ask", "--json", VPN))


def _stale_ticket(sessions) -> int:
    """A ticket no process decided yet (its server died), old enough for the sweep."""
    with sessions.begin() as session:
        ticket = make_ticket(session, description=VPN, created_at=clock.now() - timedelta(minutes=10))
        ticket.source = TicketSource.CLI
        session.flush()
        return ticket.ticket_id


def _swept(server: Server, sessions, ticket_id: int) -> ActionHistory:
    assert json.loads(_cli(server, "jobs", "run-once"))["sweep_new_tickets"] >= 1
    with sessions() as session:
        return session.scalars(select(ActionHistory).where(ActionHistory.ticket_id == ticket_id)).one()


def _served(server: Server, sessions) -> ActionHistory:
    """A /ticket through the server, decided by the server."""
    assert server.command("/ticket", VPN).status_code == 200

    def decided():
        with sessions() as session:
            newest = session.scalars(select(Ticket).order_by(Ticket.ticket_id.desc()).limit(1)).one()
            return session.scalars(select(ActionHistory)
                                   .where(ActionHistory.ticket_id == newest.ticket_id)).one_or_none()

    return wait_until(decided, timeout=20, what="the server's decision")


def _admin(server: Server, text: str) -> str:
    answer = server.command("/autonomy", text, user=ADMIN)
    assert answer.status_code == 200, answer.text
    return shown(answer.json())


def test_pause_resume_and_shadow_hold_in_every_process_that_decides(backend):
    database_url, redis_url, env = backend
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with SlackStandIn() as slack:
        server = Server(database_url=database_url, slack=slack, redis_url=redis_url,
                        ALERTS_CHANNEL=ALERTS, **env).start()
        try:
            assert "Autonomy paused." in _admin(server, "pause change freeze")
            wait_until(lambda: [c for c in slack.calls("chat.postMessage") if c.args["channel"] == ALERTS],
                       what="the announcement")

            # Paused: the server, another process and the sweep all send it to people.
            served = _served(server, sessions)
            asked = _ask(server)
            stale = _stale_ticket(sessions)
            swept = _swept(server, sessions, stale)
            assert (served.action_type, served.autonomous) == (ActionType.ESCALATE, False)
            assert (asked["action"], asked["autonomous"]) == (ActionType.ESCALATE, False)
            assert (swept.action_type, swept.autonomous) == (ActionType.ESCALATE, False)
            assert swept.action_params["suggestion"]["action_type"] == ActionType.AUTO_RESOLVE
            status = _admin(server, "status")
            assert "*Paused*" in status and "change freeze" in status

            # Resumed: each of them acts alone again at its next decision.
            assert "Autonomy resumed." in _admin(server, "resume")
            assert _served(server, sessions).action_type == ActionType.AUTO_RESOLVE
            stale = _stale_ticket(sessions)
            resumed = _swept(server, sessions, stale)
            assert (resumed.action_type, resumed.autonomous) == (ActionType.AUTO_RESOLVE, True)

            # Shadow: recorded, not done.
            assert "shadow mode" in _admin(server, "shadow")
            shadowed = _served(server, sessions)
            assert (shadowed.action_type, shadowed.autonomous) == (ActionType.ESCALATE, False)
            with sessions() as session:
                [shadow] = session.scalars(select(ShadowDecision)).all()
                assert (shadow.action_id, shadow.action_type) == (shadowed.id, ActionType.AUTO_RESOLVE)
                assert session.get(Ticket, shadow.ticket_id).status == TicketStatus.ESCALATED
                changes = session.scalars(select(AuditEvent.detail).where(
                    AuditEvent.event_type == "autonomy_changed").order_by(AuditEvent.id)).all()
            assert [c["mode"] for c in changes] == ["paused", "on", "shadow"]
            stats = shown(server.command("/resolution-stats", "1", user=ADMIN).json())
            assert "Shadow mode: what the bot would have done* (1 tickets)" in stats
        finally:
            server.stop()
    engine.dispose()
