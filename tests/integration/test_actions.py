"""Each action changes the ticket and leaves a record that explains and undoes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.domain import actions, snapshots
from bot.domain.actions import PlannedAction
from models import ActionHistory, ActionType, Actor, Ticket, TicketResolution, TicketStatus, transaction
from tests.support.factories import make_plan, make_ticket

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("action_type", "status", "team"),
    [
        (ActionType.AUTO_RESOLVE, TicketStatus.RESOLVED, None),
        (ActionType.ESCALATE, TicketStatus.ESCALATED, "Network"),
        (ActionType.ASSIGN_TO_TEAM, TicketStatus.IN_PROGRESS, "Network"),
        (ActionType.REQUEST_CLARIFICATION, TicketStatus.AWAITING_USER, None),
    ],
)
def test_each_action_records_before_and_after(session, action_type, status, team):
    ticket = make_ticket(session)
    before = snapshots.snapshot(ticket)
    row = actions.execute(session, ticket, make_plan(action_type, confidence=0.83), now=NOW,
                          followup_delay=timedelta(hours=24))
    session.expire_all()
    stored = session.get(ActionHistory, row.id)
    assert stored.action_type == action_type
    assert stored.confidence_score == pytest.approx(0.83)
    assert stored.agent_reasoning == "Matched KB article 'vpn'"
    assert stored.executed_by == Actor.AGENT and stored.autonomous is True
    assert stored.rollback_possible is True and stored.rolled_back is False
    assert stored.before_state == before
    assert stored.after_state["status"] == status
    assert stored.executed_at == NOW
    reloaded = session.get(Ticket, ticket.ticket_id)
    assert reloaded.status == status
    assert snapshots.snapshot(reloaded) == stored.after_state
    if team:
        assert reloaded.assigned_team == team


def test_auto_resolve_opens_a_resolution_due_for_follow_up(session):
    ticket = make_ticket(session)
    row = actions.execute(session, ticket, make_plan(ActionType.AUTO_RESOLVE), now=NOW,
                          followup_delay=timedelta(minutes=90))
    resolution = session.scalars(select(TicketResolution)).one()
    assert resolution.ticket_id == ticket.ticket_id
    assert resolution.action_id == row.id
    assert resolution.autonomous_action == ActionType.AUTO_RESOLVE
    assert resolution.resolution_confirmed is None
    assert resolution.followup_due_at == NOW + timedelta(minutes=90)
    assert resolution.followup_sent_at is None


def test_other_actions_open_no_resolution(session):
    for action_type in (ActionType.ESCALATE, ActionType.ASSIGN_TO_TEAM, ActionType.REQUEST_CLARIFICATION):
        actions.execute(session, make_ticket(session), make_plan(action_type), now=NOW,
                        followup_delay=timedelta(hours=1))
    assert session.scalar(select(func.count()).select_from(TicketResolution)) == 0


def test_a_failed_action_writes_nothing(committing_factory):
    with transaction(committing_factory) as session:
        ticket_id = make_ticket(session).ticket_id
    bad = PlannedAction(action_type=ActionType.ESCALATE, confidence=0.9, reasoning="r", params={})
    with pytest.raises(ValueError, match="needs a team"), transaction(committing_factory) as session:
        ticket = session.get(Ticket, ticket_id)
        ticket.status = TicketStatus.OPEN  # a change made before the failure must not land either
        actions.execute(session, ticket, bad, now=NOW, followup_delay=timedelta(hours=1))
    with transaction(committing_factory) as session:
        assert session.get(Ticket, ticket_id).status == TicketStatus.NEW
        assert session.scalar(select(func.count()).select_from(ActionHistory)) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action_type": "DELETE_EVERYTHING"}, "unknown action type"),
        ({"confidence": 1.5}, "between 0 and 1"),
        ({"confidence": -0.1}, "between 0 and 1"),
    ],
)
def test_bad_plans_are_refused(kwargs, message):
    base = {"action_type": ActionType.AUTO_RESOLVE, "confidence": 0.9, "reasoning": "r"}
    with pytest.raises(ValueError, match=message):
        PlannedAction(**{**base, **kwargs})


def test_confidence_outside_0_1_is_refused_by_the_database_too(session):
    from sqlalchemy.exc import IntegrityError

    ticket = make_ticket(session)
    session.add(ActionHistory(ticket_id=ticket.ticket_id, action_type=ActionType.ESCALATE,
                              confidence_score=1.2, executed_at=NOW))
    with pytest.raises(IntegrityError, match="ck_action_history_confidence_0_1"):
        session.flush()


def test_satisfaction_outside_1_5_is_refused_by_the_database(session):
    from sqlalchemy.exc import IntegrityError

    ticket = make_ticket(session)
    actions.execute(session, ticket, make_plan(ActionType.AUTO_RESOLVE), now=NOW,
                    followup_delay=timedelta(hours=1))
    resolution = session.scalars(select(TicketResolution)).one()
    resolution.satisfaction_score = 6
    with pytest.raises(IntegrityError, match="ck_ticket_resolution_satisfaction_1_5"):
        session.flush()
