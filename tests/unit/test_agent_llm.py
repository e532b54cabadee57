"""The LLM agent against a fake OpenAI-compatible endpoint on loopback."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import time_machine

from bot.agent import (
    AgentUnavailable,
    CircuitBreaker,
    LlmAgent,
    MalformedAnswer,
    RefusedAnswer,
    TicketInput,
    build_agent,
)
from bot.agent.llm import retry_after
from bot.agent.llm_prompt import LlmDecision, Offer, decision_schema
from bot.core.settings import Settings, load_settings
from tests.support.fake_openai import (
    GOOD,
    MALFORMED_JSON,
    OFF_SCHEMA,
    REFUSAL,
    SERVER_ERROR,
    VPN_REQUEST,
    FakeOpenAI,
    Reply,
    answer,
    decision,
    rate_limited,
    slow,
)

TIMEOUT = 0.2
API_KEY = "sk-test-4f9a2c7e1b8d6a3f5e0c"
TICKET = TicketInput(
    ticket_id=42,
    description=VPN_REQUEST,
    issue_type=VPN_REQUEST,
    user_id="U0SECRETUSER",
    user_name="Ada Lovelace",
    department="Finance",
)


class Recorder:
    """Collects record() calls."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, **kwargs) -> None:
        self.calls.append(kwargs)

    @property
    def only(self) -> dict:
        assert len(self.calls) == 1, self.calls
        return self.calls[0]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    import os

    for name in list(os.environ):
        if name.lower() in Settings.model_fields or name.startswith("OPENAI_"):
            monkeypatch.delenv(name)


@pytest.fixture()
def fake():
    with FakeOpenAI() as running:
        yield running


@pytest.fixture()
def sleeps() -> list[float]:
    """The waits between attempts the agents asked for (none really happen)."""
    return []


@pytest.fixture()
def make_agent(fake, sleeps):
    made: list[LlmAgent] = []

    def make(*, retries: int = 2, failures: int = 5, api_key: str | None = API_KEY,
             reset: timedelta = timedelta(seconds=60)) -> LlmAgent:
        agent = LlmAgent(fake.base_url, model="gpt-test", api_key=api_key, timeout=TIMEOUT,
                         retries=retries, breaker=CircuitBreaker(failure_threshold=failures,
                                                                 reset_timeout=reset),
                         teams=["Service Desk", "Network", "Identity & Access"],
                         backoff=0.01, sleep=sleeps.append)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.close()


# What is sent ---------------------------------------------------------------------------

def test_the_prompt_holds_the_request_the_top_articles_teams_and_a_strict_schema(fake, make_agent):
    make_agent().analyse(TICKET)

    [request] = fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    body = request.body
    assert body["model"] == "gpt-test"
    system, user = body["messages"]
    assert (system["role"], user) == ("system", {"role": "user", "content": VPN_REQUEST})
    # The best-matching shipped article, with its steps, is what the model chooses from.
    assert "VPN won't connect or keeps disconnecting" in system["content"]
    assert "Quit the VPN client completely" in system["content"]
    assert "Teams: Service Desk, Network, Identity & Access" in system["content"]
    # Only the words of the request: no ticket number, requester id, name or department.
    for private in ("U0SECRETUSER", "Ada Lovelace", "Finance", "ticket"):
        assert private not in request.raw.decode()

    format_ = body["response_format"]
    assert format_["type"] == "json_schema"
    assert format_["json_schema"]["strict"] is True
    schema = format_["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"]) == set(LlmDecision.model_fields)
    offered = schema["properties"]["article_id"]["anyOf"][0]["enum"]
    assert offered[0] == "vpn" and len(offered) <= 3
    assert "max_retries" not in body and "user" not in body


def test_a_request_no_article_fits_offers_none(fake, make_agent):
    fake.answer(answer(decision(recommended_action="request_clarification", article_id=None,
                                confidence=0.5, steps=[], success_probability=0.0,
                                questions=["Which app is it?"], category="other")))
    result = make_agent().analyse(TicketInput(ticket_id=1, description="it is broken again"))
    system = fake.requests[0].body["messages"][0]["content"]
    assert "No knowledge-base article matches this request." in system
    schema = fake.requests[0].body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["article_id"] == {"type": "null"}
    assert result.recommended_action == "request_clarification"
    assert result.extra["questions"] == ["Which app is it?"]
    assert result.source == "llm"


