"""The clarification loop's rules on both backends: a reply is added once and decided
once however many deliveries and workers race, rounds count decisions (not messages),
CLARIFICATION_ROUNDS=0 never asks, and the migration goes up and down."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from bot.core import clock
from bot.core.settings import load_settings
from bot.delivery.slack_client import make_web_client
from bot.domain import conversation, retention
from bot.domain.ratelimit import AutonomyBudget, make_storage
from bot.domain.rollback import apply_rollback, lock_target
from bot.domain.triage_causes import TriageCause, cause_of
from bot.platform import migrations
from bot.workflows.decision import decide_ticket
from models import ActionHistory, ActionType, AuditEvent, Ticket, TicketMessage, TicketStatus, transaction
from models.session import make_engine
from tests.support.databases import PG_DATABASE, recreate_database
from tests.support.factories import make_ticket
from tests.support.interleave import all_read_first
from tests.support.scripted_agent import AnswersInTurn, ScriptedAgent, vpn_answer

CHANNEL, THREAD = "CHELP", "1732528000.000200"
UNSURE = vpn_answer(confidence=0.35, action="request_clarification")


@pytest.fixture()
def budget(settings, redis_url, namespace):
    return AutonomyBudget(settings, make_storage(redis_url), namespace=namespace)


def _asked(sessions, settings, budget) -> int:
    """A ticket the bot asked about in CHANNEL's thread THREAD."""
    with transaction(sessions) as session:
        ticket = make_ticket(session, user_id="UREQ", description="it keeps dropping")
        ticket.slack_channel_id, ticket.slack_thread_ts = CHANNEL, THREAD
        ticket_id = ticket.ticket_id
    outcome = decide_ticket(sessions, ticket_id, agent=ScriptedAgent(UNSURE), budget=budget,
                            settings=settings).outcome
    assert outcome.ticket.status == TicketStatus.AWAITING_USER
    return ticket_id


def _reply(sessions, ts: str, text: str = "it is the VPN", user: str = "UREQ"):
    with transaction(sessions) as session:
        return conversation.add_reply(session, channel=CHANNEL, thread_ts=THREAD, ts=ts, user_id=user,
                                      text=text, event_id=f"Ev{ts.replace('.', '')}")


def _redecide(sessions, ticket_id, agent, budget, settings):
    return decide_ticket(sessions, ticket_id, agent=agent, budget=budget, settings=settings,
                         statuses=conversation.AWAITING, when=conversation.has_waiting_reply()).outcome


def _count(sessions, model, *where) -> int:
    with transaction(sessions) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_concurrent_deliveries_of_one_reply_add_it_once(racing_factory, settings, budget):
    ticket_id = _asked(racing_factory, settings, budget)
    barrier = threading.Barrier(4)
    created = []

    def deliver():
        barrier.wait()
        created.append(_reply(racing_factory, "1732528100.000300").created)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    with all_read_first(racing_factory.kw["bind"], r"FROM ticket_messages", parties=4):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(created) == [False, False, False, True]
    assert _count(racing_factory, TicketMessage) == 1
    assert _count(racing_factory, AuditEvent, AuditEvent.event_type == conversation.CLARIFICATION_REPLY,
                  AuditEvent.ticket_id == ticket_id) == 1


def test_two_workers_on_one_reply_decide_it_once(racing_factory, settings, budget):
    ticket_id = _asked(racing_factory, settings, budget)
    _reply(racing_factory, "1732528100.000300")
    agent = ScriptedAgent(vpn_answer())
    barrier = threading.Barrier(2)

    def work():
        barrier.wait()
        _redecide(racing_factory, ticket_id, agent, budget, settings)

    threads = [threading.Thread(target=work) for _ in range(2)]
    with all_read_first(racing_factory.kw["bind"], r"\btickets\b"):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(agent.seen) == 1
    assert _count(racing_factory, ActionHistory, ActionHistory.ticket_id == ticket_id) == 2
    assert _count(racing_factory, TicketMessage, TicketMessage.decided_action_id.is_(None)) == 0


def test_rounds_count_decisions_and_the_last_allowed_round_goes_to_people(committing_factory, settings,
                                                                          budget):
    ticket_id = _asked(committing_factory, settings, budget)
    # Two messages before the bot answers are one round.
    _reply(committing_factory, "1732528100.000300", "since this morning")
    _reply(committing_factory, "1732528101.000300", "on the laptop")
    agent = ScriptedAgent(UNSURE)
    first = _redecide(committing_factory, ticket_id, agent, budget, settings)
    assert first.action.action_type == ActionType.REQUEST_CLARIFICATION
    assert agent.seen[-1].description == "it keeps dropping\n\nsince this morning\n\non the laptop"
    # Someone else in the thread is not the requester: not a reply.
    assert _reply(committing_factory, "1732528150.000300", "me too", user="UOTHER") is None

    _reply(committing_factory, "1732528200.000300", "still dropping")
    second = _redecide(committing_factory, ticket_id, agent, budget, settings)

    assert second.action.action_type == ActionType.ESCALATE and second.action.autonomous is False
    assert second.triage_reason == "no confident answer after 2 rounds of questions"
    # The policy working as set: recorded, not reported as a failure.
    assert cause_of(second) == TriageCause.CLARIFICATION_ROUNDS and cause_of(second).deliberate
    assert second.ticket.status == TicketStatus.ESCALATED
    assert _reply(committing_factory, "1732528300.000300", "hello?") is None  # no longer awaited


