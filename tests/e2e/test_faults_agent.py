"""The HTTP agent down or slow, end to end: people take over, the circuit opens, the
critical channel hears about it once.

A real `resolvemeq serve` asks `tests/fake_agent.py` (AGENT_URL) with a 0.3 s
timeout and two retries per ticket; three failed tickets in a row open the circuit.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.sandbox.standin import SlackStandIn
from models import ActionType, AgentCall, TicketStatus
from tests.support.databases import E2E_REDIS_URL, clean_e2e
from tests.support.fake_agent import SERVER_ERROR, TOO_MANY, running_fake_agent, slow
from tests.support.faults import (
    VPN,
    about,
    actions_of,
    answered,
    assert_consistent,
    no_secret_in_any_server_log,
    run_jobs,
    slash_ticket,
    start_server,
    ticket_number,
)
from tests.support.harness import CHANNEL, REQUESTER, shown

assert no_secret_in_any_server_log  # the session-wide log scan, for this module's servers too

CRITICAL = "CCRITICAL"
ATTEMPTS = 3  # the first try and AGENT_RETRIES=2


@pytest.fixture(scope="module")
def agent():
    with running_fake_agent() as fake:
        yield fake


@pytest.fixture(scope="module")
def agent_slack():
    with SlackStandIn() as fake:
        yield fake


@pytest.fixture(scope="module")
def agent_server(e2e_db_url, agent_slack, agent):
    server = start_server(
        database_url=e2e_db_url, slack=agent_slack, redis_url=E2E_REDIS_URL,
        AGENT_URL=agent.url, AGENT_TIMEOUT="0.3", AGENT_RETRIES="2", AGENT_BREAKER_FAILURES="3",
        AGENT_BREAKER_RESET="10m", ALERTS_CHANNEL="CALERTS", CRITICAL_ALERTS_CHANNEL=CRITICAL,
        ALERT_AGENT_ERRORS="2",
    )
    yield server
    server.stop()


@pytest.fixture()
def agent_down(agent_server, agent_slack, e2e_engine):
    yield agent_server
    clean_e2e(e2e_engine)
    agent_slack.reset()


def _triaged(sessions, slack, ticket_id: int) -> str:
    """The ticket went to people: not autonomous, and its thread says so. Returns the
    reason shown."""
    ticket = answered(sessions, ticket_id)
    [action] = actions_of(sessions, ticket_id)
    assert (action.action_type, action.autonomous, ticket.status) == (
        ActionType.ESCALATE, False, TicketStatus.ESCALATED)
    assert action.action_params["triage"] is True
    [answer] = [m for m in slack.messages(CHANNEL) if about(ticket_id)(m)]
    assert "A person from *Service Desk* will pick this up" in shown(answer)
    return action.action_params["reason"]


def test_agent_down_sends_tickets_to_people_opens_the_circuit_and_alerts_once(
        agent_down, agent, agent_slack, e2e_sessions):
    failing = {"HTTP 500": SERVER_ERROR, "too slow": slow(1.0), "HTTP 429": TOO_MANY}
    for how, reply in failing.items():
        agent.answer(*[reply] * ATTEMPTS)
        asked = agent.count
        ticket_id = ticket_number(slash_ticket(agent_down, f"{VPN} ({how})"))
        reason = _triaged(e2e_sessions, agent_slack, ticket_id)
        assert "the agent is unavailable" in reason, reason
        assert agent.count - asked == ATTEMPTS, how

    # Three failures in a row: the circuit is open, the agent is not asked at all.
    asked = agent.count
    ticket_id = ticket_number(slash_ticket(agent_down, f"{VPN} (circuit open)"))
    reason = _triaged(e2e_sessions, agent_slack, ticket_id)
    assert "circuit open" in reason, reason
    assert agent.count == asked
    with e2e_sessions() as session:
        calls = session.scalars(select(AgentCall).order_by(AgentCall.id)).all()
    assert [(c.ok, c.attempts) for c in calls] == [(False, ATTEMPTS)] * 3 + [(False, 0)]

    # The jobs pass raises the critical alert (4 errors > 2) into the critical channel...
    assert run_jobs(agent_down)["evaluate_alerts"] == 1
    [alert] = agent_slack.messages(CRITICAL)
    assert "4 agent API errors" in alert["text"], alert["text"]
    # ...once: the next pass, with the errors still there, stays quiet.
    assert run_jobs(agent_down)["evaluate_alerts"] == 0
    assert len(agent_slack.messages(CRITICAL)) == 1
    assert agent_slack.messages(REQUESTER) == []  # nobody was DMed about it
    assert_consistent(e2e_sessions)