def test_no_token_or_secret_ever_reaches_the_model(fake, monkeypatch):
    monkeypatch.setenv("OPENAI_ORG_ID", "org-from-the-environment")
    settings = load_settings(
        llm_base_url=fake.base_url, llm_model="gpt-test", llm_api_key=API_KEY,
        slack_bot_token="xoxb-1111-2222-abcdefghijkl", slack_signing_secret="8f14e45fceea167a5a36",
        database_url="postgresql://app:db-pass-9876@db/rmq",
    )
    agent = build_agent(settings)
    pasted = ("VPN fails, here is everything: xoxb-1111-2222-abcdefghijkl, signing 8f14e45fceea167a5a36, "
              f"key {API_KEY}, db-pass-9876, and my other token xoxp-99-88-77")
    try:
        agent.analyse(TicketInput(ticket_id=7, description=pasted, user_id="U777"))
    finally:
        agent.close()

    [request] = fake.requests
    sent = request.raw.decode()
    for secret in ("xoxb-1111-2222-abcdefghijkl", "8f14e45fceea167a5a36", API_KEY, "db-pass-9876",
                   "xoxp-99-88-77", "U777"):
        assert secret not in sent
    assert "VPN fails, here is everything: [redacted], signing [redacted]" in sent
    # The key travels only as the endpoint's credential, and nothing from OPENAI_* goes along.
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert not any(name.lower().startswith("openai-") for name in request.headers)
    assert "xoxb" not in json.dumps(request.headers)


def test_without_a_key_no_authorization_header_is_sent(fake, make_agent):
    make_agent(api_key=None).analyse(TICKET)
    assert "authorization" not in {name.lower() for name in fake.requests[0].headers}


# What comes back ------------------------------------------------------------------------

def test_a_good_answer_becomes_the_same_decision_as_other_agents(fake, sleeps, make_agent):
    record = Recorder()
    result = make_agent().analyse(TICKET, record=record)

    assert result.recommended_action == "auto_resolve"
    assert result.confidence == 0.92
    assert result.category == "vpn" and result.suggested_team == "Network"
    assert result.steps[0] == "Quit the VPN client completely and reconnect."
    # The model said 0.9; the article's measured 0.85 is the ceiling.
    assert result.success_probability == 0.85
    assert result.estimated_time == "10 minutes"
    assert result.source == "llm:vpn"
    assert record.only == {**record.only, "agent": "llm", "ok": True, "attempts": 1, "error": ""}
    assert sleeps == []


def test_steps_and_team_come_from_the_cited_article_when_the_model_gives_none(fake, make_agent):
    fake.answer(answer(decision(steps=[], suggested_team=None, recommended_action="assign_to_team")))
    result = make_agent().analyse(TICKET)
    assert result.steps[0].startswith("Check that your internet works")
    assert result.suggested_team == "Network"


def test_malformed_json_is_a_malformed_answer_asked_once(fake, make_agent):
    fake.answer(MALFORMED_JSON)
    agent = make_agent()
    record = Recorder()
    with pytest.raises(MalformedAnswer, match="not valid JSON"):
        agent.analyse(TICKET, record=record)
    assert fake.count == 1  # the endpoint answered: asking again gets the same kind of answer
    assert agent.breaker.failures == 1
    assert record.only["ok"] is False and "not valid JSON" in record.only["error"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (decision(confidence=1.7), "confidence"),
        (decision(confidence="0.9"), "confidence"),
        (decision(success_probability=-0.1), "success_probability"),
        ({k: v for k, v in decision().items() if k != "reasoning"}, "reasoning"),
        (decision(severity="low"), "severity"),
        (decision(recommended_action="reboot_the_router"), "recommended_action"),
        (decision(category="coffee"), "category"),
        (decision(article_id="printer"), "did not offer"),
        (decision(suggested_team="Facilities"), "teams offered"),
        (decision(article_id=None), "auto_resolve without"),
        (decision(steps=["x"] * 11), "steps"),
        ([decision()], "answer"),
    ],
    ids=["confidence-range", "confidence-text", "success-range", "missing-field", "extra-field",
         "unknown-action", "unknown-category", "article-not-offered", "team-not-offered",
         "auto-resolve-without-article", "too-many-steps", "not-an-object"],
)
def test_an_off_schema_answer_is_malformed(fake, make_agent, content, message):
    fake.answer(answer(content))
    record = Recorder()
    with pytest.raises(MalformedAnswer, match=message):
        make_agent().analyse(TICKET, record=record)
    assert fake.count == 1
    assert record.only["ok"] is False
    # The error names the field, never the model's text.
    assert "drops at home" not in record.only["error"]


