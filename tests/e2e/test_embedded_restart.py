"""The embedded default killed mid-decision, restarted, and swept by cron too: as a user
running `resolvemeq serve` on SQLite would (issue 15, point 2).

`serve` on a SQLite file with a slow agent takes 30 tickets and is killed (SIGKILL)
while they wait on the agent. It is started again, and `resolvemeq jobs run-once` runs
once from cron as the README suggests, beside the restarted server's own scheduler.
Two sweepers, two processes, one file: every ticket must be decided once and each
answer posted once. (SQLite ignores FOR UPDATE, and both sweepers decided and posted
every ticket twice.) The same run on PostgreSQL, without Redis, is the reference.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter

import pytest
from sqlalchemy import func, select

from bot.sandbox.standin import SlackStandIn
from models import (
    AGENT_ACTIONS,
    ActionHistory,
    OutboxPurpose,
    SlackOutbox,
    Ticket,
    TicketStatus,
    make_engine,
    make_session_factory,
)
from tests.support.databases import clean_e2e
from tests.support.fake_agent import running_fake_agent, slow
from tests.support.harness import ROOT, VPN, Server, wait_until

TICKETS = 30


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, sqlite_url):
    if request.param == "sqlite":
        yield sqlite_url
        return
    url, engine = request.getfixturevalue("e2e_db_url"), request.getfixturevalue("e2e_engine")
    yield url
    clean_e2e(engine)


def test_killed_restarted_and_swept_by_cron_decides_and_posts_each_ticket_once(database_url):
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with SlackStandIn() as slack, running_fake_agent() as agent:
        agent.answer(then=slow(3))
        # No Redis: the embedded mode, jobs on the server's own thread every second;
        # short grace and claims, so the restart's sweep does not wait a minute.
        env = {"AGENT_URL": agent.url, "AGENT_TIMEOUT": "10", "AGENT_RETRIES": "0",
               "JOB_INTERVAL": "1s", "SWEEP_GRACE": "1s", "CLAIM_TTL": "5s"}
        first = Server(database_url=database_url, slack=slack, redis_url=None, **env).start()
        try:
            for n in range(TICKETS):
                assert first.command("/ticket", f"{VPN} (#{n})").status_code == 200
            wait_until(lambda: agent.count >= 8, timeout=20, what="decisions waiting on the agent")
        finally:
            os.killpg(first.process.pid, signal.SIGKILL)
            first.process.wait()
            first.http.close()
        assert _undecided(sessions) == TICKETS

        agent.answer(then=slow(1))
        second = Server(database_url=database_url, slack=slack, redis_url=None, **env).start()
        try:
            cron = subprocess.run([sys.executable, "-m", "bot.platform.cli", "jobs", "run-once"],
                                  cwd=ROOT, env=second.env, capture_output=True, timeout=240)
            assert cron.returncode == 0, cron.stderr.decode(errors="replace")
            assert "sweep_new_tickets" in json.loads(cron.stdout)
            wait_until(lambda: _undecided(sessions) == 0, timeout=120, interval=0.5,
                       what="every ticket decided")
            wait_until(lambda: _unsent(sessions) == 0, timeout=30, what="every answer sent")
        finally:
            second.stop()

        with sessions() as session:
            decided = Counter(session.scalars(
                select(ActionHistory.ticket_id).where(ActionHistory.action_type.in_(AGENT_ACTIONS))))
            owed = Counter(session.scalars(select(SlackOutbox.ticket_id).where(
                SlackOutbox.purpose == OutboxPurpose.TICKET_OUTCOME)))
            rows = dict(session.execute(select(SlackOutbox.id, SlackOutbox.ticket_id).where(
                SlackOutbox.purpose == OutboxPurpose.TICKET_OUTCOME)).all())
        posted = Counter(rows[c.args["metadata"]["event_payload"]["outbox_id"]]
                         for c in slack.calls("chat.postMessage")
                         if c.outcome == "ok" and (c.args.get("metadata") or {}).get(
                             "event_payload", {}).get("outbox_id") in rows)
    engine.dispose()
    assert len(decided) == TICKETS and set(decided.values()) == {1}, decided
    assert len(owed) == TICKETS and set(owed.values()) == {1}, owed
    assert len(posted) == TICKETS and set(posted.values()) == {1}, posted


def _undecided(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Ticket).where(
            Ticket.status == TicketStatus.NEW))


def _unsent(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(SlackOutbox).where(
            SlackOutbox.purpose == OutboxPurpose.TICKET_OUTCOME, SlackOutbox.status == "pending"))
