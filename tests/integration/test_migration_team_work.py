"""Migration 0010 (teams working in Slack) on a database that already holds data, on
PostgreSQL and SQLite: nothing is lost going up, and going down refuses to drop
people's actions silently."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, inspect, text

from bot.platform import migrations
from models import ActionHistory, SlackOutbox, Ticket, TicketResolution
from models.session import make_engine
from tests.support.databases import PG_DATABASE, recreate_database

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
BEFORE = "0007"  # the revision 0010 follows


@pytest.fixture(params=["postgresql", "sqlite"])
def url_at_0005(request, tmp_path):
    if request.param == "postgresql":
        url = recreate_database(f"{PG_DATABASE}_migrations")
    else:
        url = f"sqlite:///{tmp_path / 'team_work.db'}"
    migrations.upgrade(url, BEFORE)
    return url


def _seed(engine) -> uuid.UUID:
    """At 0005: a resolved ticket, its action, its resolution and the follow-up owed.

    Written through the models' tables, naming only columns 0005 has.
    """
    action_id = uuid.uuid4()
    tables = {model.__tablename__: model.__table__
              for model in (Ticket, ActionHistory, TicketResolution, SlackOutbox)}
    with engine.begin() as conn:
        ticket_id = conn.execute(tables["tickets"].insert().values(
            user_id="UREQ", issue_type="vpn", status="resolved", description="vpn", category="vpn",
            tags=[], agent_processed=True, awaiting_response_from="", source="dm", slack_thread_ts="",
            assigned_team="Network", created_at=NOW, updated_at=NOW,
        ).returning(tables["tickets"].c.ticket_id)).scalar_one()
        state = {"status": "resolved", "assigned_team": "Network", "awaiting_response_from": "",
                 "escalated_at": None, "escalation_priority": None, "resolved_at": NOW.isoformat()}
        conn.execute(tables["action_history"].insert().values(
            id=action_id, ticket_id=ticket_id, action_type="AUTO_RESOLVE", action_params={},
            executed_at=NOW, executed_by="autonomous_agent", autonomous=True, agent_reasoning="",
            rollback_possible=True, rolled_back=False, rollback_reason="",
            before_state={**state, "status": "new"}, after_state=state))
        resolution_id = conn.execute(tables["ticket_resolution"].insert().values(
            ticket_id=ticket_id, action_id=action_id, autonomous_action="AUTO_RESOLVE",
            user_feedback_text="", reopened=False, reopened_reason="", created_at=NOW, updated_at=NOW,
        ).returning(tables["ticket_resolution"].c.id)).scalar_one()
        conn.execute(tables["slack_outbox"].insert().values(
            ticket_id=ticket_id, resolution_id=resolution_id, purpose="followup", recipient="UREQ",
            text="", status="pending", attempts=0, next_attempt_at=NOW, created_at=NOW, last_error=""))
    return action_id


def _rows(engine) -> tuple:
    with engine.connect() as conn:
        return (
            conn.execute(text("SELECT ticket_id, status, assigned_team FROM tickets")).all(),
            conn.execute(text("SELECT action_type FROM action_history")).scalars().all(),
            conn.execute(text("SELECT ticket_id, autonomous_action FROM ticket_resolution")).all(),
            conn.execute(text("SELECT purpose, status, resolution_id FROM slack_outbox")).all(),
        )


def _version(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def test_upgrade_keeps_every_row_and_the_old_snapshots_and_downgrade_refuses_peoples_actions(url_at_0005):
    engine = make_engine(url_at_0005)
    _seed(engine)
    before = _rows(engine)

    migrations.upgrade(url_at_0005, "0010")

    assert _rows(engine) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT assigned_to FROM tickets")).scalar_one() is None
    assert "person_resolution" in inspect(engine).get_table_names()

    # A person's take, as the new code writes it: the old CHECK would refuse it.
    with engine.begin() as conn:
        ticket_id = conn.execute(text("SELECT ticket_id FROM tickets")).scalar_one()
        conn.execute(insert(ActionHistory.__table__).values(
            ticket_id=ticket_id, action_type="TAKE", action_params={}, executed_at=NOW,
            executed_by="UMEMBER", autonomous=False, agent_reasoning="", rollback_possible=True,
            rolled_back=False, rollback_reason=""))
    with pytest.raises(RuntimeError, match=r"people's actions the old CHECK would refuse: 'TAKE' \(1 rows\)"):
        migrations.downgrade(url_at_0005, BEFORE)
    assert _version(engine) == "0010"

    with engine.begin() as conn:
        conn.execute(text("DELETE FROM action_history WHERE action_type = 'TAKE'"))
    migrations.downgrade(url_at_0005, BEFORE)
    assert _version(engine) == BEFORE
    assert _rows(engine) == before
    assert "person_resolution" not in inspect(engine).get_table_names()
    assert "assigned_to" not in {c["name"] for c in inspect(engine).get_columns("tickets")}
    engine.dispose()
