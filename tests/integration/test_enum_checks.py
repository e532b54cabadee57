"""The database refuses a status, action type or alert rule the enums do not name, on
PostgreSQL and SQLite, and the migration that adds those CHECKs loses nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import JSON, CheckConstraint, Engine, column, insert, inspect, select, table, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.platform import migrations
from models import (
    ActionHistory,
    ActionType,
    Actor,
    AlertRule,
    AlertState,
    AutonomyMode,
    AutonomyState,
    Base,
    ExperimentStop,
    MessageKind,
    OutboxPurpose,
    OutboxStatus,
    RequestStatus,
    RollbackRequest,
    ShadowDecision,
    SlackOutbox,
    SlaPriority,
    ThresholdExperiment,
    Ticket,
    TicketMessage,
    TicketResolution,
    TicketSla,
    TicketStatus,
)
from models.session import make_engine
from tests.support.databases import PG_DATABASE, recreate_database
from tests.support.factories import make_action, make_ticket

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
BEFORE_CHECKS = "0003"

# Every CHECK made by models.base.known_values: (table, column, enum).
ENUM_CHECKS = sorted(
    ((table.name, c.info["column"], c.info["enum"])
     for table in Base.metadata.tables.values() for c in table.constraints
     if isinstance(c, CheckConstraint) and "enum" in c.info),
    key=lambda check: check[:2],
)


def _a_row(session: Session, table: str):
    """One valid row of `table`, to change the checked column of."""
    if table == "tickets":
        return make_ticket(session)
    if table == "action_history":
        return make_action(session, now=NOW)
    if table == "alert_state":
        state = AlertState(rule=AlertRule.ROLLBACKS, firing=False, last_message="")
        session.add(state)
        session.flush()
        return state
    if table == "slack_outbox":
        post = SlackOutbox(purpose=OutboxPurpose.NOTICE, channel="C1", text="x",
                           status=OutboxStatus.PENDING, attempts=0, next_attempt_at=NOW,
                           created_at=NOW, last_error="")
        session.add(post)
        session.flush()
        return post
    if table == "rollback_requests":
        action = make_action(session, now=NOW)
        request = RollbackRequest(action_id=action.id, ticket_id=action.ticket_id, requested_by="UADMIN",
                                  reason="", diff={}, created_at=NOW, expires_at=NOW,
                                  status=RequestStatus.PENDING, decision_reason="",
                                  shown_status=RequestStatus.PENDING)
        session.add(request)
        session.flush()
        return request
    if table == "autonomy_state":
        state = AutonomyState(id=1, mode=AutonomyMode.PAUSED, reason="")
        session.add(state)
        session.flush()
        return state
    if table == "shadow_decisions":
        action = make_action(session, now=NOW)
        shadow = ShadowDecision(ticket_id=action.ticket_id, action_id=action.id,
                                action_type=ActionType.AUTO_RESOLVE, decided_at=NOW)
        session.add(shadow)
        session.flush()
        return shadow
    if table == "ticket_messages":
        ticket = make_ticket(session)
        message = TicketMessage(ticket_id=ticket.ticket_id, kind=MessageKind.DETAIL, author_id="U1",
                                text="more", created_at=NOW)
        session.add(message)
        session.flush()
        return message
    if table == "ticket_sla":
        ticket = make_ticket(session)
        sla = TicketSla(ticket_id=ticket.ticket_id, priority=SlaPriority.NORMAL, team="Network",
                        started_at=NOW,
                        response_target_s=3600, resolution_target_s=14400, elapsed_s=0, settled=False,
                        updated_at=NOW)
        session.add(sla)
        session.flush()
        return sla
    if table == "threshold_experiments":
        # Stopped: the cause is set only on a stopped experiment.
        experiment = ThresholdExperiment(arms="0.75,0.85", started_at=NOW, running=None, stopped_at=NOW,
                                         stop_cause=ExperimentStop.ADMIN, stop_reason="")
        session.add(experiment)
        session.flush()
        return experiment
    raise AssertionError(f"add a row factory for {table}: it has an enum CHECK")


@pytest.fixture(params=["postgresql", "sqlite"])
def any_session(request):
    """A session on PostgreSQL or on a new SQLite file, both built by the migrations."""
    if request.param == "postgresql":
        yield request.getfixturevalue("session")
        return
    engine = make_engine(request.getfixturevalue("sqlite_url"))
    with Session(engine, expire_on_commit=False) as session:
        yield session
        session.rollback()
    engine.dispose()


def test_the_checked_columns_are_the_ones_the_issue_names():
    assert [(table, column, enum) for table, column, enum in ENUM_CHECKS] == [
        ("action_history", "action_type", ActionType),
        ("alert_state", "rule", AlertRule),
        ("autonomy_state", "mode", AutonomyMode),
        ("rollback_requests", "shown_status", RequestStatus),
        ("rollback_requests", "status", RequestStatus),
        ("shadow_decisions", "action_type", ActionType),
        ("slack_outbox", "purpose", OutboxPurpose),
        ("slack_outbox", "status", OutboxStatus),
        ("threshold_experiments", "stop_cause", ExperimentStop),
        ("ticket_messages", "kind", MessageKind),
        ("ticket_sla", "priority", SlaPriority),
        ("tickets", "status", TicketStatus),
    ]


@pytest.mark.parametrize(("table", "column", "enum"), ENUM_CHECKS, ids=lambda v: getattr(v, "__name__", v))
def test_every_member_is_accepted_and_anything_else_refused(any_session, table, column, enum):
    session = any_session
    row = _a_row(session, table)
    for member in enum:
        with session.begin_nested():
            setattr(row, column, member)
            session.flush()
    for unknown in ("bogus", str(next(iter(enum))).swapcase(), ""):
        with pytest.raises(IntegrityError, match=f"ck_{table}_{column}_known"):
            with session.begin_nested():
                setattr(row, column, unknown)
                session.flush()


def test_stored_values_are_the_reference_strings_and_read_back_as_members(any_session):
    session = any_session
    action = make_action(session, now=NOW)
    session.expire_all()
    raw = session.execute(text(
        "SELECT t.status, a.action_type, a.executed_by FROM tickets t "
        "JOIN action_history a ON a.ticket_id = t.ticket_id")).one()
    assert tuple(raw) == ("resolved", "AUTO_RESOLVE", "autonomous_agent")
    stored = session.get(ActionHistory, action.id)
    ticket = session.get(Ticket, action.ticket_id)
    assert (ticket.status, stored.action_type, stored.executed_by) == (
        TicketStatus.RESOLVED, ActionType.AUTO_RESOLVE, Actor.AGENT)
    assert TicketStatus(ticket.status) is TicketStatus.RESOLVED
    assert session.scalar(select(Ticket.ticket_id).where(Ticket.status == TicketStatus.RESOLVED)) == (
        ticket.ticket_id)


def test_check_constraints_in_the_database_are_the_models(pg_url, sqlite_url):
    expected = {
        table.name: {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
        for table in Base.metadata.tables.values()
    }
    for url in (pg_url, sqlite_url):
        engine = make_engine(url)
        found = {name: {c["name"] for c in inspect(engine).get_check_constraints(name)}
                 for name in expected}
        engine.dispose()
        assert found == expected, url


# ----- the migration on a database that already holds data --------------------------

TICKET_COLUMNS_AT_0003 = ("user_id", "issue_type", "status", "description", "category",
                          "agent_processed", "awaiting_response_from", "source", "slack_thread_ts")


def _seed(engine: Engine, *, action_type: str = ActionType.AUTO_RESOLVE) -> tuple[uuid.UUID, uuid.UUID]:
    """At revision 0003: a resolved ticket, its action, a rollback of it, the resolution."""
    action_id, rollback_id = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        # The columns tickets had at 0003 (the model's table has later ones, with defaults).
        tickets = table("tickets", *(column(name) for name in TICKET_COLUMNS_AT_0003),
                        column("tags", JSON), column("ticket_id"))
        ticket_id = conn.execute(insert(tickets).values(
            user_id="UREQ", issue_type="vpn", status="resolved", description="vpn",
            category="vpn", tags=[], agent_processed=True, awaiting_response_from="",
            source="dm", slack_thread_ts="").returning(tickets.c.ticket_id)).scalar_one()
        common = {"ticket_id": ticket_id, "action_params": {}, "agent_reasoning": "",
                  "rollback_reason": "", "executed_at": NOW}
        conn.execute(insert(ActionHistory.__table__).values(
            id=action_id, action_type=action_type, executed_by="autonomous_agent", autonomous=True,
            rollback_possible=True, rolled_back=True, **common))
        conn.execute(insert(ActionHistory.__table__).values(
            id=rollback_id, action_type="ROLLBACK", executed_by="UADMIN", autonomous=False,
            rollback_possible=False, rolled_back=False, rollback_of=action_id, **common))
        conn.execute(insert(TicketResolution.__table__).values(
            ticket_id=ticket_id, action_id=action_id, autonomous_action="AUTO_RESOLVE",
            user_feedback_text="", reopened=False, reopened_reason=""))
        conn.execute(insert(AlertState.__table__).values(rule="rollbacks", firing=True,
                                                         last_message=""))
    return action_id, rollback_id


def _links(engine: Engine) -> tuple:
    with engine.connect() as conn:
        return (
            conn.execute(select(TicketResolution.action_id)).scalars().all(),
            sorted(conn.execute(select(ActionHistory.id, ActionHistory.rollback_of)).all(),
                   key=lambda row: row.rollback_of is not None),
            conn.execute(select(AlertState.rule, AlertState.firing)).all(),
        )


def _version(engine: Engine) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


@pytest.fixture(params=["postgresql", "sqlite"])
def url_at_0003(request, tmp_path):
    """An empty database migrated to the revision before the enum CHECKs."""
    if request.param == "postgresql":
        url = recreate_database(f"{PG_DATABASE}_migrations")
    else:
        url = f"sqlite:///{tmp_path / 'upgrade.db'}"
    migrations.upgrade(url, BEFORE_CHECKS)
    return url


def test_upgrade_and_downgrade_keep_every_row_and_link(url_at_0003):
    engine = make_engine(url_at_0003)
    action_id, rollback_id = _seed(engine)
    expected = ([action_id], [(action_id, None), (rollback_id, action_id)],
                [("rollbacks", True)])
    assert _links(engine) == expected
    migrations.upgrade(url_at_0003)
    # Rebuilding action_history on SQLite must not cascade the drop of the old table
    # into ticket_resolution.action_id (SET NULL) or the rollback's link.
    assert _links(engine) == expected
    migrations.downgrade(url_at_0003, BEFORE_CHECKS)
    assert _links(engine) == expected
    assert _version(engine) == BEFORE_CHECKS
    names = {c["name"] for c in inspect(engine).get_check_constraints("action_history")}
    assert names == {"ck_action_history_confidence_0_1"}
    engine.dispose()


def test_upgrade_names_the_rows_it_would_refuse_and_changes_nothing(url_at_0003):
    engine = make_engine(url_at_0003)
    _seed(engine, action_type="MERGE")
    with pytest.raises(RuntimeError, match=r"action_history.action_type holds values the new "
                                           r"CHECK would refuse: 'MERGE' \(1 rows\)"):
        migrations.upgrade(url_at_0003)
    assert _version(engine) == BEFORE_CHECKS
    with engine.connect() as conn:
        assert sorted(conn.execute(select(ActionHistory.action_type)).scalars()) == [
            "MERGE", "ROLLBACK"]
    assert not inspect(engine).get_check_constraints("alert_state")
    engine.dispose()
