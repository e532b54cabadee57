"""Intake and decision: a ticket is stored once, decided once, and capped."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from bot.core.errors import InvalidInput, NotFound
from bot.core.settings import load_settings
from bot.domain import audit
from bot.domain.intake import MAX_TEXT, open_ticket
from bot.domain.ratelimit import AutonomyBudget, make_storage
from bot.workflows.decision import decide_ticket
from models import (
    ActionHistory,
    ActionType,
    Actor,
    AgentCall,
    AuditEvent,
    Ticket,
    TicketResolution,
    TicketSource,
    TicketStatus,
    transaction,
)
from tests.support.deciding import decide_in
from tests.support.factories import make_ticket
from tests.support.interleave import all_read_first
from tests.support.scripted_agent import ScriptedAgent, vpn_answer


@pytest.fixture()
def budget(settings, redis_url, namespace):
    return AutonomyBudget(settings, make_storage(redis_url), namespace=namespace)


def _process(session, ticket, settings, budget, agent=None):
    return decide_in(session, ticket.ticket_id, agent=agent or ScriptedAgent(), budget=budget,
                     settings=settings)


# Intake ------------------------------------------------------------------------------

def test_intake_stores_a_new_ticket(session):
    intake = open_ticket(session, user_id="U123", text="  My VPN drops\nevery hour ",
                         source=TicketSource.SLASH_COMMAND, channel_id="C1", team_id="T1")
    assert intake.created
    ticket = session.get(Ticket, intake.ticket.ticket_id)
    assert ticket.status == TicketStatus.NEW
    assert ticket.description == "My VPN drops\nevery hour"
    assert ticket.issue_type == "My VPN drops"
    assert (ticket.slack_channel_id, ticket.slack_team_id, ticket.user_id) == ("C1", "T1", "U123")


def test_the_same_slack_delivery_opens_one_ticket(session):
    first = open_ticket(session, user_id="U1", text="printer jam", source=TicketSource.DM, event_id="Ev1")
    again = open_ticket(session, user_id="U1", text="printer jam", source=TicketSource.DM, event_id="Ev1")
    assert not again.created and again.ticket.ticket_id == first.ticket.ticket_id
    assert session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_concurrent_deliveries_of_one_event_open_one_ticket(racing_factory):
    barrier = threading.Barrier(4)
    results = []

    def deliver():
        barrier.wait()
        with transaction(racing_factory) as session:
            results.append(open_ticket(session, user_id="U1", text="wifi down", source=TicketSource.MENTION,
                                       event_id="EvRace").created)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    with all_read_first(racing_factory.kw["bind"], r"FROM tickets", parties=4):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(results) == [False, False, False, True]
    with transaction(racing_factory) as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": ""}, "/ticket my VPN"),
        ({"text": "   \n\t "}, "/ticket my VPN"),
        ({"text": "\x00\x01"}, "/ticket my VPN"),
        # Nothing a person could read (found by the fuzz suite: 3,999 zero-width spaces).
        ({"text": "\u200b" * 3999}, "/ticket my VPN"),
        ({"text": "\u202a\u202c\u2066\u2069\u00ad"}, "/ticket my VPN"),
        ({"text": "\u3000\u2028\u2029\ufeff"}, "/ticket my VPN"),
        ({"text": None}, "/ticket my VPN"),
        ({"text": "x" * (MAX_TEXT + 1)}, "under 4,000"),
        ({"user_id": ""}, "Slack user"),
        ({"user_id": "u1; drop table"}, "Slack user"),
        ({"source": "email"}, "Unknown ticket source"),
    ],
)
def test_bad_intake_is_refused_and_writes_nothing(session, kwargs, message):
    args = {"user_id": "U1", "text": "printer jam", "source": TicketSource.DM, **kwargs}
    with pytest.raises(InvalidInput, match=message):
        open_ticket(session, **args)
    assert session.scalar(select(func.count()).select_from(Ticket)) == 0


# Decision ----------------------------------------------------------------------------

def test_a_confident_answer_resolves_the_ticket(session, settings, budget):
    ticket = make_ticket(session)
    outcome = _process(session, ticket, settings, budget)
    assert outcome.action.action_type == ActionType.AUTO_RESOLVE and outcome.action.autonomous
    assert ticket.status == TicketStatus.RESOLVED and ticket.agent_processed
    assert ticket.agent_response["recommended_action"] == "auto_resolve"
    assert ticket.assigned_team == "Network"
    assert session.scalar(select(func.count()).select_from(TicketResolution)) == 1
    call = session.scalars(select(AgentCall)).one()
    assert call.ok and call.ticket_id == ticket.ticket_id


def test_a_ticket_is_decided_once(session, settings, budget):
    ticket = make_ticket(session)
    agent = ScriptedAgent()
    first = _process(session, ticket, settings, budget, agent)
    again = _process(session, ticket, settings, budget, agent)
    assert again.already_processed and again.action.id == first.action.id
    assert len(agent.seen) == 1
    assert session.scalar(select(func.count()).select_from(ActionHistory)) == 1


def test_two_workers_on_one_ticket_act_once(racing_factory, settings, budget):
    with transaction(racing_factory) as session:
        ticket_id = make_ticket(session).ticket_id
    barrier = threading.Barrier(2)
    agent = ScriptedAgent()

    def work():
        barrier.wait()
        decide_ticket(racing_factory, ticket_id, agent=agent, budget=budget, settings=settings)

    threads = [threading.Thread(target=work) for _ in range(2)]
    with all_read_first(racing_factory.kw["bind"], r"\btickets\b"):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with transaction(racing_factory) as session:
        assert session.scalar(select(func.count()).select_from(ActionHistory)) == 1
    assert len(agent.seen) == 1


def test_agent_down_sends_the_ticket_to_human_triage(session, settings, budget):
    ticket = make_ticket(session)
    outcome = _process(session, ticket, settings, budget, ScriptedAgent(fail="connection refused"))
    assert outcome.action.action_type == ActionType.ESCALATE
    assert outcome.action.autonomous is False and outcome.action.executed_by == Actor.SYSTEM
    assert outcome.action.action_params["triage"] is True
    assert "agent is unavailable" in outcome.triage_reason
    assert ticket.status == TicketStatus.ESCALATED and ticket.assigned_team == settings.default_team
    call = session.scalars(select(AgentCall)).one()
    assert not call.ok and call.error == "connection refused"


def test_missing_ticket(session, settings, budget):
    with pytest.raises(NotFound, match="#999999"):
        decide_in(session, 999999, agent=ScriptedAgent(), budget=budget, settings=settings)


# Caps --------------------------------------------------------------------------------

def test_the_minute_cap_sends_the_next_ticket_to_triage_and_keeps_the_suggestion(
    session, pg_url, redis_url, namespace
):
    settings = load_settings(database_url=pg_url, max_autonomous_actions_per_minute=2)
    budget = AutonomyBudget(settings, make_storage(redis_url), namespace=namespace)
    outcomes = [_process(session, make_ticket(session), settings, budget) for _ in range(3)]
    assert [o.action.action_type for o in outcomes] == [
        ActionType.AUTO_RESOLVE, ActionType.AUTO_RESOLVE, ActionType.ESCALATE]
    capped = outcomes[2]
    assert capped.action.autonomous is False
    assert "autonomy cap reached (2 per 1 minute)" in capped.triage_reason
    assert capped.action.action_params["suggestion"]["action_type"] == ActionType.AUTO_RESOLVE
    assert capped.ticket.suggested_action["action_type"] == ActionType.AUTO_RESOLVE
    event = session.scalars(select(AuditEvent)).one()
    assert event.event_type == audit.AUTONOMY_CAP_REACHED and event.ticket_id == capped.ticket.ticket_id


def test_caps_are_shared_by_every_process_through_redis(pg_url, redis_url, namespace):
    settings = load_settings(database_url=pg_url, max_autonomous_actions_per_hour=3)
    one = AutonomyBudget(settings, make_storage(redis_url), namespace=namespace)
    two = AutonomyBudget(settings, make_storage(redis_url), namespace=namespace)
    allowed = [b.try_acquire().allowed for b in (one, two, one, two, one)]
    assert allowed == [True, True, True, False, False]


def test_the_window_moves_so_a_window_edge_lets_nothing_extra_through(pg_url, namespace, redis_url):
    settings = load_settings(database_url=pg_url, max_autonomous_actions_per_minute=2)
    budget = AutonomyBudget(settings, make_storage(redis_url), namespace=namespace)
    start = datetime(2026, 11, 25, 10, 0, 59, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        assert budget.try_acquire().allowed and budget.try_acquire().allowed
        # A fixed window would start afresh at 10:01:00 and allow two more.
        traveller.move_to(start + timedelta(seconds=2))
        assert not budget.try_acquire().allowed
        traveller.move_to(start + timedelta(seconds=61))
        assert budget.try_acquire().allowed


def test_limiter_down_fails_closed(session, settings):
    budget = AutonomyBudget(settings, make_storage("redis://127.0.0.1:1/0"), namespace="x")
    ticket = make_ticket(session)
    outcome = _process(session, ticket, settings, budget)
    assert outcome.action.action_type == ActionType.ESCALATE and not outcome.action.autonomous
    assert outcome.triage_reason == "autonomy limiter unavailable"
    assert session.scalars(select(AuditEvent)).one().event_type == audit.AUTONOMY_LIMITER_DOWN


def test_human_triage_does_not_use_the_budget(session, pg_url, redis_url, namespace):
    settings = load_settings(database_url=pg_url, max_autonomous_actions_per_minute=1)
    budget = AutonomyBudget(settings, make_storage(redis_url), namespace=namespace)
    _process(session, make_ticket(session), settings, budget, ScriptedAgent(vpn_answer(action="nuke")))
    outcome = _process(session, make_ticket(session), settings, budget)
    assert outcome.action.action_type == ActionType.AUTO_RESOLVE
