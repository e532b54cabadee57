"""The LLM agent through the policy: what a ticket ends up as, and what was recorded.

Real PostgreSQL and Redis; the model is the fake OpenAI-compatible endpoint on loopback.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.agent import build_agent
from bot.core.settings import load_settings
from bot.domain.ratelimit import AutonomyBudget, make_storage
from bot.platform import cli
from models import ActionType, Actor, AgentCall, EscalationPriority, Ticket, TicketStatus
from tests.support.deciding import decide_in
from tests.support.factories import make_ticket
from tests.support.fake_openai import (
    GOOD,
    MALFORMED_JSON,
    OFF_SCHEMA,
    REFUSAL,
    VPN_REQUEST,
    FakeOpenAI,
    answer,
    decision,
    rate_limited,
    slow,
)

API_KEY = "sk-integration-7d3e9a1c5b"
BOT_TOKEN = "xoxb-4242-4242-integrationtoken"


@pytest.fixture()
def fake():
    with FakeOpenAI() as running:
        yield running


@pytest.fixture()
def llm_settings(settings, fake):
    """The test settings plus an LLM agent on the fake (the `settings` fixture cleared the env)."""
    return load_settings(
        database_url=settings.database_url, admin_user_ids="UADMIN",
        slack_bot_token=BOT_TOKEN, llm_base_url=fake.base_url, llm_model="gpt-test",
        llm_api_key=API_KEY, agent_timeout=0.3, agent_retries=1,
    )


@pytest.fixture()
def agent(llm_settings):
    made = build_agent(llm_settings)
    yield made
    made.close()


@pytest.fixture()
def budget(llm_settings, redis_url, namespace):
    return AutonomyBudget(llm_settings, make_storage(redis_url), namespace=namespace)


@pytest.fixture()
def decide(session, llm_settings, agent, budget):
    def run(description: str = VPN_REQUEST):
        ticket = make_ticket(session, description=description)
        outcome = decide_in(session, ticket.ticket_id, agent=agent, budget=budget,
                            settings=llm_settings)
        call = session.scalars(select(AgentCall).where(AgentCall.ticket_id == ticket.ticket_id)).one()
        return ticket, outcome, call
    return run


def test_a_good_answer_resolves_the_ticket_with_the_articles_steps(fake, decide):
    ticket, outcome, call = decide()
    action = outcome.action
    assert (action.action_type, action.autonomous) == (ActionType.AUTO_RESOLVE, True)
    assert ticket.status == TicketStatus.RESOLVED and ticket.assigned_team == "Network"
    assert action.action_params["source"] == "llm:vpn"
    assert action.action_params["steps"][0] == "Quit the VPN client completely and reconnect."
    assert "VPN article covers it" in action.agent_reasoning
    assert ticket.agent_response["solution"]["success_probability"] == 0.85
    assert (call.agent, call.ok, call.attempts, call.error) == ("llm", True, 1, "")
    # What the model saw: the request and the articles; never the bot token or the key.
    [request] = fake.requests
    assert VPN_REQUEST in request.prompt and "VPN won't connect" in request.prompt
    assert BOT_TOKEN not in request.raw.decode() and API_KEY not in request.raw.decode()


def test_the_models_questions_are_asked_in_the_thread(fake, decide):
    fake.answer(answer(decision(recommended_action="request_clarification", confidence=0.85,
                                article_id=None, steps=[], success_probability=0.0,
                                questions=["Which VPN client do you use?", "Since when?"])))
    ticket, outcome, _ = decide()
    assert outcome.action.action_type == ActionType.REQUEST_CLARIFICATION
    assert outcome.action.action_params["questions"] == ["Which VPN client do you use?", "Since when?"]


def test_a_medium_confidence_answer_is_suggested_to_the_team(fake, decide):
    fake.answer(answer(decision(confidence=0.65)))
    ticket, outcome, _ = decide()
    assert outcome.action.action_type == ActionType.ASSIGN_TO_TEAM
    assert ticket.assigned_team == "Network"
    assert outcome.action.action_params["suggested_answer"] is True


@pytest.mark.parametrize(
    ("replies", "reason", "attempts"),
    [
        ([MALFORMED_JSON], "answer could not be used (the model's answer is not valid JSON)", 1),
        ([OFF_SCHEMA], "off the schema: confidence", 1),
        ([answer(decision(article_id="printer"))], "article the prompt did not offer", 1),
        ([REFUSAL], "the model refused to answer", 1),
        ([rate_limited("60")], "the agent is unavailable (the model endpoint is rate limited", 1),
        ([slow(1.0), slow(1.0)], "the agent is unavailable (agent failed after 2 attempt(s): "
                                 "timed out after 0.3 s)", 2),
    ],
    ids=["malformed-json", "off-schema", "unoffered-article", "refusal", "429-long-wait", "timeout"],
)
def test_an_unusable_answer_sends_the_ticket_to_human_triage(fake, decide, replies, reason, attempts):
    fake.answer(*replies)
    ticket, outcome, call = decide()
    action = outcome.action
    assert (action.action_type, action.autonomous, action.executed_by) == (
        ActionType.ESCALATE, False, Actor.SYSTEM)
    assert action.action_params["triage"] is True
    assert reason in action.action_params["reason"]
    assert ticket.status == TicketStatus.ESCALATED and ticket.assigned_team == "Service Desk"
    assert (call.agent, call.ok, call.attempts) == ("llm", False, attempts)
    assert fake.count == attempts


def test_a_429_with_a_short_retry_after_is_waited_out(fake, decide):
    fake.answer(rate_limited("1"), GOOD)
    ticket, outcome, call = decide()
    assert outcome.action.action_type == ActionType.AUTO_RESOLVE
    assert (call.ok, call.attempts) == (True, 2)
    assert call.latency_ms >= 1000


def test_a_critical_request_is_escalated_without_asking_the_model(fake, decide):
    ticket, outcome, call = decide("Our whole office network is down, nobody can work")
    action = outcome.action
    assert action.action_type == ActionType.ESCALATE
    assert action.action_params["priority"] == EscalationPriority.CRITICAL
    assert ticket.assigned_team == "Infrastructure"
    assert action.action_params["source"] == "critical:outage"
    assert fake.count == 0
    assert (call.agent, call.ok, call.attempts) == ("llm", True, 0)


def test_resolvemeq_ask_shows_the_llm_agents_decision(fake, sqlite_url, monkeypatch, capsys):
    for name, value in {"DATABASE_URL": sqlite_url, "LLM_BASE_URL": fake.base_url,
                        "LLM_MODEL": "gpt-test", "LLM_API_KEY": API_KEY}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AGENT_URL", raising=False)

    assert cli.main(["ask", *VPN_REQUEST.split()]) == 0
    out = capsys.readouterr().out
    assert "action:     AUTO_RESOLVE" in out
    assert "confidence: 0.92" in out
    assert "VPN article covers it" in out
    assert "1. Quit the VPN client completely and reconnect." in out
    assert fake.count == 1 and fake.requests[0].body["model"] == "gpt-test"

    fake.answer(REFUSAL)
    assert cli.main(["ask", "my", "monitor", "flickers"]) == 0
    out = capsys.readouterr().out
    assert "ESCALATE (human triage)" in out and "team Service Desk" in out


def test_both_agents_configured_stop_ask_with_one_line(fake, sqlite_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("AGENT_URL", "http://127.0.0.1:9/api/agent/analyze")
    monkeypatch.setenv("LLM_BASE_URL", fake.base_url)
    monkeypatch.setenv("LLM_MODEL", "gpt-test")
    assert cli.main(["ask", "printer", "jam"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "AGENT_URL and LLM_BASE_URL are both set" in err
    assert fake.count == 0


def test_tickets_keep_their_category_from_the_model(fake, decide, session):
    fake.answer(answer(decision(recommended_action="assign_to_team", category="printer", article_id=None,
                                suggested_team=None, confidence=0.9, success_probability=0.0, steps=[])))
    ticket, outcome, _ = decide("the thing on floor 3 eats my pages")
    assert session.get(Ticket, ticket.ticket_id).category == "printer"
    assert ticket.assigned_team == "Desktop Support"  # from the routing table
