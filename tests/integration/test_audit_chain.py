"""The audit chain on PostgreSQL and SQLite: every action and audit row is chained as the
app writes it, and `audit verify` names the first row changed, removed or inserted."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.domain import actions, audit, audit_chain, retention
from bot.domain.audit_chain import ACTIONS, EVENTS, RowRef
from bot.domain.audit_verify import Anchor
from bot.domain.ratelimit import RollbackThrottle, make_storage
from bot.domain.rollback import rollback_action
from models import (
    ActionHistory,
    ActionType,
    AuditChainEntry,
    AuditEvent,
    Ticket,
    make_engine,
    transaction,
)
from tests.support.chain import chained_factory, db_id, rewrite_chain_from, sql, verify
from tests.support.factories import make_plan, make_ticket

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
KEY = b"k" * 32


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request, sqlite_url):
    """A database at head on each backend; the PostgreSQL one is emptied after."""
    if request.param == "sqlite":
        engine = make_engine(sqlite_url)
        yield engine
        engine.dispose()
        return
    pg_engine = request.getfixturevalue("pg_engine")
    request.getfixturevalue("committing_factory")  # empties the tables after the test
    yield pg_engine


def _history(factory, *, now=NOW):
    """A small history written by the services: two decisions, a denial, a rollback."""
    with transaction(factory) as session:
        ticket = make_ticket(session, description="VPN drops every hour", created_at=now)
        resolved = actions.execute(session, ticket, make_plan(ActionType.AUTO_RESOLVE), now=now,
                                   followup_delay=timedelta(hours=24))
        other = make_ticket(session, description="printer jam", created_at=now)
        escalated = actions.execute(session, other, make_plan(ActionType.ESCALATE), now=now,
                                    followup_delay=timedelta(hours=24))
        audit.record(session, audit.ROLLBACK_DENIED, actor_id="USTRANGER", ticket_id=ticket.ticket_id,
                     action_id=resolved.id, detail={"ref": resolved.id.hex[:8], "stage": "preview"},
                     now=now)
    throttle = RollbackThrottle(_settings(), make_storage(None))
    with transaction(factory) as session:
        undone = rollback_action(session, ref=escalated.id.hex, admin_id="UADMIN", is_admin=True,
                                 reason="wrong team", throttle=throttle, now=now + timedelta(minutes=5))
    return resolved, escalated, undone.rollback


def _settings():
    from bot.core.settings import load_settings

    return load_settings(database_url="sqlite://")


def _entries(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(AuditChainEntry.__table__).order_by(AuditChainEntry.seq)).all()


def test_every_row_the_app_writes_is_chained_and_verifies(engine):
    factory = chained_factory(engine)
    resolved, escalated, rollback = _history(factory)
    entries = _entries(engine)
    with engine.connect() as conn:
        rows = (conn.scalar(select(func.count()).select_from(ActionHistory))
                + conn.scalar(select(func.count()).select_from(AuditEvent)))
    assert [e.seq for e in entries] == list(range(1, rows + 1))
    assert entries[0].action_id == resolved.id and entries[-1].action_id == rollback.id
    assert all(e.prev_hash == before.hash for before, e in zip(entries, entries[1:], strict=False))
    report = verify(engine)
    assert report.ok, report.problems
    assert (report.entries, report.head.seq) == (rows, rows)


def test_a_changed_row_is_named(engine):
    factory = chained_factory(engine)
    resolved, _, _ = _history(factory)
    sql(engine, "UPDATE action_history SET executed_by = 'UEVIL' WHERE id = :id",
        id=db_id(engine, resolved.id))
    report = verify(engine)
    assert not report.ok and report.problem_count == 1
    first = report.problems[0]
    assert (first.kind, first.row, first.seq) == ("changed", RowRef(ACTIONS, resolved.id), 1)
    assert str(resolved.id) in first.message and "was changed" in first.message


def test_changed_free_text_is_named(engine):
    factory = chained_factory(engine)
    _, escalated, _ = _history(factory)
    sql(engine, "UPDATE action_history SET agent_reasoning = 'the admin said so' WHERE id = :id",
        id=db_id(engine, escalated.id))
    report = verify(engine)
    assert [p.row for p in report.problems] == [RowRef(ACTIONS, escalated.id)]
    assert "free text" in report.problems[0].message


def test_a_removed_row_is_named(engine):
    factory = chained_factory(engine)
    _history(factory)
    with engine.connect() as conn:
        event_id = conn.scalar(select(AuditEvent.id))
    sql(engine, "DELETE FROM audit_events WHERE id = :id", id=event_id)
    report = verify(engine)
    assert [(p.kind, p.row) for p in report.problems] == [("removed", RowRef(EVENTS, event_id))]
    assert f"audit_events row {event_id}" in report.problems[0].message


def test_an_inserted_row_is_named(engine):
    factory = chained_factory(engine)
    _history(factory)
    sql(engine, "INSERT INTO audit_events (occurred_at, event_type, actor_id, detail) "
        "VALUES (CURRENT_TIMESTAMP, 'rollback_denied', 'UFORGED', '{}')")
    with engine.connect() as conn:
        forged = conn.scalar(select(AuditEvent.id).where(AuditEvent.actor_id == "UFORGED"))
    report = verify(engine)
    assert [(p.kind, p.row) for p in report.problems] == [("inserted", RowRef(EVENTS, forged))]
    assert "inserted outside the app" in report.problems[0].message


def test_a_row_removed_with_its_entry_breaks_the_sequence(engine):
    factory = chained_factory(engine)
    _history(factory)
    with engine.connect() as conn:
        event_id = conn.scalar(select(AuditEvent.id))
        seq = conn.scalar(select(AuditChainEntry.seq).where(AuditChainEntry.event_id == event_id))
    sql(engine, "DELETE FROM audit_chain WHERE seq = :seq", seq=seq)
    sql(engine, "DELETE FROM audit_events WHERE id = :id", id=event_id)
    report = verify(engine)
    assert report.problems[0].kind == "chain" and report.problems[0].seq == seq
    assert f"Entry #{seq} is missing" in report.problems[0].message


def test_a_rollbacks_later_columns_keep_the_chain_valid_and_are_checked(engine):
    factory = chained_factory(engine)
    _, escalated, rollback = _history(factory)
    with engine.connect() as conn:
        undone = conn.execute(select(ActionHistory.__table__).where(ActionHistory.id == escalated.id)).one()
    assert undone.rolled_back and undone.rolled_back_by == "UADMIN"  # filled in after chaining
    assert verify(engine).ok
    sql(engine, "UPDATE action_history SET rolled_back_by = 'UOTHER' WHERE id = :id",
        id=db_id(engine, escalated.id))
    report = verify(engine)
    assert [(p.kind, p.row) for p in report.problems] == [("rollback", RowRef(ACTIONS, escalated.id))]
    assert "rolled_back_by differ" in report.problems[0].message
    assert str(rollback.id) in report.problems[0].message
    sql(engine, "UPDATE action_history SET rolled_back_by = 'UADMIN', rolled_back = :no WHERE id = :id",
        id=db_id(engine, escalated.id), no=False)
    report = verify(engine)
    assert "says it was not rolled back" in report.problems[0].message


def test_signatures_catch_a_chain_rewritten_without_the_key(engine):
    factory = chained_factory(engine, key=KEY)
    resolved, _, _ = _history(factory)
    assert all(e.signature for e in _entries(engine))
    assert verify(engine, key=KEY).signatures_checked and verify(engine, key=KEY).ok
    rewrite_chain_from(engine, changed=resolved)
    unkeyed = verify(engine)  # hashes alone: the rewrite is self-consistent
    assert unkeyed.ok
    report = verify(engine, key=KEY)
    assert report.problems[0].kind == "signature" and report.problems[0].seq == 1
    assert verify(engine, key=b"x" * 32).problems[0].kind == "signature"


def test_anchors_catch_a_chain_rewritten_whole(engine):
    factory = chained_factory(engine)
    resolved, _, _ = _history(factory)
    with engine.connect() as conn:
        head = audit_chain.head(conn)
    posted = Anchor(head.seq, head.hash, posted_at=NOW)
    assert verify(engine, anchors=[posted]).ok
    rewrite_chain_from(engine, changed=resolved)
    assert verify(engine).ok
    report = verify(engine, anchors=[posted])
    assert [p.kind for p in report.problems] == ["anchor"]
    assert f"entry #{head.seq}" in report.problems[0].message and "rewritten" in report.problems[0].message
    # Cut short (the newest entries and rows deleted): the anchor names a missing entry.
    report = verify(engine, anchors=[Anchor(head.seq + 5, head.hash)])
    assert "cut short" in report.problems[0].message


def test_concurrent_writers_never_fork_the_chain(engine):
    factory = chained_factory(engine)
    with transaction(factory) as session:
        ids = [make_ticket(session, description=f"ticket {n}").ticket_id for n in range(48)]
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def decide(mine: list[int]) -> None:
        start.wait()
        for ticket_id in mine:
            try:
                with transaction(factory) as session:
                    ticket = session.get(actions.Ticket, ticket_id)
                    actions.execute(session, ticket, make_plan(ActionType.ESCALATE), now=NOW,
                                    followup_delay=timedelta(hours=24))
                    audit.record(session, audit.AUTONOMY_CAP_REACHED, actor_id=None,
                                 ticket_id=ticket_id, now=NOW)
            except BaseException as error:  # noqa: B036 - reported below
                failures.append(error)

    threads = [threading.Thread(target=decide, args=(ids[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures
    entries = _entries(engine)
    assert [e.seq for e in entries] == list(range(1, 97))
    assert len({e.prev_hash for e in entries}) == 96  # no two entries follow the same one
    assert verify(engine).ok


def test_redaction_keeps_the_chain_valid_and_text_put_back_shows(engine):
    factory = chained_factory(engine)
    resolved, escalated, rollback = _history(factory, now=NOW - timedelta(days=100))
    with transaction(factory) as session:
        laptop = make_ticket(session, description="new laptop please", created_at=NOW)
        fresh = actions.execute(session, laptop, make_plan(ActionType.ASSIGN_TO_TEAM), now=NOW,
                                followup_delay=timedelta(hours=24))
    with transaction(factory) as session:
        counts = retention.redact(session, cutoff=NOW - timedelta(days=90), now=NOW)
    assert counts["action_history"] == 3 and counts["audit_events"] == 1 and counts["tickets"] == 2
    with engine.connect() as conn:
        texts = dict(conn.execute(select(ActionHistory.id, ActionHistory.agent_reasoning)).all())
        undone = conn.execute(select(ActionHistory.rollback_reason, ActionHistory.action_params)
                              .where(ActionHistory.id == escalated.id)).one()
        requests = conn.scalars(select(Ticket.description).order_by(Ticket.ticket_id)).all()
    assert texts[resolved.id] == texts[rollback.id] == "" and texts[fresh.id]
    assert undone.rollback_reason == "" and "steps" not in undone.action_params
    assert undone.action_params["team"] == "Network"  # structure stays for reports
    assert requests == [retention.REDACTED, retention.REDACTED, "new laptop please"]
    report = verify(engine, retention=timedelta(days=90))
    assert report.ok, report.problems
    assert report.redacted == 4 and report.entries == 6  # and the text_redacted event itself
    with transaction(factory) as session:
        again = retention.redact(session, cutoff=NOW - timedelta(days=90), now=NOW)
    assert not any(again.values())
    sql(engine, "UPDATE action_history SET agent_reasoning = 'made up later' WHERE id = :id",
        id=db_id(engine, resolved.id))
    report = verify(engine)
    assert [(p.kind, p.row) for p in report.problems] == [("changed", RowRef(ACTIONS, resolved.id))]
    assert "redacted but holds free text again" in report.problems[0].message


def test_a_ticket_cannot_be_deleted_from_under_its_history(engine):
    factory = chained_factory(engine)
    resolved, _, _ = _history(factory)
    with pytest.raises(IntegrityError):
        sql(engine, "DELETE FROM tickets WHERE ticket_id = :id", id=resolved.ticket_id)
    assert verify(engine).ok


def test_concurrent_decisions_of_the_real_runtime_never_fork_the_chain(engine, monkeypatch):
    import os

    from bot.core.settings import Settings, load_settings
    from bot.domain import intake
    from bot.workflows.runtime import Runtime

    for name in list(os.environ):
        if name.lower() in Settings.model_fields:
            monkeypatch.delenv(name)
    url = engine.url.render_as_string(hide_password=False)
    runtime = Runtime.from_settings(load_settings(database_url=url, max_autonomous_actions_per_minute=1000,
                                                  max_autonomous_actions_per_hour=1000))
    texts = ("my vpn keeps dropping", "forgot my password", "my laptop was stolen", "printer jam")
    with transaction(runtime.sessions) as session:
        ids = [intake.open_ticket(session, user_id=f"U{n}", text=texts[n % 4], source="cli")
               .ticket.ticket_id for n in range(40)]
    failures: list[BaseException] = []

    def decide(mine: list[int]) -> None:
        for ticket_id in mine:
            try:
                runtime.process(ticket_id)
            except BaseException as error:  # noqa: B036 - reported below
                failures.append(error)

    threads = [threading.Thread(target=decide, args=(ids[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    runtime.engine.dispose()
    assert not failures
    report = verify(engine)
    assert report.ok, report.problems
    assert report.entries == 40 and [e.seq for e in _entries(engine)] == list(range(1, 41))
