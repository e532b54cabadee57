"""The audit chain on PostgreSQL and SQLite: every action and audit row is chained as the
app writes it, and `audit verify` names the first row changed, removed or inserted."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError

from bot.core.errors import NotRequester
from bot.domain import actions, audit, audit_chain, retention
from bot.domain.audit_chain import ACTIONS, EVENTS, RowRef
from bot.domain.audit_verify import Anchor
from bot.domain.feedback import record_answer, record_rating
from bot.domain.ratelimit import RollbackThrottle, make_storage
from bot.domain.rollback import rollback_action
from models import (
    ActionHistory,
    ActionType,
    AuditChainEntry,
    AuditEvent,
    PersonResolution,
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


# ----- a refused click: the chain's head reserved in the click's first round trip -----

def _refused(factory, ticket_id: int, *, user_id: str = "USTRANGER", score: int | None = None,
             now=NOW) -> None:
    """Someone other than the requester clicks Yes (or stars) on the bot's answer."""
    with pytest.raises(NotRequester), transaction(factory) as session:
        if score is None:
            record_answer(session, ticket_id=ticket_id, user_id=user_id, solved=True,
                          default_team="IT Support", now=now)
        else:
            record_rating(session, ticket_id=ticket_id, user_id=user_id, score=score, now=now)


def _refusals(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(AuditEvent.__table__).where(
            AuditEvent.event_type == audit.FEEDBACK_WRONG_USER).order_by(AuditEvent.id)).all()


def test_a_strangers_refusal_is_chained_with_its_row_signed_and_verifies(engine):
    factory = chained_factory(engine, key=KEY)
    resolved, escalated, _ = _history(factory)
    _refused(factory, resolved.ticket_id, now=NOW + timedelta(minutes=7, microseconds=123_456))
    _refused(factory, resolved.ticket_id, score=2)
    with transaction(factory) as session:  # a decision after them chains after them
        actions.execute(session, make_ticket(session, description="printer jam"),
                        make_plan(ActionType.ESCALATE), now=NOW, followup_delay=timedelta(hours=24))

    first, second = _refusals(engine)
    assert (first.actor_id, first.ticket_id, first.action_id, first.detail) == (
        "USTRANGER", resolved.ticket_id, resolved.id, {"kind": "answer", "solved": True})
    assert first.occurred_at == NOW + timedelta(minutes=7, microseconds=123_456)
    assert second.detail == {"kind": "rating", "score": 2}
    entries = _entries(engine)
    assert [e.event_id for e in entries[-3:-1]] == [first.id, second.id]
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    # The entries were hashed from the values the app gave; verify hashes what the
    # database holds: equal, so the row is as it was written.
    report = verify(engine, key=KEY)
    assert report.ok and report.signatures_checked, report.problems
    sql(engine, "UPDATE audit_events SET actor_id = 'UOTHER' WHERE id = :id", id=first.id)
    assert [(p.kind, p.row) for p in verify(engine, key=KEY).problems] == [
        ("changed", RowRef(EVENTS, first.id))]


def test_a_refusal_whose_request_then_fails_leaves_neither_row_nor_entry(engine):
    factory = chained_factory(engine)
    resolved, _, _ = _history(factory)
    before = _entries(engine)
    with pytest.raises(RuntimeError), transaction(factory) as session:
        with pytest.raises(NotRequester):
            record_answer(session, ticket_id=resolved.ticket_id, user_id="USTRANGER", solved=False,
                          default_team="IT Support", now=NOW)
        raise RuntimeError("the request failed after the refusal")
    assert _entries(engine) == before and _refusals(engine) == []
    _refused(factory, resolved.ticket_id)  # the next one takes the place it held
    assert [e.seq for e in _entries(engine)] == list(range(1, len(before) + 2))
    assert verify(engine).ok


@pytest.mark.parametrize("detail", [{"kind": "answer", "solved": True, "n": 3},
                                    {"score": 1e20, "ratio": 0.5}])
