"""Rollback: admins only, throttled, restores exactly, refuses over someone's later work."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.core.errors import (
    AlreadyRolledBack,
    Ambiguous,
    InvalidInput,
    LimiterUnavailable,
    NotAuthorized,
    NotFound,
    RollbackConflict,
    RollbackNotPossible,
    Throttled,
)
from bot.domain import actions, audit, snapshots
from bot.domain.feedback import record_answer
from bot.domain.ratelimit import RollbackThrottle, make_storage
from bot.domain.rollback import find_action, preview_rollback, rollback_action
from models import (
    AGENT_ACTIONS,
    ActionHistory,
    ActionType,
    AuditEvent,
    Awaiting,
    EscalationPriority,
    Ticket,
    TicketResolution,
    TicketStatus,
    make_engine,
    make_session_factory,
    short_id,
    transaction,
)
from tests.support.factories import make_action, make_plan, make_ticket
from tests.support.interleave import all_read_first

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


@pytest.fixture()
def throttle(settings) -> RollbackThrottle:
    return RollbackThrottle(settings, make_storage(None))


def _throttle(settings, limit: str, storage=None, namespace: str = "resolvemeq"):
    return RollbackThrottle(
        settings.model_copy(update={"rollback_rate_limit": limit}),
        storage or make_storage(None),
        namespace=namespace,
    )


def _rollback(session, ref, throttle, **kwargs):
    kwargs.setdefault("admin_id", "UADMIN")
    kwargs.setdefault("is_admin", True)
    kwargs.setdefault("reason", "wrong answer")
    kwargs.setdefault("now", LATER)
    return rollback_action(session, ref=ref, throttle=throttle, **kwargs)


def _count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def _audits(session, event_type):
    return session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type)).all()


def _row_with_id(session, ticket, hex_id: str,
                 action_type: ActionType = ActionType.ESCALATE) -> ActionHistory:
    state = snapshots.snapshot(ticket)
    row = ActionHistory(
        id=uuid.UUID(hex_id), ticket_id=ticket.ticket_id, action_type=action_type,
        executed_at=NOW, rollback_possible=True, before_state=state, after_state=state,
    )
    session.add(row)
    session.flush()
    return row


# --- finding an action by id or prefix ---------------------------------------------


def test_find_by_full_id_short_prefix_hyphens_and_case(session):
    action = make_action(session, now=NOW)
    text = str(action.id)
    for ref in (text, action.id.hex, text.upper(), text[:8], text[:4], text[:13],
                text[:13].upper(), f"  {text[:8]}  ", action.id.hex[:20]):
        assert find_action(session, ref).id == action.id, ref


def test_find_ambiguous_prefix_lists_matches_with_ticket_and_type(session):
    ticket = make_ticket(session)
    _row_with_id(session, ticket, "abcd1234-0000-4000-8000-000000000001", ActionType.ESCALATE)
    _row_with_id(session, ticket, "abcd5678-0000-4000-8000-000000000002", ActionType.ASSIGN_TO_TEAM)
    _row_with_id(session, ticket, "abce0000-0000-4000-8000-000000000003")
    with pytest.raises(Ambiguous) as caught:
        find_action(session, "ABCD")
    assert sorted(caught.value.matches) == ["abcd1234", "abcd5678"]
    message = caught.value.message
    assert f"abcd1234 (ticket #{ticket.ticket_id}, ESCALATE)" in message
    assert f"abcd5678 (ticket #{ticket.ticket_id}, ASSIGN_TO_TEAM)" in message
    assert "Give more characters" in message
    # One more character, or a hyphenated longer prefix, settles it.
    assert find_action(session, "abcd1").id.hex.startswith("abcd1234")
    assert find_action(session, "abcd5678-0000").id.hex.startswith("abcd5678")


def test_find_ambiguous_listing_is_capped(session):
    ticket = make_ticket(session)
    for n in range(12):
        _row_with_id(session, ticket, f"beef{n:04x}-0000-4000-8000-{n:012x}")
    with pytest.raises(Ambiguous) as caught:
        find_action(session, "beef")
    assert len(caught.value.matches) == 10
    assert "and more" in caught.value.message


# Ids at the edges of the range a prefix spans, and neighbours that must not match.
_EDGE_IDS = [
    "00000000-0000-4000-8000-000000000000", "0000ffff-ffff-4fff-bfff-ffffffffffff",
    "00010000-0000-4000-8000-000000000000", "7fffffff-ffff-4fff-bfff-ffffffffffff",
    "80000000-0000-4000-8000-000000000000", "a1b2c3d4-0000-4000-8000-000000000000",
    "a1b2c3d4-ffff-4fff-bfff-ffffffffffff", "a1b2c3d5-0000-4000-8000-000000000000",
    "a1b2c3d3-ffff-4fff-bfff-ffffffffffff", "ffffffff-ffff-4fff-bfff-ffffffffffff",
]


def _matches(session, prefix: str) -> set[str]:
    try:
        return {find_action(session, prefix).id.hex}
    except NotFound:
        return set()
    except Ambiguous as ambiguous:
        return {m for m in _EDGE_HEX if m.startswith(tuple(ambiguous.matches))}


_EDGE_HEX = [uuid.UUID(i).hex for i in _EDGE_IDS]
_PREFIXES = ["0000", "00000", "0000f", "0001", "7fff", "8000", "ffff", "a1b2", "a1b2c3d4",
             "a1b2c3d4f", "a1b2c3d40000", "a1b2c3d3", "a1b2c3d5", "1234",
             *(h[:n] for h in _EDGE_HEX for n in (5, 9, 17, 31))]


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_prefix_finds_exactly_the_ids_that_start_with_it(session, sqlite_url, backend):
    # The prefix is looked up as an id range, not as text: the edges of the range
    # must behave like "starts with" on both backends.
    engine = make_engine(sqlite_url) if backend == "sqlite" else None
    db = make_session_factory(engine)() if engine else session
    try:
        ticket = make_ticket(db)
        for hex_id in _EDGE_IDS:
            _row_with_id(db, ticket, hex_id)
        for prefix in _PREFIXES:
            expected = {h for h in _EDGE_HEX if h.startswith(prefix)}
            assert _matches(db, prefix) == expected, prefix
    finally:
        if engine:
            db.close()
            engine.dispose()


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("abc", "too short"),
        ("a-b-c", "too short"),
        ("", "is not an action id"),
        ("   ", "is not an action id"),
        ("xyz1", "is not an action id"),
        ("abcd%", "is not an action id"),
        ("abcd_", "is not an action id"),
        ("0" * 33, "is not an action id"),
        ("'; drop table tickets; --", "is not an action id"),
        (None, "Give an action id"),
        (1234, "Give an action id"),
    ],
)
def test_find_rejects_bad_references(session, ref, expected):
    with pytest.raises(InvalidInput, match=expected):
        find_action(session, ref)


def test_find_unknown_prefix_and_unknown_full_id(session):
    make_action(session, now=NOW)
    with pytest.raises(NotFound, match="No action id starts with 00000000"):
        find_action(session, "00000000")
    missing = uuid.UUID("00000000-0000-4000-8000-000000000000")
    with pytest.raises(NotFound, match="No action has the id 00000000000040008000000000000000"):
        find_action(session, str(missing))


# --- rolling back ----------------------------------------------------------------


@pytest.mark.parametrize("action_type", AGENT_ACTIONS)
def test_rollback_restores_before_state_for_every_type(session, throttle, action_type):
    ticket = make_ticket(session, status=TicketStatus.OPEN, assigned_team="Desk")
    before = snapshots.snapshot(ticket)
    action = make_action(session, ticket=ticket, action_type=action_type, now=NOW)
    assert snapshots.snapshot(ticket) != before

    result = _rollback(session, short_id(action.id), throttle, reason="  agent misread it  ")

    session.expire_all()
    reloaded = session.get(Ticket, ticket.ticket_id)
    assert snapshots.snapshot(reloaded) == before
    assert reloaded.updated_at == LATER
    original = session.get(ActionHistory, action.id)
    assert original.rolled_back is True
    assert original.rolled_back_at == LATER
    assert original.rolled_back_by == "UADMIN"
    assert original.rollback_reason == "agent misread it"
    assert result.action.id == action.id and result.ticket.ticket_id == ticket.ticket_id
    assert result.restored == {
        name: (action.after_state[name], before[name])
        for name in snapshots.SNAPSHOT_FIELDS if action.after_state[name] != before[name]
    }


def test_rollback_writes_a_rollback_row(session, throttle):
    action = make_action(session, action_type=ActionType.ESCALATE, now=NOW)
    result = _rollback(session, str(action.id), throttle, admin_id="UADMIN", reason="not urgent")
    session.expire_all()
    row = session.get(ActionHistory, result.rollback.id)
    assert row.action_type == ActionType.ROLLBACK
    assert row.ticket_id == action.ticket_id
    assert row.executed_by == "UADMIN"
    assert row.executed_at == LATER
    assert row.autonomous is False
    assert row.rollback_possible is False
    assert row.rolled_back is False
    assert row.rollback_of == action.id
    assert row.action_params == {"rolled_back_action_id": str(action.id), "reason": "not urgent"}
    assert row.before_state == action.after_state
    assert row.after_state == action.before_state


def test_auto_resolve_rollback_clears_the_follow_up_and_keeps_the_resolution(session, throttle):
    action = make_action(session, action_type=ActionType.AUTO_RESOLVE, now=NOW)
    _rollback(session, short_id(action.id), throttle)
    session.expire_all()
    resolution = session.scalars(select(TicketResolution)).one()
    assert resolution.action_id == action.id
    assert resolution.followup_due_at is None
    assert resolution.autonomous_action == ActionType.AUTO_RESOLVE
    assert resolution.created_at == NOW


def test_other_rollbacks_leave_other_follow_ups_alone(session, throttle):
    resolved = make_action(session, action_type=ActionType.AUTO_RESOLVE, now=NOW)
    escalated = make_action(session, action_type=ActionType.ESCALATE, now=NOW)
    _rollback(session, short_id(escalated.id), throttle)
    resolution = session.scalars(select(TicketResolution)).one()
    assert resolution.action_id == resolved.id
    assert resolution.followup_due_at == NOW + timedelta(hours=24)


def test_not_admin_is_denied_and_audited(session, throttle):
    action = make_action(session, now=NOW)
    with pytest.raises(NotAuthorized, match="Only helpdesk admins can roll back") as caught:
        _rollback(session, short_id(action.id), throttle, admin_id="UNOBODY", is_admin=False)
    assert caught.value.keep_writes is True
    event = _audits(session, audit.ROLLBACK_DENIED)[0]
    assert event.actor_id == "UNOBODY"
    assert event.action_id == action.id and event.ticket_id == action.ticket_id
    assert event.detail == {"ref": short_id(action.id), "stage": "rollback"}
    assert session.get(ActionHistory, action.id).rolled_back is False
    assert throttle.retry_at("UNOBODY") is None


def test_denial_with_a_bad_reference_is_still_audited(session, throttle):
    with pytest.raises(NotAuthorized):
        _rollback(session, "zz", throttle, admin_id="UNOBODY", is_admin=False)
    event = _audits(session, audit.ROLLBACK_DENIED)[0]
    assert event.action_id is None and event.detail["ref"] == "zz"


def test_denial_audit_survives_the_failed_transaction(committing_factory, settings):
    throttle = RollbackThrottle(settings, make_storage(None))
    with transaction(committing_factory) as session:
        action_id = make_action(session, now=NOW).id
    with pytest.raises(NotAuthorized), transaction(committing_factory) as session:
        _rollback(session, str(action_id), throttle, admin_id="UNOBODY", is_admin=False)
    with transaction(committing_factory) as session:
        events = _audits(session, audit.ROLLBACK_DENIED)
        assert [(e.actor_id, e.action_id) for e in events] == [("UNOBODY", action_id)]
        assert session.get(ActionHistory, action_id).rolled_back is False
        assert _count(session, ActionHistory, ActionHistory.action_type == ActionType.ROLLBACK) == 0


def test_already_rolled_back_says_by_whom_and_when(session, throttle):
    action = make_action(session, now=NOW)
    _rollback(session, short_id(action.id), throttle, admin_id="UADMIN")
    with pytest.raises(AlreadyRolledBack) as caught:
        _rollback(session, short_id(action.id), throttle, admin_id="UOTHER")
    assert caught.value.message == (
        f"Action {short_id(action.id)} was already rolled back by <@UADMIN> "
        "at 2026-11-25 10:00 UTC."
    )
    assert _count(session, ActionHistory, ActionHistory.action_type == ActionType.ROLLBACK) == 1


def test_a_rollback_row_cannot_be_rolled_back(session, throttle):
    action = make_action(session, now=NOW)
    result = _rollback(session, short_id(action.id), throttle)
    with pytest.raises(RollbackNotPossible, match="is a ROLLBACK record"):
        _rollback(session, str(result.rollback.id), throttle)


@pytest.mark.parametrize("record_type", [ActionType.REOPEN, ActionType.CONFIRM])
def test_records_of_people_cannot_be_rolled_back(session, throttle, record_type):
    ticket = make_ticket(session)
    row = _row_with_id(session, ticket, uuid.uuid4().hex, record_type)
    with pytest.raises(RollbackNotPossible, match=f"is a {record_type} record"):
        _rollback(session, str(row.id), throttle)


def test_action_marked_not_undoable_is_refused(session, throttle):
    action = make_action(session, now=NOW)
    action.rollback_possible = False
    session.flush()
    with pytest.raises(RollbackNotPossible, match="recorded without what it takes to undo it"):
        _rollback(session, str(action.id), throttle)


def test_action_with_a_corrupt_snapshot_is_refused(session, throttle):
    action = make_action(session, now=NOW)
    action.before_state = {"status": TicketStatus.NEW}
    session.flush()
    with pytest.raises(RollbackNotPossible):
        _rollback(session, str(action.id), throttle)
    assert session.get(Ticket, action.ticket_id).status == TicketStatus.RESOLVED


def test_conflict_names_the_fields_and_changes_nothing(session, settings):
    throttle = _throttle(settings, "1/hour")
    action = make_action(session, action_type=ActionType.ESCALATE, now=NOW)
    ticket = session.get(Ticket, action.ticket_id)
    ticket.status = TicketStatus.OPEN
    ticket.assigned_team = "Desk"
    session.flush()

    with pytest.raises(RollbackConflict) as caught:
        _rollback(session, short_id(action.id), throttle)
    message = caught.value.message
    assert "status is now 'open' (the action left 'escalated')" in message
    assert "assigned_team is now 'Desk' (the action left 'Network')" in message
    assert "Nothing was changed" in message
    assert caught.value.differences == {
        "status": (TicketStatus.ESCALATED, TicketStatus.OPEN),
        "assigned_team": ("Network", "Desk"),
    }
    session.expire_all()
    assert session.get(Ticket, ticket.ticket_id).status == TicketStatus.OPEN
    assert session.get(ActionHistory, action.id).rolled_back is False
    assert _count(session, ActionHistory, ActionHistory.action_type == ActionType.ROLLBACK) == 0
    # A refused rollback does not use up the admin's budget.
    assert throttle.retry_at("UADMIN") is None


@pytest.mark.parametrize("reason", ["x" * 501, " " + "y" * 501])
def test_reason_too_long(session, throttle, reason):
    action = make_action(session, now=NOW)
    with pytest.raises(InvalidInput, match="keep it to 500"):
        _rollback(session, short_id(action.id), throttle, reason=reason)
    assert session.get(ActionHistory, action.id).rolled_back is False


def test_reason_of_500_and_empty_reason_are_fine(session, throttle):
    first = make_action(session, now=NOW)
    second = make_action(session, now=NOW)
    _rollback(session, str(first.id), throttle, reason="r" * 500)
    _rollback(session, str(second.id), throttle, reason="")
    assert session.get(ActionHistory, first.id).rollback_reason == "r" * 500
    assert session.get(ActionHistory, second.id).rollback_reason == ""


def test_reason_must_be_text(session, throttle):
    action = make_action(session, now=NOW)
    with pytest.raises(InvalidInput, match="reason must be text"):
        _rollback(session, str(action.id), throttle, reason=None)


@pytest.mark.parametrize("ref", ["", "abc", "nothex!", None])
def test_rollback_rejects_bad_references(session, throttle, ref):
    with pytest.raises(InvalidInput):
        _rollback(session, ref, throttle)


def test_rollback_of_unknown_action(session, throttle):
    with pytest.raises(NotFound, match="No action has the id"):
        _rollback(session, uuid.uuid4().hex, throttle)


def test_is_admin_must_be_a_real_true(session, throttle):
    action = make_action(session, now=NOW)
    with pytest.raises(NotAuthorized):
        _rollback(session, str(action.id), throttle, is_admin="yes")


# --- preview -------------------------------------------------------------------


def test_preview_shows_the_diff_and_changes_nothing(session, settings):
    throttle = _throttle(settings, "1/hour")
    action = make_action(session, action_type=ActionType.ESCALATE, now=NOW, status=TicketStatus.OPEN)
    preview = preview_rollback(session, ref=short_id(action.id), admin_id="UADMIN",
                               is_admin=True, throttle=throttle, now=LATER)
    assert preview.action_id == action.id
    assert preview.short_id == action.id.hex[:8]
    assert preview.ticket_id == action.ticket_id
    assert preview.action_type == ActionType.ESCALATE
    assert preview.executed_at == NOW
    assert preview.confidence == pytest.approx(0.9)
    assert preview.reasoning == "Matched KB article 'vpn'"
    assert preview.changes == {
        "status": (TicketStatus.ESCALATED, TicketStatus.OPEN),
        "assigned_team": ("Network", None),
        "awaiting_response_from": (Awaiting.SUPPORT, Awaiting.NOBODY),
        "escalated_at": (NOW.isoformat(), None),
        "escalation_priority": (EscalationPriority.HIGH, None),
    }
    # Previews are free: the one rollback this admin has left still goes through.
    preview_rollback(session, ref=short_id(action.id), admin_id="UADMIN", is_admin=True,
                     throttle=throttle)
    assert session.get(ActionHistory, action.id).rolled_back is False
    assert session.get(Ticket, action.ticket_id).status == TicketStatus.ESCALATED
    _rollback(session, short_id(action.id), throttle)


def test_preview_runs_the_same_checks(session, settings):
    throttle = _throttle(settings, "1/hour")
    action = make_action(session, now=NOW)
    with pytest.raises(NotAuthorized):
        preview_rollback(session, ref=str(action.id), admin_id="UX", is_admin=False)
    assert _audits(session, audit.ROLLBACK_DENIED)[0].detail["stage"] == "preview"
    with pytest.raises(InvalidInput):
        preview_rollback(session, ref="no", admin_id="UADMIN", is_admin=True)
    ticket = session.get(Ticket, action.ticket_id)
    ticket.status = TicketStatus.OPEN
    session.flush()
    with pytest.raises(RollbackConflict, match="status is now 'open'"):
        preview_rollback(session, ref=str(action.id), admin_id="UADMIN", is_admin=True)
    ticket.status = TicketStatus.RESOLVED
    session.flush()
    _rollback(session, str(action.id), throttle)
    with pytest.raises(AlreadyRolledBack):
        preview_rollback(session, ref=str(action.id), admin_id="UADMIN", is_admin=True)
    other = make_action(session, now=NOW)
    with pytest.raises(Throttled):
        preview_rollback(session, ref=str(other.id), admin_id="UADMIN", is_admin=True,
                         throttle=throttle)
    assert _audits(session, audit.ROLLBACK_THROTTLED)[0].detail["stage"] == "preview"


# --- the throttle ----------------------------------------------------------------


def test_eleventh_rollback_in_an_hour_is_throttled_until_the_window_moves(
    session, settings, redis_url, namespace
):
    throttle = _throttle(settings, "10/hour", make_storage(redis_url), namespace)
    start = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        ids = [make_action(session, now=start).id for _ in range(12)]
        for action_id in ids[:10]:
            _rollback(session, str(action_id), throttle, now=None)
            traveller.shift(timedelta(minutes=5))
        # 09:50: the first of the ten (09:00) leaves the window at 10:00.
        with pytest.raises(Throttled) as caught:
            _rollback(session, str(ids[10]), throttle, now=None)
        assert caught.value.retry_at == start + timedelta(hours=1)
        assert caught.value.message == (
            "You have reached the rollback limit (10 per 1 hour). "
            "Try again in 10 minutes (at 10:00 UTC)."
        )
        assert caught.value.keep_writes is True
        event = _audits(session, audit.ROLLBACK_THROTTLED)[0]
        assert event.actor_id == "UADMIN" and event.action_id == ids[10]
        assert session.get(ActionHistory, ids[10]).rolled_back is False
        # Another admin has a budget of their own.
        _rollback(session, str(ids[11]), throttle, admin_id="UOTHER", now=None)

        traveller.move_to(start + timedelta(hours=1, seconds=1))
        assert throttle.retry_at("UADMIN") is None
        _rollback(session, str(ids[10]), throttle, now=None)
        assert session.get(ActionHistory, ids[10]).rolled_back is True


def test_throttle_message_with_hours_and_another_day(session, settings):
    throttle = _throttle(settings, "1/day")
    start = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        first, second = make_action(session, now=start), make_action(session, now=start)
        _rollback(session, str(first.id), throttle, now=None)
        with pytest.raises(Throttled) as caught:
            _rollback(session, str(second.id), throttle, now=start + timedelta(minutes=30))
    assert caught.value.message.endswith(
        "Try again in 23 hours 30 minutes (at 2026-11-26 20:00 UTC)."
    )


def test_throttle_denial_audit_survives_the_transaction(committing_factory, settings):
    throttle = _throttle(settings, "1/hour")
    with transaction(committing_factory) as session:
        first = make_action(session, now=NOW).id
        second = make_action(session, now=NOW).id
    with transaction(committing_factory) as session:
        _rollback(session, str(first), throttle, now=None)
    with pytest.raises(Throttled), transaction(committing_factory) as session:
        _rollback(session, str(second), throttle, now=None)
    with transaction(committing_factory) as session:
        assert [e.action_id for e in _audits(session, audit.ROLLBACK_THROTTLED)] == [second]
        assert session.get(ActionHistory, second).rolled_back is False


def test_unreachable_redis_fails_closed_and_changes_nothing(committing_factory, settings):
    throttle = _throttle(settings, "10/hour", make_storage("redis://127.0.0.1:1/0"))
    with transaction(committing_factory) as session:
        action = make_action(session, now=NOW)
        action_id, before = action.id, snapshots.snapshot(session.get(Ticket, action.ticket_id))
    with pytest.raises(LimiterUnavailable, match="rate-limit store cannot be reached"):
        with transaction(committing_factory) as session:
            _rollback(session, str(action_id), throttle)
    with pytest.raises(LimiterUnavailable):
        with transaction(committing_factory) as session:
            preview_rollback(session, ref=str(action_id), admin_id="UADMIN", is_admin=True,
                             throttle=throttle)
    with transaction(committing_factory) as session:
        stored = session.get(ActionHistory, action_id)
        assert stored.rolled_back is False
        assert snapshots.snapshot(session.get(Ticket, stored.ticket_id)) == before
        assert _count(session, ActionHistory, ActionHistory.action_type == ActionType.ROLLBACK) == 0
        assert _count(session, AuditEvent) == 0


# --- concurrency and backends ------------------------------------------------------


def test_two_concurrent_rollbacks_one_wins(racing_factory, settings):
    # A double-clicked Confirm: both read "not rolled back" before either writes, unless
    # the database makes the second wait (a row lock; SQLite's write lock at BEGIN).
    throttle = RollbackThrottle(settings, make_storage(None))
    with transaction(racing_factory) as session:
        action_id = make_action(session, action_type=ActionType.ESCALATE, now=NOW).id
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(admin_id: str) -> None:
        try:
            with transaction(racing_factory) as session:
                barrier.wait(timeout=10)
                _rollback(session, short_id(action_id), throttle, admin_id=admin_id)
            outcome = "ok"
        except AlreadyRolledBack:
            outcome = "already"
        except Exception as error:  # anything else is a failure the assert shows
            outcome = repr(error)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=attempt, args=(a,)) for a in ("UADMIN", "UADMIN2")]
    with all_read_first(racing_factory.kw["bind"], r"FROM action_history"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert sorted(outcomes) == ["already", "ok"]
    with transaction(racing_factory) as session:
        assert _count(session, ActionHistory, ActionHistory.action_type == ActionType.ROLLBACK) == 1
        stored = session.get(ActionHistory, action_id)
        assert stored.rolled_back is True
        assert session.get(Ticket, stored.ticket_id).status == TicketStatus.NEW


def test_a_rollback_racing_the_requesters_no_never_overwrites_the_reopen(racing_factory, settings):
    # Either the No lands first (the rollback then conflicts: the ticket moved on), or the
    # rollback does (the No is then refused: the answer was withdrawn). Never both.
    throttle = RollbackThrottle(settings, make_storage(None))
    with transaction(racing_factory) as session:
        action = make_action(session, user_id="UREQ", now=NOW)
        action_id, ticket_id = action.id, action.ticket_id
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def rollback() -> None:
        try:
            with transaction(racing_factory) as session:
                barrier.wait(timeout=10)
                _rollback(session, str(action_id), throttle)
            outcomes["rollback"] = "ok"
        except RollbackConflict:
            outcomes["rollback"] = "conflict"
        except Exception as error:
            outcomes["rollback"] = repr(error)

    def answer_no() -> None:
        try:
            with transaction(racing_factory) as session:
                barrier.wait(timeout=10)
                record_answer(session, ticket_id=ticket_id, user_id="UREQ", solved=False,
                              default_team="Service Desk", now=LATER)
            outcomes["no"] = "ok"
        except InvalidInput:
            outcomes["no"] = "withdrawn"
        except Exception as error:
            outcomes["no"] = repr(error)

    threads = [threading.Thread(target=rollback), threading.Thread(target=answer_no)]
    with all_read_first(racing_factory.kw["bind"], r"FROM tickets"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert outcomes in ({"rollback": "conflict", "no": "ok"}, {"rollback": "ok", "no": "withdrawn"})
    with transaction(racing_factory) as session:
        ticket = session.get(Ticket, ticket_id)
        rolled_back = session.get(ActionHistory, action_id).rolled_back
        if outcomes["no"] == "ok":
            assert (ticket.status, rolled_back) == (TicketStatus.OPEN, False)
        else:
            assert (ticket.status, rolled_back) == (TicketStatus.NEW, True)


def test_rollback_on_sqlite(sqlite_url, settings):
    engine = make_engine(sqlite_url)
    factory = make_session_factory(engine)
    throttle = RollbackThrottle(settings, make_storage(None))
    try:
        with transaction(factory) as session:
            action = make_action(session, action_type=ActionType.AUTO_RESOLVE, now=NOW)
            action_id, before = action.id, action.before_state
        with transaction(factory) as session:
            _rollback(session, action_id.hex[:6].upper(), throttle)
        with transaction(factory) as session:
            stored = session.get(ActionHistory, action_id)
            assert stored.rolled_back is True and stored.rolled_back_by == "UADMIN"
            assert snapshots.snapshot(session.get(Ticket, stored.ticket_id)) == before
            assert session.scalars(select(TicketResolution)).one().followup_due_at is None
            assert _count(session, ActionHistory, ActionHistory.action_type == ActionType.ROLLBACK) == 1
            with pytest.raises(AlreadyRolledBack):
                _rollback(session, str(action_id), throttle)
    finally:
        engine.dispose()


# --- property: execute then rollback is the identity on the snapshot ---------------

_instants = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31),
                 timezones=st.just(UTC)),
)
_teams = st.one_of(st.none(), st.sampled_from(["Desk", "Network", "Security", "HR"]))


@hsettings(max_examples=50, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    action_type=st.sampled_from(AGENT_ACTIONS),
    status=st.sampled_from(TicketStatus),
    team=_teams,
    priority=st.one_of(st.none(), st.sampled_from(["low", "medium", "high", "critical"])),
    awaiting=st.sampled_from(Awaiting),
    escalated_at=_instants,
    resolved_at=_instants,
    action_team=st.sampled_from(["Desk", "Network", "Security"]),
)
def test_execute_then_rollback_restores_any_prior_state(
    session, settings, action_type, status, team, priority, awaiting, escalated_at,
    resolved_at, action_team,
):
    throttle = RollbackThrottle(settings, make_storage(None))
    savepoint = session.begin_nested()
    try:
        ticket = make_ticket(session, status=status, assigned_team=team)
        ticket.escalation_priority = priority
        ticket.awaiting_response_from = awaiting
        ticket.escalated_at = escalated_at
        ticket.resolved_at = resolved_at
        session.flush()
        plan = make_plan(action_type, team=action_team)
        action = actions.execute(session, ticket, plan, now=NOW,
                                 followup_delay=timedelta(hours=24))
        _rollback(session, str(action.id), throttle)
        session.expire_all()
        assert snapshots.snapshot(session.get(Ticket, ticket.ticket_id)) == action.before_state
    finally:
        savepoint.rollback()