def test_auto_resolve_of_an_article_that_is_not_self_service_breaks_the_rules(fake, make_agent):
    fake.answer(answer(decision(article_id="shared_drive_access", category="access",
                                suggested_team="Identity & Access")))
    with pytest.raises(MalformedAnswer, match="self-service"):
        make_agent().analyse(
            TicketInput(ticket_id=3, description="I need access to the finance shared drive"))


@pytest.mark.parametrize("reply", [REFUSAL, Reply(content=None, finish_reason="content_filter")],
                         ids=["refusal", "content-filter"])
def test_a_refusal_is_a_malformed_answer_but_not_a_breaker_failure(fake, make_agent, reply):
    fake.answer(reply)
    agent = make_agent(failures=1)
    record = Recorder()
    with pytest.raises(RefusedAnswer) as raised:
        agent.analyse(TICKET, record=record)
    assert isinstance(raised.value, MalformedAnswer)
    assert fake.count == 1
    assert agent.breaker.state == "closed"  # the endpoint works; the next ticket asks it
    assert record.only["ok"] is False
    assert "refused" in record.only["error"] or "content filter" in record.only["error"]


def test_an_answer_cut_off_at_the_token_limit_is_malformed(fake, make_agent):
    fake.answer(Reply(content='{"recommended_action": "esc', finish_reason="length"))
    with pytest.raises(MalformedAnswer, match="cut off"):
        make_agent().analyse(TICKET)


@pytest.mark.parametrize("body", [[1, 2], "hello", {"choices": []}], ids=["list", "text", "no-choices"])
def test_a_reply_that_is_no_chat_completion_is_malformed(fake, make_agent, body):
    fake.answer(Reply(body=body))
    with pytest.raises(MalformedAnswer, match="not a chat completion"):
        make_agent().analyse(TICKET)


# Timeouts, retries, rate limits, the breaker ---------------------------------------------

@pytest.mark.parametrize(("reply", "wait"), [
    (rate_limited("1"), 1.0),
    (rate_limited("250", header="retry-after-ms"), 0.25),
])
def test_429_with_a_short_retry_after_is_waited_out_then_retried(fake, sleeps, make_agent, reply, wait):
    fake.answer(reply, GOOD)
    record = Recorder()
    result = make_agent().analyse(TICKET, record=record)
    assert result.recommended_action == "auto_resolve"
    assert sleeps == [wait]
    assert fake.count == 2
    assert record.only["ok"] is True and record.only["attempts"] == 2


def test_429_asking_for_a_long_wait_ends_the_call_at_once(fake, sleeps, make_agent):
    fake.answer(rate_limited("120"), GOOD)
    agent = make_agent()
    record = Recorder()
    with pytest.raises(AgentUnavailable, match="asks to wait 120 s") as raised:
        agent.analyse(TICKET, record=record)
    assert not isinstance(raised.value, MalformedAnswer)
    assert fake.count == 1 and sleeps == []
    assert agent.breaker.failures == 1
    assert record.only["attempts"] == 1


def test_429_without_retry_after_backs_off_and_gives_up_after_bounded_attempts(fake, sleeps, make_agent):
    fake.answer(*[rate_limited(None)] * 3)
    record = Recorder()
    with pytest.raises(AgentUnavailable, match="after 3 attempt.*HTTP 429"):
        make_agent(retries=2).analyse(TICKET, record=record)
    assert fake.count == 3
    assert sleeps == [0.01, 0.02]
    assert record.only["attempts"] == 3 and "HTTP 429" in record.only["error"]


def test_a_slow_model_times_out_after_bounded_attempts(fake, make_agent):
    fake.answer(slow(TIMEOUT * 3), slow(TIMEOUT * 3), GOOD)
    record = Recorder()
    with pytest.raises(AgentUnavailable, match="timed out after 0.2 s"):
        make_agent(retries=1).analyse(TICKET, record=record)
    assert fake.count == 2
    assert record.only["attempts"] == 2
    assert record.only["latency_ms"] >= 2 * TIMEOUT * 1000 * 0.9