def test_a_reserved_audit_row_verifies_whatever_its_detail(engine, detail):
    # A detail the database would not give back as it was given (JSONB turns 1e20
    # into an integer) is inserted at once and hashed as read back, under the lock
    # the reservation holds; a plain one is inserted with its entry at the commit.
    factory = chained_factory(engine)
    resolved, _, _ = _history(factory)
    rows = select(Ticket).where(Ticket.ticket_id == bindparam("ticket_id")).with_for_update()
    reserving = audit_chain.reserving(rows, Ticket.user_id != bindparam("clicker"))
    with transaction(factory) as session:
        reserve = audit_chain.may_reserve(session)
        assert reserve == (engine.dialect.name == "postgresql")
        row = session.execute(reserving if reserve else rows,
                              {"ticket_id": resolved.ticket_id, "clicker": "USTRANGER"}).one()
        reservation = audit_chain.taken(session, row) if reserve else None
        audit.record(session, audit.FEEDBACK_WRONG_USER, actor_id="USTRANGER",
                     ticket_id=resolved.ticket_id, detail=detail, now=NOW, reservation=reservation)
    [refusal] = _refusals(engine)
    assert refusal.detail == detail
    report = verify(engine)
    assert report.ok, report.problems


def test_strangers_clicks_racing_decisions_and_answers_neither_fork_nor_deadlock(engine):
    # A stranger's click takes the chain's lock in its first round trip, right after
    # its row locks, and takes no row lock after it; everyone else takes their row
    # locks first and the chain's lock at the commit. Requesters answer the same
    # tickets the strangers click (the same row locks); decisions run beside them.
    factory = chained_factory(engine, key=KEY)
    with transaction(factory) as session:
        answered = []
        for n in range(10):
            ticket = make_ticket(session, description=f"vpn {n}", user_id="UREQ")
            actions.execute(session, ticket, make_plan(ActionType.AUTO_RESOLVE), now=NOW,
                            followup_delay=timedelta(hours=24))
            answered.append(ticket.ticket_id)
        fresh = [make_ticket(session, description=f"printer {n}").ticket_id for n in range(10)]

    def stranger(ticket_id: int, score: int | None) -> None:
        _refused(factory, ticket_id, user_id=f"USTRANGER{score}", score=score)

    def requester(ticket_id: int) -> None:  # a No: the ticket reopens (an action row)
        with transaction(factory) as session:
            record_answer(session, ticket_id=ticket_id, user_id="UREQ", solved=False,
                          default_team="IT Support", now=NOW)

    def decide(ticket_id: int) -> None:
        with transaction(factory) as session:
            actions.execute(session, session.get(Ticket, ticket_id), make_plan(ActionType.ESCALATE),
                            now=NOW, followup_delay=timedelta(hours=24))
            audit.record(session, audit.AUTONOMY_CAP_REACHED, actor_id=None, ticket_id=ticket_id,
                         now=NOW)

    jobs = ([(stranger, (t, None)) for t in answered] + [(stranger, (t, 4)) for t in answered]
            + [(requester, (t,)) for t in answered] + [(decide, (t,)) for t in fresh])
    random.Random(13).shuffle(jobs)
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def work(mine) -> None:
        start.wait()
        for job, args in mine:
            try:
                job(*args)
            except BaseException as error:  # noqa: B036 - reported below
                failures.append(error)

    threads = [threading.Thread(target=work, args=(jobs[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures  # no deadlock, no lock timeout, no second entry at a seq
    assert len(_refusals(engine)) == 20
    entries = _entries(engine)
    # 10 resolutions, 10 reopens, 20 refusals, 10 escalations and their 10 events.
    assert [e.seq for e in entries] == list(range(1, 61))
    assert len({e.prev_hash for e in entries}) == 60  # no two entries follow the same one
    report = verify(engine, key=KEY)
    assert report.ok and report.signatures_checked, report.problems


def test_a_strangers_refusal_on_a_helpdesk_persons_resolution_is_chained_and_verifies(engine):
    factory = chained_factory(engine, key=KEY)
    resolved, _, _ = _history(factory)
    with transaction(factory) as session:
        person = PersonResolution(ticket_id=resolved.ticket_id, resolved_by="UMEMBER", team="Network")
        session.add(person)
        session.flush()
        person_id = person.id
    with pytest.raises(NotRequester), transaction(factory) as session:
        record_rating(session, ticket_id=resolved.ticket_id, user_id="USTRANGER", score=3,
                      person_resolution_id=person_id, now=NOW)
    [refusal] = _refusals(engine)
    assert refusal.detail == {"kind": "rating", "score": 3, "person_resolution_id": person_id}
    assert _entries(engine)[-1].event_id == refusal.id
    report = verify(engine, key=KEY)
    assert report.ok and report.signatures_checked, report.problems
