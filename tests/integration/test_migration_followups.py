"""Migration 0005 moves every follow-up into the outbox, and its downgrade moves them back,
on PostgreSQL and on SQLite (the embedded default), losing nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from bot.platform import migrations
from models.base import JSONType, UTCDateTime
from models.session import make_engine
from tests.support.databases import PG_DATABASE, recreate_database

REVISION = "0005"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DUE = T0 + timedelta(hours=24)
CLAIMED_UNTIL = T0 + timedelta(days=30)
SENT_AT = DUE + timedelta(seconds=20)

tickets = sa.table(
    "tickets", sa.column("ticket_id", sa.Integer), sa.column("user_id", sa.String),
    sa.column("issue_type", sa.String), sa.column("description", sa.Text),
    sa.column("status", sa.String), sa.column("category", sa.String), sa.column("tags", JSONType),
    sa.column("agent_processed", sa.Boolean), sa.column("awaiting_response_from", sa.String),
    sa.column("source", sa.String), sa.column("slack_thread_ts", sa.String),
    sa.column("created_at", UTCDateTime()), sa.column("updated_at", UTCDateTime()),
)
actions = sa.table(
    "action_history", sa.column("id", sa.Uuid), sa.column("ticket_id", sa.Integer),
    sa.column("action_type", sa.String), sa.column("action_params", JSONType),
    sa.column("executed_at", UTCDateTime()), sa.column("executed_by", sa.String),
    sa.column("autonomous", sa.Boolean), sa.column("agent_reasoning", sa.Text),
    sa.column("rollback_possible", sa.Boolean), sa.column("rolled_back", sa.Boolean),
    sa.column("rollback_reason", sa.Text), sa.column("before_state", JSONType),
    sa.column("after_state", JSONType),
)
CLAIM_COLUMNS = ("followup_claimed_until", "followup_claim_token", "followup_attempts",
                 "followup_channel", "followup_message_ts", "followup_last_error")
resolutions = sa.table(
    "ticket_resolution", sa.column("id", sa.Integer), sa.column("ticket_id", sa.Integer),
    sa.column("action_id", sa.Uuid), sa.column("autonomous_action", sa.String),
    sa.column("resolution_confirmed", sa.Boolean), sa.column("user_feedback_text", sa.Text),
    sa.column("reopened", sa.Boolean), sa.column("reopened_reason", sa.Text),
    sa.column("followup_due_at", UTCDateTime()), sa.column("followup_sent_at", UTCDateTime()),
    sa.column("response_received_at", UTCDateTime()), sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
    sa.column("followup_claimed_until", UTCDateTime()), sa.column("followup_claim_token", sa.String),
    sa.column("followup_attempts", sa.Integer), sa.column("followup_channel", sa.String),
    sa.column("followup_message_ts", sa.String), sa.column("followup_last_error", sa.Text),
)
outbox = sa.table(
    "slack_outbox", sa.column("id", sa.Integer), sa.column("ticket_id", sa.Integer),
    sa.column("resolution_id", sa.Integer), sa.column("purpose", sa.String),
    sa.column("channel", sa.String), sa.column("recipient", sa.String), sa.column("text", sa.Text),
    sa.column("status", sa.String), sa.column("attempts", sa.Integer),
    sa.column("next_attempt_at", UTCDateTime()), sa.column("claimed_until", UTCDateTime()),
    sa.column("claim_token", sa.String), sa.column("sent_at", UTCDateTime()),
    sa.column("sent_channel", sa.String), sa.column("message_ts", sa.String),
    sa.column("last_error", sa.Text), sa.column("created_at", UTCDateTime()),
)

# Each resolution's follow-up as the old schema kept it, and what must become of it.
CASES = {
    "owed": dict(followup_due_at=DUE),
    "in flight": dict(followup_due_at=DUE, followup_attempts=2, followup_claimed_until=CLAIMED_UNTIL,
                      followup_claim_token="a" * 32, followup_last_error="chat.postMessage: http_503"),
    "sent": dict(followup_due_at=DUE, followup_sent_at=SENT_AT, followup_attempts=1,
                 followup_channel="DREQ3", followup_message_ts="1764000000.000100"),
    "given up": dict(followup_due_at=None, followup_attempts=1,
                     followup_last_error="cannot open a DM with the requester"),
    "answered": dict(followup_due_at=DUE, resolution_confirmed=True,
                     response_received_at=T0 + timedelta(hours=1)),
    "rolled back": dict(followup_due_at=None),
}


def _before() -> str:
    script = ScriptDirectory.from_config(migrations.alembic_config("sqlite://"))
    return script.get_revision(REVISION).down_revision


def _seed(engine) -> None:
    with engine.begin() as conn:
        for n, (name, fields) in enumerate(CASES.items(), start=1):
            action_id = uuid.uuid4()
            conn.execute(tickets.insert().values(
                ticket_id=n, user_id=f"UREQ{n}", issue_type="VPN", description="VPN drops",
                status="resolved", category="vpn", tags=[], agent_processed=True, awaiting_response_from="",
                source="slash_command", slack_thread_ts="", created_at=T0, updated_at=T0))
            conn.execute(actions.insert().values(
                id=action_id, ticket_id=n, action_type="AUTO_RESOLVE", action_params={},
                executed_at=T0, executed_by="autonomous_agent", autonomous=True,
                agent_reasoning="kb", rollback_possible=True, rolled_back=name == "rolled back",
                rollback_reason="", before_state={}, after_state={}))
            conn.execute(resolutions.insert().values(**{
                "id": n, "ticket_id": n, "action_id": action_id, "autonomous_action": "AUTO_RESOLVE",
                "user_feedback_text": "", "reopened": False, "reopened_reason": "",
                "created_at": T0, "updated_at": T0, "followup_attempts": 0, "followup_last_error": "",
                **fields}))
        # A post already in the outbox stays as it is, both ways.
        conn.execute(outbox.insert().values(
            id=100, ticket_id=1, purpose="ticket_outcome", channel="CHELP", text="the answer",
            status="sent", attempts=1, next_attempt_at=T0, sent_at=T0, sent_channel="CHELP",
            message_ts="1.1", last_error="", created_at=T0))


def _rows(engine, table, key) -> dict:
    with engine.connect() as conn:
        return {row[key]: row for row in conn.execute(sa.select(table)).mappings()}


def _check_upgraded(engine) -> None:
    columns = {c["name"] for c in sa.inspect(engine).get_columns("ticket_resolution")}
    assert not columns & set(CLAIM_COLUMNS)
    rows = _rows(engine, outbox, "id")
    post = rows.pop(100)
    assert (post["purpose"], post["status"], post["channel"]) == ("ticket_outcome", "sent", "CHELP")
    by_case = {list(CASES)[row["resolution_id"] - 1]: row for row in rows.values()}
    assert set(by_case) == {"owed", "in flight", "sent", "given up"}
    for row in by_case.values():
        n = row["resolution_id"]
        assert (row["purpose"], row["recipient"], row["channel"], row["ticket_id"]) == (
            "followup", f"UREQ{n}", None, n)
    owed, flight, sent, gave_up = (by_case[k] for k in ("owed", "in flight", "sent", "given up"))
    assert (owed["status"], owed["next_attempt_at"], owed["attempts"], owed["claimed_until"]) == (
        "pending", DUE, 0, None)
    # An attempt in progress keeps its count (the next one reconciles first) and claim.
    assert (flight["status"], flight["attempts"], flight["claimed_until"], flight["claim_token"],
            flight["last_error"]) == ("pending", 2, CLAIMED_UNTIL, "a" * 32, "chat.postMessage: http_503")
    assert (sent["status"], sent["sent_at"], sent["sent_channel"], sent["message_ts"]) == (
        "sent", SENT_AT, "DREQ3", "1764000000.000100")
    assert (gave_up["status"], gave_up["last_error"]) == (
        "failed", "cannot open a DM with the requester")


def _check_downgraded(engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(sa.select(outbox.c.id)).scalars().all() == [100]
    by_case = {list(CASES)[n - 1]: row for n, row in _rows(engine, resolutions, "id").items()}
    for name, fields in CASES.items():
        expected = {"followup_attempts": 0, "followup_last_error": "", "followup_claimed_until": None,
                    "followup_claim_token": None, "followup_channel": None,
                    "followup_message_ts": None, "followup_sent_at": None, **fields}
        assert {k: by_case[name][k] for k in expected} == expected, name


@pytest.fixture(params=["postgresql", "sqlite"])
def fresh_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrate.db'}"
    return recreate_database(f"{PG_DATABASE}_mig_followups")


def test_followups_move_into_the_outbox_and_back(fresh_url):
    migrations.upgrade(fresh_url, _before())
    engine = make_engine(fresh_url)
    try:
        _seed(engine)
        migrations.upgrade(fresh_url, REVISION)
        _check_upgraded(engine)
        migrations.downgrade(fresh_url, _before())
        _check_downgraded(engine)
        # And up again: the same rows as the first time.
        migrations.upgrade(fresh_url, REVISION)
        _check_upgraded(engine)
    finally:
        engine.dispose()


def test_a_post_with_nowhere_to_go_is_refused(sqlite_url, pg_url):
    # Status and purpose are checked with the other enums (test_enum_checks.py).
    for url in (sqlite_url, pg_url):
        engine = make_engine(url)
        try:
            with pytest.raises(sa.exc.IntegrityError, match="ck_slack_outbox_destination"), \
                    engine.begin() as conn:
                conn.execute(outbox.insert().values(
                    purpose="notice", channel=None, recipient=None, text="x", status="pending",
                    attempts=0, next_attempt_at=T0, last_error="", created_at=T0))
        finally:
            engine.dispose()
