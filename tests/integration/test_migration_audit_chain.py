"""Migration 0012 (the audit chain) on a database that already holds history, on
PostgreSQL and SQLite: the rows written before it are chained so `audit verify` passes,
tickets can no longer be deleted from under their history, and going down undoes it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from bot.platform import migrations
from models import ActionHistory, AuditChainEntry, AuditEvent, Ticket
from models.session import make_engine
from tests.support.chain import verify
from tests.support.databases import PG_DATABASE, recreate_database

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
BEFORE = "0011"  # the revision 0012 follows


@pytest.fixture(params=["postgresql", "sqlite"])
def engine_at_0010(request, tmp_path):
    if request.param == "postgresql":
        url = recreate_database(f"{PG_DATABASE}_migrations")
    else:
        url = f"sqlite:///{tmp_path / 'chain.db'}"
    migrations.upgrade(url, BEFORE)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _seed(engine) -> list[uuid.UUID]:
    """Two tickets, three actions and two audit events, naming only columns 0010 has."""
    actions, events, tickets = (ActionHistory.__table__, AuditEvent.__table__, Ticket.__table__)
    state = {"status": "escalated", "assigned_team": "Network", "awaiting_response_from": "support",
             "escalated_at": None, "escalation_priority": "high", "resolved_at": None}
    ids = []
    with engine.begin() as conn:
        for n in range(2):
            ticket_id = conn.execute(tickets.insert().values(
                user_id="UREQ", issue_type="vpn", status="escalated", description=f"vpn {n}",
                category="vpn", tags=[], agent_processed=True, awaiting_response_from="support",
                source="dm", slack_thread_ts="", created_at=NOW, updated_at=NOW,
            ).returning(tickets.c.ticket_id)).scalar_one()
            for minutes in range(2 - n):
                ids.append(uuid.uuid4())
                conn.execute(actions.insert().values(
                    id=ids[-1], ticket_id=ticket_id, action_type="ESCALATE",
                    action_params={"team": "Network", "reason": "agent down", "steps": ["a"]},
                    executed_at=NOW + timedelta(minutes=2 * minutes + n), executed_by="system",
                    autonomous=False, confidence_score=0.4, agent_reasoning=f"why {n}",
                    rollback_possible=True, rolled_back=False, rollback_reason="",
                    before_state={**state, "status": "new"}, after_state=state))
            conn.execute(events.insert().values(
                occurred_at=NOW + timedelta(minutes=n), event_type="rollback_denied",
                actor_id="USTRANGER", ticket_id=ticket_id, detail={"ref": "abcd", "stage": "preview"}))
    return ids


def test_upgrade_chains_the_history_already_there(engine_at_0010):
    engine = engine_at_0010
    ids = _seed(engine)
    migrations.upgrade(str(engine.url.render_as_string(hide_password=False)))
    with engine.connect() as conn:
        entries = conn.execute(select(AuditChainEntry.__table__).order_by(AuditChainEntry.seq)).all()
    # In time order, actions before the events of the same instant.
    assert [(e.action_id, e.event_id is not None) for e in entries] == [
        (ids[0], False), (None, True), (ids[2], False), (None, True), (ids[1], False)]
    assert all(e.signature is None for e in entries)
    report = verify(engine)
    assert report.ok, report.problems
    assert report.entries == 5


def test_a_ticket_with_history_cannot_be_deleted_after_the_upgrade_and_the_downgrade_undoes_it(
        engine_at_0010):
    engine = engine_at_0010
    _seed(engine)
    url = str(engine.url.render_as_string(hide_password=False))
    migrations.upgrade(url)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("DELETE FROM tickets"))
    migrations.downgrade(url, BEFORE)
    assert "audit_chain" not in inspect(engine).get_table_names()
    with engine.begin() as conn:  # the cascade is back, as 0010 had it
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.execute(text("DELETE FROM tickets"))
        assert conn.scalar(text("SELECT count(*) FROM action_history")) == 0
    migrations.upgrade(url)
    assert verify(engine).ok
