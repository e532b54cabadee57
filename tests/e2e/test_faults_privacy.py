"""What people type stays out of the log and Sentry, even when the database fails.

A real `resolvemeq serve` whose database refuses to store a ticket (a CHECK on
PostgreSQL, a trigger on SQLite, added to that server's own database) is sent a ticket
with a password in it. The person is told nothing was saved; the server logs the
failure and Sentry (a fake ingest) gets it; neither shows a word of what was typed,
though the database error is raised at flush time with the statement's parameters in
hand.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from bot.platform import migrations
from bot.sandbox.standin import SlackStandIn
from models import Ticket, make_engine
from tests.support.databases import PG_DATABASE, recreate_database
from tests.support.fake_sentry import FakeSentry
from tests.support.faults import BOT_TOKEN, no_secret_in_any_server_log, start_server
from tests.support.harness import REQUESTER, wait_until

assert no_secret_in_any_server_log  # the session-wide log scan, for these servers too

PASSWORD = "Hunter2-vpn-pw"
TICKET = f"my vpn password is {PASSWORD} and the VPN still says access denied"
# What each backend is told to refuse; the ticket above matches both.
REFUSE = {
    "postgresql": ["ALTER TABLE tickets ADD CONSTRAINT ck_tickets_no_passwords "
                   "CHECK (description NOT LIKE '%password%')"],
    "sqlite": ["CREATE TRIGGER refuse_passwords BEFORE INSERT ON tickets "
               "WHEN NEW.description LIKE '%password%' "
               "BEGIN SELECT RAISE(ABORT, 'tickets with passwords are refused'); END"],
}


@pytest.fixture(params=["postgresql", "sqlite"])
def refusing_database(request, tmp_path) -> str:
    """A database at the head migration whose tickets table refuses the ticket above."""
    if request.param == "postgresql":
        url = recreate_database(f"{PG_DATABASE}_refusing")
    else:
        url = f"sqlite:///{tmp_path / 'refusing.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        for statement in REFUSE[request.param]:
            conn.execute(text(statement))
    yield url
    engine.dispose()


def _logged(event: dict) -> str:
    return str((event.get("logentry") or {}).get("message") or event.get("message") or "")


def test_a_ticket_the_database_refuses_leaves_no_trace_of_its_text(refusing_database):
    with SlackStandIn(token=BOT_TOKEN) as slack, FakeSentry() as sentry:
        server = start_server(database_url=refusing_database, slack=slack, redis_url=None,
                              SENTRY_DSN=sentry.dsn)
        try:
            answer = server.command("/ticket", TICKET)
            assert answer.status_code == 200
            assert "nothing was saved" in answer.json()["text"]
            dm = {"type": "message", "channel_type": "im", "channel": "D0REQUESTER",
                  "user": REQUESTER, "text": TICKET, "ts": "1732528000.000200"}
            assert server.event(dm).status_code == 200
            [told] = slack.wait_for("chat.postEphemeral")
            assert "nothing was saved" in told.args["text"]

            # Both failures reached Sentry, with their tracebacks...
            events = sentry.wait_for(lambda e: "the database failed" in _logged(e), count=2)
            assert all(e["exception"]["values"] for e in events)
            assert {e["tags"]["component"] for e in events} == {"serve"}
            wait_until(lambda: server.text().count("the database failed") >= 2,
                       what="both failures in the server's log")
        finally:
            server.stop()
        # ...and neither they nor the log show what was typed.
        assert PASSWORD not in sentry.text()
        assert PASSWORD not in server.text()
        assert "IntegrityError" in server.text()  # the log still says what failed
    engine = make_engine(refusing_database)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Ticket)).scalar() == 0
    engine.dispose()