def test_with_no_rounds_allowed_an_unsure_ticket_goes_to_people_without_a_question(
        committing_factory, pg_url, redis_url, namespace):
    settings = load_settings(database_url=pg_url, clarification_rounds=0)
    budget = AutonomyBudget(settings, make_storage(redis_url), namespace=namespace)
    with transaction(committing_factory) as session:
        ticket_id = make_ticket(session).ticket_id

    outcome = decide_ticket(committing_factory, ticket_id, agent=ScriptedAgent(UNSURE), budget=budget,
                            settings=settings).outcome

    assert outcome.action.action_type == ActionType.ESCALATE and outcome.action.action_params["triage"]
    assert outcome.action.action_params["suggestion"]["action_type"] == ActionType.REQUEST_CLARIFICATION
    assert "CLARIFICATION_ROUNDS=0" in outcome.triage_reason


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_migration_adds_and_drops_ticket_messages(backend, tmp_path):
    url = (recreate_database(f"{PG_DATABASE}_0013c") if backend == "postgresql"
           else f"sqlite:///{tmp_path / 'm.db'}")
    migrations.upgrade(url, "0012")
    migrations.upgrade(url)
    engine = make_engine(url)
    inspector = sa.inspect(engine)
    assert "ticket_messages" in inspector.get_table_names()
    assert "ix_tickets_slack_channel_id_slack_thread_ts" in {
        i["name"] for i in inspector.get_indexes("tickets")}
    migrations.downgrade(url, "0012")
    inspector = sa.inspect(engine)
    assert "ticket_messages" not in inspector.get_table_names()
    assert "ix_tickets_slack_channel_id_slack_thread_ts" not in {
        i["name"] for i in inspector.get_indexes("tickets")}
    migrations.upgrade(url)
    engine.dispose()


def test_after_an_admin_rolls_back_the_redecision_the_bot_leaves_the_ticket_to_people(
        committing_factory, settings, budget):
    ticket_id = _asked(committing_factory, settings, budget)
    _reply(committing_factory, "1732528100.000300")
    resolved = _redecide(committing_factory, ticket_id, ScriptedAgent(vpn_answer()), budget, settings)
    assert resolved.action.action_type == ActionType.AUTO_RESOLVE
    with transaction(committing_factory) as session:
        apply_rollback(session, *lock_target(session, session.get(ActionHistory, resolved.action.id)),
                       by="UADMIN", reason="wrong answer", now=clock.now())
    with transaction(committing_factory) as session:
        assert session.get(Ticket, ticket_id).status == TicketStatus.AWAITING_USER  # as before the answer

    assert _reply(committing_factory, "1732528200.000300", "still broken") is None
    with transaction(committing_factory) as session:
        later = clock.now() + timedelta(days=3)
        assert conversation.timed_out(session, now=later, timeout=settings.clarification_timeout) == []
        assert conversation.stale_replies(session, now=later, grace=settings.sweep_grace) == []
    assert _count(committing_factory, TicketMessage) == 1


def test_replies_older_than_the_retention_are_redacted(committing_factory, settings, budget):
    _asked(committing_factory, settings, budget)
    _reply(committing_factory, "1732528100.000300", "my laptop's serial is 12345")
    now = clock.now() + timedelta(days=31)

    with transaction(committing_factory) as session:
        counts = retention.redact(session, cutoff=now - timedelta(days=30), now=now)

    assert counts["ticket_messages"] == 1
    with transaction(committing_factory) as session:
        [reply] = session.scalars(select(TicketMessage)).all()
        assert reply.text == retention.REDACTED
        assert retention.redact(session, cutoff=now - timedelta(days=30), now=now)["ticket_messages"] == 0


def test_a_reply_written_while_the_last_one_is_decided_is_decided_right_after(
        committing_factory, settings, budget, redis_url, namespace, pg_url):
    from bot.sandbox.standin import SlackStandIn
    from bot.workflows import announce
    from bot.workflows.runtime import Runtime

    ticket_id = _asked(committing_factory, settings, budget)
    _reply(committing_factory, "1732528100.000300", "since this morning")

    class Interrupted(AnswersInTurn):
        def analyse(self, ticket, *, record=None):
            if len(self.seen) == 0:  # the requester writes again while the agent thinks
                assert _reply(committing_factory, "1732528101.000300", "on the laptop").created
            return super().analyse(ticket, record=record)

    agent = Interrupted(UNSURE)
    with SlackStandIn() as fake:
        runtime = Runtime.from_settings(load_settings(database_url=pg_url, redis_url=redis_url,
                                                      slack_api_url=fake.base_url,
                                                      slack_bot_token=fake.token), namespace=namespace)
        runtime.agent = agent
        try:
            outcome = announce.redecide_and_announce(runtime, make_web_client(runtime.settings, timeout=2),
                                                     ticket_id)
        finally:
            runtime.engine.dispose()

    assert [t.description for t in agent.seen] == [
        "it keeps dropping\n\nsince this morning",
        "it keeps dropping\n\nsince this morning\n\non the laptop"]
    assert outcome.triage_reason == "no confident answer after 2 rounds of questions"
    assert _count(committing_factory, TicketMessage, TicketMessage.decided_action_id.is_(None)) == 0
