"""The requester's Yes/No and stars: only theirs count, No reopens, repeats write nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.core.errors import InvalidInput, NotFound, NotRequester, RollbackConflict
from bot.domain import actions, audit, snapshots
from bot.domain.actions import PlannedAction
from bot.domain.feedback import REOPENED_REASON, record_answer, record_rating
from bot.domain.ratelimit import RollbackThrottle, make_storage
from bot.domain.rollback import rollback_action
from models import (
    ActionHistory,
    ActionType,
    AuditEvent,
    Awaiting,
    Ticket,
    TicketResolution,
    TicketStatus,
    transaction,
)
from tests.support.factories import make_action, make_ticket

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
T1 = NOW + timedelta(hours=1)
T2 = NOW + timedelta(hours=2)
T3 = NOW + timedelta(hours=3)
DEFAULT_TEAM = "IT Support"


def _resolve(session, *, team: str | None = "Network", user_id: str = "UREQ") -> Ticket:
    """A ticket auto-resolved by the bot, owned by `team` when one is given."""
    ticket = make_ticket(session, user_id=user_id)
    params = {"steps": ["Reconnect"], **({"team": team} if team else {})}
    plan = PlannedAction(action_type=ActionType.AUTO_RESOLVE, confidence=0.9, reasoning="kb", params=params)
    actions.execute(session, ticket, plan, now=NOW, followup_delay=timedelta(hours=24))
    return ticket


def _answer(session, ticket_id, solved, *, user_id="UREQ", now=T1):
    return record_answer(session, ticket_id=ticket_id, user_id=user_id, solved=solved,
                         default_team=DEFAULT_TEAM, now=now)


def _rate(session, ticket_id, score, *, user_id="UREQ", now=T1):
    return record_rating(session, ticket_id=ticket_id, user_id=user_id, score=score, now=now)


def _rows(session, action_type):
    return session.scalars(
        select(ActionHistory).where(ActionHistory.action_type == action_type)
        .order_by(ActionHistory.executed_at)
    ).all()


def _audits(session, event_type=None):
    query = select(AuditEvent).order_by(AuditEvent.id)
    if event_type:
        query = query.where(AuditEvent.event_type == event_type)
    return session.scalars(query).all()


def _resolution(session, ticket_id) -> TicketResolution:
    return session.scalars(
        select(TicketResolution).where(TicketResolution.ticket_id == ticket_id)
    ).one()


# --- answers -----------------------------------------------------------------------


def test_yes_confirms_and_stops_the_follow_up(session):
    ticket = _resolve(session)
    result = _answer(session, ticket.ticket_id, True)
    assert (result.changed, result.reopened) == (True, False)
    session.expire_all()
    resolution = _resolution(session, ticket.ticket_id)
    assert resolution.resolution_confirmed is True
    assert resolution.response_received_at == T1
    assert resolution.reopened is False
    reloaded = session.get(Ticket, ticket.ticket_id)
    assert reloaded.status == TicketStatus.RESOLVED and reloaded.resolved_at == NOW
    assert _rows(session, ActionType.REOPEN) == [] and _rows(session, ActionType.CONFIRM) == []
    assert _audits(session) == []


def test_the_same_answer_twice_writes_nothing(session):
    ticket = _resolve(session)
    _answer(session, ticket.ticket_id, True, now=T1)
    again = _answer(session, ticket.ticket_id, True, now=T2)
    assert again.changed is False
    assert _resolution(session, ticket.ticket_id).response_received_at == T1
    _answer(session, ticket.ticket_id, False, now=T2)
    again = _answer(session, ticket.ticket_id, False, now=T3)
    assert (again.changed, again.reopened) == (False, False)
    assert len(_rows(session, ActionType.REOPEN)) == 1
    assert _resolution(session, ticket.ticket_id).reopened_at == T2


def test_no_reopens_to_the_resolving_team_with_a_history_row(session):
    ticket = _resolve(session, team="Network")
    resolved_state = snapshots.snapshot(ticket)
    result = _answer(session, ticket.ticket_id, False)
    assert (result.changed, result.reopened) == (True, True)
    session.expire_all()
    resolution = _resolution(session, ticket.ticket_id)
    assert resolution.resolution_confirmed is False
    assert resolution.reopened is True
    assert resolution.reopened_at == T1
    assert resolution.reopened_reason == REOPENED_REASON
    assert resolution.response_received_at == T1
    reloaded = session.get(Ticket, ticket.ticket_id)
    assert reloaded.status == TicketStatus.OPEN
    assert reloaded.assigned_team == "Network"
    assert reloaded.awaiting_response_from == Awaiting.SUPPORT
    assert reloaded.resolved_at is None
    [row] = _rows(session, ActionType.REOPEN)
    assert row.ticket_id == ticket.ticket_id
    assert row.executed_by == "UREQ" and row.executed_at == T1
    assert row.autonomous is False and row.rollback_possible is False
    assert row.before_state == resolved_state
    assert row.after_state == snapshots.snapshot(reloaded)
    assert row.action_params["team"] == "Network"
    assert _audits(session) == []


def test_no_without_a_team_goes_to_the_default_team(session):
    ticket = _resolve(session, team=None)
    _answer(session, ticket.ticket_id, False)
    assert session.get(Ticket, ticket.ticket_id).assigned_team == DEFAULT_TEAM


def test_no_after_yes_reopens_and_is_audited(session):
    ticket = _resolve(session)
    _answer(session, ticket.ticket_id, True, now=T1)
    result = _answer(session, ticket.ticket_id, False, now=T2)
    assert result.reopened is True
    resolution = _resolution(session, ticket.ticket_id)
    assert resolution.resolution_confirmed is False
    assert resolution.response_received_at == T1  # the first answer's time is kept
    assert session.get(Ticket, ticket.ticket_id).status == TicketStatus.OPEN
    [event] = _audits(session, audit.FEEDBACK_CHANGED)
    assert event.actor_id == "UREQ" and event.ticket_id == ticket.ticket_id
    assert event.detail == {"kind": "answer", "from": True, "to": False}


def test_yes_after_no_resolves_again_and_is_audited(session):
    ticket = _resolve(session)
    _answer(session, ticket.ticket_id, False, now=T1)
    result = _answer(session, ticket.ticket_id, True, now=T2)
    assert (result.changed, result.reopened) == (True, False)
    session.expire_all()
    reloaded = session.get(Ticket, ticket.ticket_id)
    assert reloaded.status == TicketStatus.RESOLVED
    assert reloaded.resolved_at == T2
    assert reloaded.awaiting_response_from == Awaiting.NOBODY
    resolution = _resolution(session, ticket.ticket_id)
    assert resolution.resolution_confirmed is True
    assert resolution.reopened is True  # it was reopened once; that stays on record
    [event] = _audits(session, audit.FEEDBACK_CHANGED)
    assert event.detail == {"kind": "answer", "from": False, "to": True}
    [confirm] = _rows(session, ActionType.CONFIRM)
    assert confirm.executed_by == "UREQ" and confirm.rollback_possible is False
    assert confirm.after_state == snapshots.snapshot(reloaded)


def test_a_stranger_is_refused_audited_and_nothing_is_stored(session):
    ticket = _resolve(session)
    with pytest.raises(NotRequester) as caught:
        _answer(session, ticket.ticket_id, False, user_id="USTRANGER")
    assert caught.value.message == "Only the person who asked for help (<@UREQ>) can answer this."
    assert caught.value.keep_writes is True
    with pytest.raises(NotRequester):
        _rate(session, ticket.ticket_id, 1, user_id="USTRANGER")
    events = _audits(session, audit.FEEDBACK_WRONG_USER)
    assert [(e.actor_id, e.ticket_id, e.detail) for e in events] == [
        ("USTRANGER", ticket.ticket_id, {"kind": "answer", "solved": False}),
        ("USTRANGER", ticket.ticket_id, {"kind": "rating", "score": 1}),
    ]
    resolution = _resolution(session, ticket.ticket_id)
    assert resolution.resolution_confirmed is None
    assert resolution.satisfaction_score is None
    assert resolution.response_received_at is None
    assert session.get(Ticket, ticket.ticket_id).status == TicketStatus.RESOLVED
    assert _rows(session, ActionType.REOPEN) == []


def test_a_strangers_refusal_stays_audited_after_the_transaction(committing_factory):
    with transaction(committing_factory) as session:
        ticket_id = _resolve(session).ticket_id
    with pytest.raises(NotRequester), transaction(committing_factory) as session:
        _answer(session, ticket_id, False, user_id="USTRANGER")
    with transaction(committing_factory) as session:
        assert [e.actor_id for e in _audits(session)] == ["USTRANGER"]
        assert _resolution(session, ticket_id).resolution_confirmed is None
        assert session.get(Ticket, ticket_id).status == TicketStatus.RESOLVED


def test_a_no_means_a_later_rollback_conflicts(session, settings):
    ticket = _resolve(session)
    action_id = _resolution(session, ticket.ticket_id).action_id
    _answer(session, ticket.ticket_id, False)
    throttle = RollbackThrottle(settings, make_storage(None))
    with pytest.raises(RollbackConflict, match="status is now 'open'"):
        rollback_action(session, ref=str(action_id), admin_id="UADMIN", is_admin=True,
                        reason="", throttle=throttle, now=T2)


# --- ratings -----------------------------------------------------------------------


def test_rating_last_one_wins_and_repeats_change_nothing(session):
    ticket = _resolve(session)
    first = _rate(session, ticket.ticket_id, 2, now=T1)
    assert first.changed is True and first.resolution.satisfaction_score == 2
    assert _resolution(session, ticket.ticket_id).response_received_at == T1
    assert _rate(session, ticket.ticket_id, 5, now=T2).changed is True
    assert _rate(session, ticket.ticket_id, 5, now=T3).changed is False
    resolution = _resolution(session, ticket.ticket_id)
    assert resolution.satisfaction_score == 5
    assert resolution.response_received_at == T1
    assert resolution.resolution_confirmed is None  # a rating is not an answer
    assert session.get(Ticket, ticket.ticket_id).status == TicketStatus.RESOLVED


def test_rating_after_an_answer_keeps_the_first_response_time(session):
    ticket = _resolve(session)
    _answer(session, ticket.ticket_id, True, now=T1)
    _rate(session, ticket.ticket_id, 4, now=T2)
    assert _resolution(session, ticket.ticket_id).response_received_at == T1


# --- refusals and bad input --------------------------------------------------------


@pytest.mark.parametrize("score", [0, 6, -1, True, False, 3.0, 4.5, "3", None, [3]])
def test_bad_scores(session, score):
    ticket = _resolve(session)
    with pytest.raises(InvalidInput, match="whole number of stars from 1 to 5"):
        _rate(session, ticket.ticket_id, score)
    assert _resolution(session, ticket.ticket_id).satisfaction_score is None


@pytest.mark.parametrize("ticket_id", [0, -3, True, "5", 1.0, None])
def test_bad_ticket_ids(session, ticket_id):
    with pytest.raises(InvalidInput, match="not a ticket number"):
        _answer(session, ticket_id, True)
    with pytest.raises(InvalidInput, match="not a ticket number"):
        _rate(session, ticket_id, 3)


@pytest.mark.parametrize("solved", ["yes", 1, 0, None])
def test_bad_answers(session, solved):
    ticket = _resolve(session)
    with pytest.raises(InvalidInput, match="yes or no"):
        _answer(session, ticket.ticket_id, solved)


@pytest.mark.parametrize("user_id", ["", "  ", None])
def test_bad_user_ids(session, user_id):
    ticket = _resolve(session)
    with pytest.raises(InvalidInput, match="Who clicked is unknown"):
        _answer(session, ticket.ticket_id, True, user_id=user_id)
    with pytest.raises(InvalidInput, match="Who clicked is unknown"):
        _rate(session, ticket.ticket_id, 3, user_id=user_id)


def test_no_resolution_or_no_ticket_is_not_found(session):
    escalated = make_action(session, action_type=ActionType.ESCALATE, now=NOW)
    for ticket_id in (escalated.ticket_id, 987654):
        with pytest.raises(NotFound, match=f"Ticket #{ticket_id} has no answer from the bot"):
            _answer(session, ticket_id, True)
        with pytest.raises(NotFound, match=f"Ticket #{ticket_id} has no answer from the bot"):
            _rate(session, ticket_id, 3)


def test_a_rolled_back_resolution_takes_no_feedback(session, settings):
    ticket = _resolve(session)
    action_id = _resolution(session, ticket.ticket_id).action_id
    throttle = RollbackThrottle(settings, make_storage(None))
    rollback_action(session, ref=str(action_id), admin_id="UADMIN", is_admin=True,
                    reason="wrong article", throttle=throttle, now=T1)
    message = "This answer was withdrawn by an admin; nothing to rate."
    with pytest.raises(InvalidInput, match=message):
        _answer(session, ticket.ticket_id, False, now=T2)
    with pytest.raises(InvalidInput, match=message):
        _rate(session, ticket.ticket_id, 1, now=T2)
    resolution = _resolution(session, ticket.ticket_id)
    assert resolution.resolution_confirmed is None and resolution.satisfaction_score is None
    assert session.get(Ticket, ticket.ticket_id).status == TicketStatus.NEW
    assert _rows(session, ActionType.REOPEN) == []


# --- property: only the requester's clicks count -----------------------------------

_clicks = st.lists(
    st.tuples(
        st.sampled_from(["UREQ", "USTRANGER", "UOTHER"]),
        st.one_of(
            st.tuples(st.just("answer"), st.booleans()),
            st.tuples(st.just("rating"), st.integers(min_value=1, max_value=5)),
        ),
    ),
    max_size=12,
)


@hsettings(max_examples=50, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(clicks=_clicks)
def test_any_click_sequence_keeps_only_the_requesters_last_word(session, clicks):
    savepoint = session.begin_nested()
    try:
        ticket = _resolve(session)
        when = NOW
        for user_id, (kind, value) in clicks:
            when += timedelta(minutes=1)
            try:
                if kind == "answer":
                    _answer(session, ticket.ticket_id, value, user_id=user_id, now=when)
                else:
                    _rate(session, ticket.ticket_id, value, user_id=user_id, now=when)
            except NotRequester:
                assert user_id != "UREQ"
        mine = [(kind, value) for user_id, (kind, value) in clicks if user_id == "UREQ"]
        answers = [value for kind, value in mine if kind == "answer"]
        ratings = [value for kind, value in mine if kind == "rating"]
        strangers = len(clicks) - len(mine)

        session.expire_all()
        resolution = _resolution(session, ticket.ticket_id)
        assert resolution.resolution_confirmed == (answers[-1] if answers else None)
        assert resolution.satisfaction_score == (ratings[-1] if ratings else None)
        assert resolution.reopened is (False in answers)
        assert (resolution.response_received_at is None) is (not mine)
        status = session.get(Ticket, ticket.ticket_id).status
        assert status == (TicketStatus.OPEN if answers and answers[-1] is False else TicketStatus.RESOLVED)
        wrong = _audits(session, audit.FEEDBACK_WRONG_USER)
        assert len(wrong) == strangers
        assert all(event.actor_id != "UREQ" for event in wrong)
        changes = sum(1 for a, b in zip(answers, answers[1:], strict=False) if a != b)
        assert len(_audits(session, audit.FEEDBACK_CHANGED)) == changes
        # Each switch to No is one REOPEN row, written by the requester.
        reopens = sum(1 for prev, cur in zip([None, *answers], answers, strict=False)
                      if cur is False and prev is not False)
        reopen_rows = _rows(session, ActionType.REOPEN)
        assert len(reopen_rows) == reopens
        assert all(row.executed_by == "UREQ" for row in reopen_rows)
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == strangers + changes
    finally:
        savepoint.rollback()
