"""A decision claims its ticket, asks the agent with no transaction open, then acts if
the claim still holds; one that fails is recorded, retried, and after three failures
sent to people; the sweep goes on past it. On PostgreSQL and on the embedded SQLite."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select, text, update

from bot.agent.answer import AgentAnswer, TicketInput
from bot.core import clock
from bot.core.settings import load_settings
from bot.delivery.slack_client import make_web_client
from bot.domain import processing
from bot.platform import migrations
from bot.sandbox.standin import SlackStandIn
from bot.workflows import periodic
from bot.workflows.decision import decide_ticket
from bot.workflows.runtime import Runtime
from models import (
    ActionHistory,
    ActionType,
    AgentCall,
    Ticket,
    TicketSource,
    TicketStatus,
    make_engine,
    transaction,
)
from tests.support.factories import make_ticket
from tests.support.fake_agent import Reply, good_answer, running_fake_agent
from tests.support.scripted_agent import ScriptedAgent, vpn_answer

CHANNEL = "CHELP"
BROKEN = "BROKEN: this one makes the agent code fail"


@pytest.fixture()
def fake():
    with SlackStandIn() as slack:
        yield slack


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request, tmp_path):
    if request.param == "postgresql":
        request.getfixturevalue("committing_factory")  # empties the tables afterwards
        return request.getfixturevalue("pg_url")
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    migrations.upgrade(url)
    return url


@pytest.fixture()
def make_runtime(database_url, fake, settings, namespace):
    """A runtime on the backend under test (limits in memory), with the agent given."""
    made = []

    def build(agent=None, **overrides) -> Runtime:
        config = load_settings(database_url=database_url, slack_api_url=fake.base_url,
                               slack_bot_token=fake.token, **overrides)
        runtime = Runtime.from_settings(config, namespace=namespace)
        made.append(runtime)
        return dataclasses.replace(runtime, agent=agent) if agent is not None else runtime

    yield build
    for runtime in made:
        runtime.engine.dispose()


class BrokenFor(ScriptedAgent):
    """Answers like ScriptedAgent, but for requests naming BROKEN it records its call and
    then fails as a bug would (not as an agent outage)."""

    def analyse(self, ticket: TicketInput, *, record=None) -> AgentAnswer:
        if "BROKEN" not in ticket.description:
            return super().analyse(ticket, record=record)
        self.seen.append(ticket)
        if record:
            record(agent=self.name, ok=True, latency_ms=1.0, attempts=1, error="")
        raise RuntimeError("the agent's answer broke our code\nsecond line with the ticket text")


def _stale_ticket(runtime, description="My VPN keeps disconnecting") -> int:
    with transaction(runtime.sessions) as session:
        ticket = make_ticket(session, description=description,
                             created_at=clock.now() - timedelta(minutes=5))
        ticket.source, ticket.slack_channel_id = TicketSource.SLASH_COMMAND, CHANNEL
        return ticket.ticket_id


def _ticket(runtime, ticket_id) -> Ticket:
    with transaction(runtime.sessions) as session:
        return session.get(Ticket, ticket_id)


def _count(runtime, model, *where) -> int:
    with transaction(runtime.sessions) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def _decide(runtime, ticket_id, **kwargs):
    return decide_ticket(runtime.sessions, ticket_id, agent=runtime.agent, budget=runtime.budget,
                         settings=runtime.settings, **kwargs).outcome


# ----- no transaction while the agent answers (point 10) ------------------------------


class Meddler(ScriptedAgent):
    """While it answers, someone else changes the ticket, waiting at most a second for
    its row (PostgreSQL) or the write lock (SQLite); on PostgreSQL it also counts the
    connections idle in a transaction."""

    def __init__(self, url: str):
        super().__init__()
        self.url = url
        self.idle_in_transaction: int | None = None

    def analyse(self, ticket: TicketInput, *, record=None) -> AgentAnswer:
        postgres = self.url.startswith("postgresql")
        engine = make_engine(self.url, connect_args={"options": "-c lock_timeout=1000"} if postgres
                             else {"timeout": 1, "check_same_thread": False})
        try:
            with engine.begin() as conn:
                conn.execute(update(Ticket).where(Ticket.ticket_id == ticket.ticket_id)
                             .values(user_name="edited while the agent answered"))
                if postgres:
                    self.idle_in_transaction = conn.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND state = 'idle in transaction'")).scalar()
        finally:
            engine.dispose()
        return super().analyse(ticket, record=record)


def test_no_transaction_or_lock_is_held_while_the_agent_answers(make_runtime, database_url):
    agent = Meddler(database_url)
    runtime = make_runtime(agent)
    ticket_id = _stale_ticket(runtime)
    outcome = runtime.process(ticket_id)
    assert outcome.action.action_type == ActionType.AUTO_RESOLVE
    ticket = _ticket(runtime, ticket_id)
    assert ticket.user_name == "edited while the agent answered"  # the edit waited for nothing
    assert (ticket.claim_token, ticket.claimed_until, ticket.decision_attempts) == (None, None, 0)
    if database_url.startswith("postgresql"):
        assert agent.idle_in_transaction == 0


def test_a_dead_workers_claim_holds_until_it_expires_then_the_sweep_takes_over(make_runtime, fake):
    agent = ScriptedAgent()
    runtime = make_runtime(agent)
    client = make_web_client(runtime.settings, timeout=2)
    ticket_id = _stale_ticket(runtime)
    with transaction(runtime.sessions) as session:  # a worker claims it, then dies
        processing.claim_ticket(session, ticket_id, now=clock.now(), ttl=runtime.settings.claim_ttl)

    assert _decide(runtime, ticket_id).already_processed and agent.seen == []
    assert periodic.sweep_new_tickets(runtime, client) == 0
    with time_machine.travel(clock.now() + runtime.settings.claim_ttl + timedelta(seconds=1)):
        assert periodic.sweep_new_tickets(runtime, client) == 1
        assert periodic.sweep_new_tickets(runtime, client) == 0
    ticket = _ticket(runtime, ticket_id)
    assert ticket.status == TicketStatus.RESOLVED and ticket.decision_error == processing.DIED
    assert _count(runtime, ActionHistory) == 1 and len(agent.seen) == 1
    assert len(fake.messages(CHANNEL)) == 1


def test_an_answer_that_comes_after_a_takeover_is_dropped(make_runtime):
    # The first worker's agent is slower than the claim: meanwhile the claim expires, a
    # second worker takes it over and acts. The first answer must not act a second time.
    second = ScriptedAgent(vpn_answer(action="escalate"))
    runtime = make_runtime()

    class Slow(ScriptedAgent):
        def analyse(self, ticket, *, record=None):
            with time_machine.travel(clock.now() + runtime.settings.claim_ttl + timedelta(seconds=1)):
                taken_over = _decide(dataclasses.replace(runtime, agent=second), ticket.ticket_id)
            assert not taken_over.already_processed
            return super().analyse(ticket, record=record)

    ticket_id = _stale_ticket(runtime)
    late = _decide(dataclasses.replace(runtime, agent=Slow()), ticket_id)
    assert late.already_processed
    [action] = _actions(runtime)
    assert action.action_type == ActionType.ESCALATE  # the second worker's
    assert _count(runtime, AgentCall) == 2  # both calls were made, both are counted


def _actions(runtime) -> list[ActionHistory]:
    with transaction(runtime.sessions) as session:
        return list(session.scalars(select(ActionHistory)))


# ----- a failing decision: recorded, retried, then people (point 3) --------------------


def test_a_failing_decision_is_recorded_retried_and_after_three_goes_to_people(make_runtime):
    runtime = make_runtime(BrokenFor())
    ticket_id = _stale_ticket(runtime, BROKEN)
    for attempt in (1, 2):
        with pytest.raises(RuntimeError, match="broke our code"):
            _decide(runtime, ticket_id)
        ticket = _ticket(runtime, ticket_id)
        assert (ticket.status, ticket.claim_token, ticket.decision_attempts) == (
            TicketStatus.NEW, None, attempt)
        assert ticket.decision_error == "RuntimeError: the agent's answer broke our code"
        # The calls outlive the failed decision: the agent-error alert counts them.
        assert _count(runtime, AgentCall) == attempt

    outcome = _decide(runtime, ticket_id)
    assert (outcome.action.action_type, outcome.action.autonomous) == (ActionType.ESCALATE, False)
    assert outcome.triage_reason == (
        "the bot failed to decide on it 3 times (last: RuntimeError: the agent's answer broke our code)")
    assert outcome.action.action_params["triage"] is True
    assert "second line" not in outcome.action.agent_reasoning
    assert _ticket(runtime, ticket_id).status == TicketStatus.ESCALATED
    assert _count(runtime, AgentCall) == 3


def test_a_ticket_whose_workers_died_three_times_goes_to_people_without_the_agent(make_runtime):
    agent = ScriptedAgent()
    runtime = make_runtime(agent)
    ticket_id = _stale_ticket(runtime)
    now = clock.now()
    for _ in range(3):
        with transaction(runtime.sessions) as session:
            assert processing.claim_ticket(session, ticket_id, now=now, ttl=timedelta(seconds=1))
        now += timedelta(seconds=2)
    with time_machine.travel(now):
        outcome = _decide(runtime, ticket_id)
    assert agent.seen == []
    assert outcome.triage_reason == f"the bot failed to decide on it 3 times (last: {processing.DIED})"


def test_one_bad_ticket_never_stops_the_sweep_and_spends_no_autonomy(make_runtime, fake):
    runtime = make_runtime(BrokenFor(), max_autonomous_actions_per_minute=2)
    client = make_web_client(runtime.settings, timeout=2)
    bad = _stale_ticket(runtime, BROKEN)  # the oldest: the sweep meets it first
    good = [_stale_ticket(runtime, "My VPN keeps disconnecting") for _ in range(2)]

    assert periodic.sweep_new_tickets(runtime, client) == 2
    assert periodic.sweep_new_tickets(runtime, client) == 0
    assert periodic.sweep_new_tickets(runtime, client) == 1

    for ticket_id in good:  # both units of the cap went to them: the failures took none
        [action] = [a for a in _actions(runtime) if a.ticket_id == ticket_id]
        assert (action.action_type, action.autonomous) == (ActionType.AUTO_RESOLVE, True)
    assert _ticket(runtime, bad).status == TicketStatus.ESCALATED
    told = [m["text"] for m in fake.messages(CHANNEL)]
    assert len(told) == 3 and any("failed to decide on it 3 times" in t for t in told)


def test_an_agent_answer_with_a_nul_and_an_overlong_team_is_decided_not_stuck(make_runtime, fake):
    # From the wire: PostgreSQL refuses NUL in text and JSON, and the team was longer
    # than tickets.assigned_team; the decision's flush failed, every minute, and the
    # sweep never reached the tickets behind it.
    with running_fake_agent() as agent:
        agent.answer(Reply(body=good_answer(
            reasoning="Stale client session.\u0000 Reconnect.",
            analysis={"category": "vpn", "severity": "low", "suggested_team": "Network" + "!" * 150})))
        runtime = make_runtime(agent_url=agent.url, max_autonomous_actions_per_minute=2)
        client = make_web_client(runtime.settings, timeout=2)
        odd, plain = _stale_ticket(runtime), _stale_ticket(runtime)
        assert periodic.sweep_new_tickets(runtime, client) == 2
        runtime.agent.close()
    odd_action, plain_action = sorted(_actions(runtime), key=lambda a: a.ticket_id)
    assert (odd_action.ticket_id, plain_action.ticket_id) == (odd, plain)
    assert odd_action.action_type == plain_action.action_type == ActionType.AUTO_RESOLVE
    ticket = _ticket(runtime, odd)
    assert ticket.assigned_team == ("Network" + "!" * 150)[:100]
    assert ticket.agent_response["reasoning"] == "Stale client session. Reconnect."
    assert len(fake.messages(CHANNEL)) == 2