def test_5xx_is_retried_and_a_4xx_is_not(fake, sleeps, make_agent):
    fake.answer(SERVER_ERROR, GOOD)
    assert make_agent().analyse(TICKET).confidence == 0.92
    assert fake.count == 2 and sleeps == [0.01]

    fake.answer(Reply(status=401, body={"error": {"message": f"Incorrect API key {API_KEY[:8]}"}}), GOOD)
    record = Recorder()
    with pytest.raises(AgentUnavailable, match="HTTP 401") as raised:
        make_agent().analyse(TICKET, record=record)
    assert fake.count == 3
    assert API_KEY[:8] not in str(raised.value)  # the error body is not repeated


def test_the_breaker_opens_and_then_no_request_is_made(fake, make_agent):
    fake.answer(SERVER_ERROR, OFF_SCHEMA)
    agent = make_agent(retries=0, failures=2)
    for _ in range(2):
        with pytest.raises(AgentUnavailable):
            agent.analyse(TICKET)
    assert fake.count == 2

    record = Recorder()
    with pytest.raises(AgentUnavailable, match="circuit open"):
        agent.analyse(TICKET, record=record)
    assert fake.count == 2
    assert record.only["ok"] is False and record.only["attempts"] == 0


# The critical check ---------------------------------------------------------------------

def test_the_critical_check_wins_and_the_model_is_not_asked(fake, make_agent):
    agent = make_agent(retries=0, failures=1)
    fake.answer(SERVER_ERROR)
    with pytest.raises(AgentUnavailable):
        agent.analyse(TICKET)  # the circuit is now open ...
    asked = fake.count

    record = Recorder()
    result = agent.analyse(
        TicketInput(ticket_id=9, description="I clicked a phishing link in an Outlook email"),
        record=record)
    # ... and still a security incident is escalated, by the embedded check, without the model.
    assert fake.count == asked
    assert (result.recommended_action, result.severity) == ("escalate", "critical")
    assert result.suggested_team == "Security" and result.category == "security"
    assert "phishing" in result.reasoning
    assert result.source == "critical:security_incident"
    assert record.only == {**record.only, "ok": True, "attempts": 0}


# Pieces ---------------------------------------------------------------------------------

def test_the_schema_sent_and_the_pydantic_model_agree():
    schema = decision_schema(Offer(articles=(), teams=("Network",)))["json_schema"]["schema"]
    assert list(schema["properties"]) == list(LlmDecision.model_fields)
    assert schema["properties"]["recommended_action"]["enum"] == [
        "assign_to_team", "auto_resolve", "escalate", "request_clarification"]
    assert schema["properties"]["suggested_team"] == {
        "anyOf": [{"type": "string", "enum": ["Network"]}, {"type": "null"}]}


def test_retry_after_reads_seconds_milliseconds_and_dates():
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        assert retry_after({"retry-after": "3"}) == 3.0
        assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
        assert retry_after({"retry-after": format_datetime(now + timedelta(seconds=30), usegmt=True)}) == 30
        assert retry_after({"retry-after": "soon"}) is None
        assert retry_after({}) is None


def test_a_blank_description_is_refused(make_agent):
    with pytest.raises(ValueError, match="no description"):
        make_agent().analyse(TicketInput(ticket_id=1, description="  \n"))


def test_the_requesters_words_are_not_logged_above_debug(fake, caplog, make_agent):
    fake.answer(SERVER_ERROR, MALFORMED_JSON)
    caplog.set_level(logging.INFO, logger="bot.agent")
    with pytest.raises(MalformedAnswer):
        make_agent().analyse(TICKET)
    assert caplog.records
    assert "disconnecting" not in caplog.text


def test_build_agent_picks_the_llm_agent_with_the_shared_agent_settings():
    settings = load_settings(llm_base_url="http://127.0.0.1:11434/v1", llm_model="llama3.1",
                             agent_timeout=20, agent_retries=1, agent_breaker_failures=3)
    agent = build_agent(settings)
    try:
        assert isinstance(agent, LlmAgent) and agent.name == "llm"
        assert (agent.base_url, agent.model) == ("http://127.0.0.1:11434/v1", "llama3.1")
        assert (agent.timeout, agent.retries, agent.breaker.failure_threshold) == (20.0, 1, 3)
        assert settings.default_team in agent.teams
    finally:
        agent.close()
