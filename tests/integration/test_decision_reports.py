"""What Sentry hears about decisions: a ticket sent to people against the agent's advice
(the caps full, their store down, the agent down or unusable, an action we do not
know) is reported, once a minute per cause; a decision that went as the agent advised
sends nothing.

The causes are read from real decisions (the claim, decide and act steps on PostgreSQL); the reports
from real ones too (`decide_and_announce`), through Sentry's own transport to the fake
ingest.
"""

from __future__ import annotations

import pytest
import sentry_sdk

from bot.agent.answer import AgentAnswer, MalformedAnswer, TicketInput
from bot.core import observability
from bot.core.settings import load_settings
from bot.delivery.slack_client import make_web_client
from bot.domain.intake import open_ticket
from bot.domain.processing import Outcome
from bot.domain.ratelimit import AutonomyBudget, make_storage
from bot.domain.triage_causes import CAUSE_PARAM, TriageCause, cause_of
from bot.workflows import announce
from bot.workflows.runtime import Runtime
from models import ActionHistory, ActionType, Ticket, TicketSource, transaction
from tests.support.deciding import decide_in
from tests.support.fake_sentry import FakeSentry
from tests.support.harness import VPN, free_port
from tests.support.scripted_agent import ScriptedAgent, vpn_answer


class UnusableAgent:
    name = "unusable"

    def analyse(self, ticket: TicketInput, *, record=None) -> AgentAnswer:
        raise MalformedAnswer("agent answer's confidence is not a number")


def _decide(session, settings, budget, agent) -> Outcome:
    ticket = open_ticket(session, user_id="UREQUESTER", text=VPN, source=TicketSource.CLI).ticket
    return decide_in(session, ticket.ticket_id, agent=agent, budget=budget, settings=settings)


@pytest.fixture()
def budget(settings, redis_url, namespace):
    return AutonomyBudget(settings, make_storage(redis_url), namespace=namespace)


# Which cause a decision shows -----------------------------------------------------------


def test_a_decision_that_follows_the_policy_has_no_cause(session, settings, budget):
    assert cause_of(_decide(session, settings, budget, ScriptedAgent())) is None
    medium = ScriptedAgent(vpn_answer(confidence=0.65))  # routed to the team: the policy
    outcome = _decide(session, settings, budget, medium)
    assert outcome.action.action_type == ActionType.ASSIGN_TO_TEAM and cause_of(outcome) is None


@pytest.mark.parametrize("agent, cause", [
    (ScriptedAgent(fail="connection refused"), TriageCause.AGENT_UNAVAILABLE),
    (UnusableAgent(), TriageCause.AGENT_ANSWER_UNUSABLE),
    (ScriptedAgent(vpn_answer(action="reboot_the_vpn_server")), TriageCause.UNKNOWN_ACTION),
], ids=["agent down", "answer unusable", "unknown action"])
def test_the_agent_side_causes(session, settings, budget, agent, cause):
    outcome = _decide(session, settings, budget, agent)
    assert outcome.action.action_params["triage"] is True
    assert cause_of(outcome) == cause and not cause.deliberate


def test_a_full_cap_and_an_unreachable_limiter(session, pg_url, redis_url, namespace):
    settings = load_settings(database_url=pg_url, max_autonomous_actions_per_minute=1)
    full = AutonomyBudget(settings, make_storage(redis_url), namespace=namespace)
    assert cause_of(_decide(session, settings, full, ScriptedAgent())) is None
    assert cause_of(_decide(session, settings, full, ScriptedAgent())) == TriageCause.CAP_REACHED
    down = AutonomyBudget(settings, make_storage(f"redis://127.0.0.1:{free_port()}/0"),
                          namespace=namespace)
    assert cause_of(_decide(session, settings, down, ScriptedAgent())) == TriageCause.LIMITER_DOWN


def test_a_cause_the_decision_names_wins_and_pause_and_shadow_are_deliberate(session):
    ticket = Ticket(user_id="U1", issue_type="vpn", description="vpn", status="escalated", tags=[],
                    source=TicketSource.CLI)
    action = ActionHistory(action_type=ActionType.ESCALATE, action_params={
        "triage": True, "reason": "autonomy is paused by an admin", CAUSE_PARAM: "autonomy_paused"})
    outcome = Outcome(ticket, action, vpn_answer(), None, triage_reason="autonomy is paused")
    assert cause_of(outcome) == TriageCause.AUTONOMY_PAUSED and TriageCause.AUTONOMY_PAUSED.deliberate
    assert TriageCause.SHADOW_MODE.deliberate
    assert TriageCause.NOT_AUTONOMOUS.deliberate
    # The clarification loop's limits are the settings working, not failures.
    assert not any(c.deliberate for c in TriageCause if c not in (
        TriageCause.AUTONOMY_PAUSED, TriageCause.SHADOW_MODE, TriageCause.NOT_AUTONOMOUS,
        TriageCause.CLARIFICATION_ROUNDS, TriageCause.CLARIFICATION_TIMEOUT))


# What reaches Sentry ----------------------------------------------------------------------


@pytest.fixture()
def sentry(monkeypatch):
    monkeypatch.setattr(observability, "_reports", observability._OncePerWindow(
        observability.REPORT_WINDOW))
    with FakeSentry() as fake:
        yield fake
    sentry_sdk.get_client().close()
    scope = sentry_sdk.get_global_scope()
    scope.set_client(None)
    scope.remove_tag("component")


def test_tickets_triaged_against_the_agents_advice_reach_sentry_once_a_minute_per_cause(
        pg_url, slack, namespace, sentry, committing_factory):
    settings = load_settings(database_url=pg_url, max_autonomous_actions_per_minute=1,
                             slack_api_url=slack.base_url, slack_bot_token=slack.token,
                             sentry_dsn=sentry.dsn)
    observability.init_sentry(settings, component="worker")
    runtime = Runtime.from_settings(settings, namespace=namespace)
    runtime.agent = ScriptedAgent()  # confident: auto-resolve, when the cap allows
    client = make_web_client(settings)

    def decide() -> Outcome:
        with transaction(runtime.sessions) as session:
            ticket_id = open_ticket(session, user_id="UREQUESTER", text=VPN,
                                    source=TicketSource.CLI).ticket.ticket_id
        return announce.decide_and_announce(runtime, client, ticket_id)

    try:
        assert decide().triage_reason is None  # the one autonomous action the cap allows
        capped = [decide(), decide(), decide()]
        assert all(o.action.action_type == ActionType.ESCALATE for o in capped)
        runtime.agent = ScriptedAgent(fail="connection refused")
        decide()
        sentry_sdk.flush()
    finally:
        runtime.engine.dispose()
    reports = [e for e in sentry.events() if (e.get("contexts") or {}).get("decision")]
    assert [e["tags"]["triage"] for e in reports] == ["cap_reached", "agent_unavailable"]
    capped_report = reports[0]
    assert capped_report["tags"]["action_type"] == "ESCALATE"
    assert capped_report["tags"]["confidence"] == "0.9"
    assert capped_report["contexts"]["decision"]["ticket_id"] == capped[0].ticket.ticket_id
    assert VPN not in sentry.text()  # the report names the cause, never the request
