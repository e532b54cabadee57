"""The HTTP agent against a local fake of the reference agent service."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine

from bot.agent import (
    AgentUnavailable,
    CircuitBreaker,
    HttpAgent,
    KnowledgeBaseAgent,
    MalformedAnswer,
    TicketInput,
    build_agent,
)
from bot.core.settings import load_settings
from tests.support.fake_agent import (
    BAD_REQUEST,
    MALFORMED_JSON,
    OK,
    SERVER_ERROR,
    TOO_MANY,
    UNKNOWN_ACTION,
    WRONG_TYPES,
    Reply,
    good_answer,
    running_fake_agent,
    slow,
)

TIMEOUT = 0.2
TICKET = TicketInput(
    ticket_id=42,
    description="VPN keeps disconnecting when I work from home",
    issue_type="VPN keeps disconnecting",
    category="vpn",
    tags=("remote", "vpn"),
    user_id="U123",
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


@pytest.fixture()
def fake():
    with running_fake_agent() as running:
        yield running


@pytest.fixture()
def sleeps() -> list[float]:
    """The backoff sleeps the agents asked for (none really happen)."""
    return []


@pytest.fixture()
def make_agent(sleeps):
    """Build HttpAgents with a fast, recorded backoff; close them after the test."""
    made: list[HttpAgent] = []

    def make(url: str, *, retries: int = 2, failures: int = 5,
             reset: timedelta = timedelta(seconds=60)) -> HttpAgent:
        breaker = CircuitBreaker(failure_threshold=failures, reset_timeout=reset)
        agent = HttpAgent(url, timeout=TIMEOUT, retries=retries, breaker=breaker,
                          backoff=0.01, sleep=sleeps.append)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.close()


def test_posts_the_reference_wire_format(fake, make_agent):
    make_agent(fake.url).analyse(TICKET)

    [request] = fake.requests
    assert request.method == "POST"
    assert request.path == "/api/agent/analyze"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {
        "ticket_id": 42,
        "issue_type": "VPN keeps disconnecting",
        "description": "VPN keeps disconnecting when I work from home",
        "category": "vpn",
        "tags": ["remote", "vpn"],
        "user": {"id": "U123", "name": "Ada Lovelace", "department": "Finance"},
    }


def test_parses_a_good_answer_and_records_one_success(fake, sleeps, make_agent):
    record = Recorder()
    answer = make_agent(fake.url).analyse(TICKET, record=record)

    assert answer.confidence == 0.91
    assert answer.recommended_action == "auto_resolve"
    assert answer.suggested_team == "Network"
    assert answer.steps == ("Quit the VPN client", "Reconnect")
    assert answer.success_probability == 0.88
    assert answer.source == "http"
    call = record.only
    assert call["agent"] == "http" and call["ok"] is True
    assert call["attempts"] == 1 and call["error"] == ""
    assert call["latency_ms"] >= 0
    assert sleeps == []


def test_missing_suggested_team_comes_from_the_routing_table(fake, make_agent):
    body = good_answer(analysis={"category": "printer", "severity": "low"})
    fake.answer(Reply(body=body))
    answer = make_agent(fake.url).analyse(TICKET)
    assert answer.suggested_team == "Desktop Support"


def test_retries_5xx_and_429_with_backoff_then_succeeds(fake, sleeps, make_agent):
    fake.answer(SERVER_ERROR, TOO_MANY, OK)
    record = Recorder()
    answer = make_agent(fake.url, retries=2).analyse(TICKET, record=record)

    assert answer.recommended_action == "auto_resolve"
    assert fake.count == 3
    assert sleeps == [0.01, 0.02]  # exponential: base, then doubled
    assert record.only["ok"] is True and record.only["attempts"] == 3


def test_gives_up_after_bounded_attempts(fake, make_agent):
    fake.answer(SERVER_ERROR, SERVER_ERROR, SERVER_ERROR, SERVER_ERROR)
    record = Recorder()
    with pytest.raises(AgentUnavailable, match="after 3 attempt.*HTTP 500"):
        make_agent(fake.url, retries=2).analyse(TICKET, record=record)
    assert fake.count == 3
    call = record.only
    assert call["ok"] is False and call["attempts"] == 3 and "HTTP 500" in call["error"]


def test_a_4xx_is_not_retried(fake, sleeps, make_agent):
    fake.answer(BAD_REQUEST, OK)
    record = Recorder()
    with pytest.raises(AgentUnavailable, match="HTTP 400") as raised:
        make_agent(fake.url, retries=2).analyse(TICKET, record=record)
    assert not isinstance(raised.value, MalformedAnswer)
    assert fake.count == 1
    assert sleeps == []
    assert record.only["ok"] is False and record.only["attempts"] == 1


def test_a_slow_agent_times_out_after_bounded_attempts(fake, make_agent):
    fake.answer(slow(TIMEOUT * 3), slow(TIMEOUT * 3), OK)
    record = Recorder()
    with pytest.raises(AgentUnavailable, match="timed out"):
        make_agent(fake.url, retries=1).analyse(TICKET, record=record)
    assert fake.count == 2
    assert record.only["attempts"] == 2 and "timed out" in record.only["error"]
    assert record.only["latency_ms"] >= 2 * TIMEOUT * 1000 * 0.9


def test_connection_refused_is_retried_then_unavailable(sleeps, make_agent):
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    record = Recorder()
    with pytest.raises(AgentUnavailable, match="connection failed"):
        make_agent(f"http://127.0.0.1:{port}/", retries=2).analyse(TICKET, record=record)
    assert record.only["attempts"] == 3 and len(sleeps) == 2


@pytest.mark.parametrize("reply", [MALFORMED_JSON, WRONG_TYPES, Reply(body=[1, 2, 3])],
                         ids=["bad-json", "wrong-types", "not-an-object"])
def test_malformed_answers_raise_and_count_as_failures(fake, reply, make_agent):
    fake.answer(reply)
    agent = make_agent(fake.url, retries=2)
    record = Recorder()
    with pytest.raises(MalformedAnswer):
        agent.analyse(TICKET, record=record)
    assert fake.count == 1  # the service answered: asking again gets the same answer
    assert agent.breaker.failures == 1
    assert record.only["ok"] is False and record.only["error"]


def test_an_unknown_action_parses_for_human_triage(fake, make_agent):
    fake.answer(UNKNOWN_ACTION)
    answer = make_agent(fake.url).analyse(TICKET)
    assert answer.recommended_action == "reboot_the_router"
    assert answer.recommendation_known is False


def test_breaker_opens_and_then_no_request_is_made(fake, make_agent):
    fake.answer(SERVER_ERROR, SERVER_ERROR, OK)
    agent = make_agent(fake.url, retries=0, failures=2)
    for _ in range(2):
        with pytest.raises(AgentUnavailable):
            agent.analyse(TICKET)
    assert fake.count == 2

    record = Recorder()
    with pytest.raises(AgentUnavailable, match="circuit open"):
        agent.analyse(TICKET, record=record)
    assert fake.count == 2
    call = record.only
    assert call["ok"] is False and call["attempts"] == 0 and "circuit open" in call["error"]


def test_retries_within_one_call_count_once_for_the_breaker(fake, make_agent):
    fake.answer(SERVER_ERROR, SERVER_ERROR, SERVER_ERROR)
    agent = make_agent(fake.url, retries=2, failures=2)
    with pytest.raises(AgentUnavailable):
        agent.analyse(TICKET)
    assert agent.breaker.failures == 1
    assert agent.breaker.state == "closed"


@pytest.mark.parametrize("trial_ok", [True, False])
def test_half_open_trial_after_reset_timeout(fake, trial_ok, make_agent):
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False) as traveller:
        fake.answer(SERVER_ERROR)
        agent = make_agent(fake.url, retries=0, failures=1, reset=timedelta(seconds=30))
        with pytest.raises(AgentUnavailable):
            agent.analyse(TICKET)
        traveller.shift(timedelta(seconds=29))
        with pytest.raises(AgentUnavailable, match="circuit open"):
            agent.analyse(TICKET)
        assert fake.count == 1

        traveller.shift(timedelta(seconds=1))
        fake.answer(OK if trial_ok else SERVER_ERROR)
        if trial_ok:
            assert agent.analyse(TICKET).confidence == 0.91
            assert agent.breaker.state == "closed"
        else:
            with pytest.raises(AgentUnavailable, match="HTTP 500"):
                agent.analyse(TICKET)
            assert agent.breaker.state == "open"
            with pytest.raises(AgentUnavailable, match="circuit open"):
                agent.analyse(TICKET)
        assert fake.count == 2


def test_description_is_not_logged_above_debug(fake, caplog, make_agent):
    fake.answer(SERVER_ERROR, MALFORMED_JSON)
    caplog.set_level(logging.INFO, logger="bot.agent")
    with pytest.raises(MalformedAnswer):
        make_agent(fake.url).analyse(TICKET)
    assert caplog.records  # the failed attempt was logged ...
    assert "disconnecting" not in caplog.text  # ... without the requester's words


def test_a_client_passed_in_is_used_and_left_open(fake):
    client = httpx.Client()
    agent = HttpAgent(fake.url, timeout=TIMEOUT, retries=0, breaker=CircuitBreaker(),
                      client=client)
    agent.analyse(TICKET)
    agent.close()
    assert not client.is_closed
    client.close()


def test_build_agent_picks_http_when_agent_url_is_set():
    settings = load_settings(agent_url="http://agent.internal:8080/api/analyze", agent_timeout=3,
                             agent_retries=1, agent_breaker_failures=7, agent_breaker_reset="2m")
    agent = build_agent(settings)
    assert isinstance(agent, HttpAgent)
    assert agent.url == "http://agent.internal:8080/api/analyze"
    assert (agent.timeout, agent.retries) == (3.0, 1)
    assert agent.breaker.failure_threshold == 7
    assert agent.breaker.reset_timeout == timedelta(minutes=2)
    agent.close()


def test_build_agent_defaults_to_the_knowledge_base():
    agent = build_agent(load_settings(agent_url=None))
    assert isinstance(agent, KnowledgeBaseAgent)
    assert agent.name == "knowledge_base"
