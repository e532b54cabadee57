"""Which decision is handed off (bot.workflows.dispatch.DecisionKind), and detail or a
reply that arrives while another decision runs: real PostgreSQL and Redis, the fake
Slack, a scripted agent, and the Celery task called as a worker calls it.

A decision reads the conversation when it claims the ticket; what the requester adds
meanwhile waits, its own decision finds the ticket claimed, and the decision that held
the claim decides again right after, on the new text.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core import clock
from bot.delivery.slack_client import make_web_client
from bot.domain import conversation, requester
from bot.workflows import announce
from models import ActionHistory, ActionType, Ticket, TicketMessage, TicketStatus, transaction
from tests.support.factories import make_ticket
from tests.support.scripted_agent import AnswersInTurn, vpn_answer

CHANNEL, THREAD = "CHELP", "1732528000.000200"
UNSURE = vpn_answer(confidence=0.35, action="request_clarification")
SURE = vpn_answer()


def _ticket(sessions, *, status=TicketStatus.NEW) -> int:
    with transaction(sessions) as session:
        ticket = make_ticket(session, user_id="UREQ", description="it keeps dropping", status=status)
        ticket.slack_channel_id, ticket.slack_thread_ts = CHANNEL, THREAD
        return ticket.ticket_id


def _actions(sessions, ticket_id) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(ActionHistory.action_type).where(
            ActionHistory.ticket_id == ticket_id).order_by(ActionHistory.executed_at)))


def _waiting(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(TicketMessage)
                              .where(TicketMessage.decided_action_id.is_(None)))


def _add_detail(sessions, ticket_id, text):
    with transaction(sessions) as session:
        return requester.add_detail(session, ticket_id=ticket_id, user_id="UREQ", text=text)


@pytest.fixture()
def client(listener_runtime):
    return make_web_client(listener_runtime.settings, timeout=2)


def test_detail_added_while_the_first_decision_runs_is_decided_right_after_on_the_new_text(
        listener_runtime, client, committing_factory):
    ticket_id = _ticket(committing_factory)
    told: list = []

    class Interrupted(AnswersInTurn):
        def analyse(self, ticket, *, record=None):
            if not self.seen:  # the requester adds detail from App Home while the agent thinks
                assert _add_detail(committing_factory, ticket_id, "it is the VPN").redecide
                # Its own decision (as the dispatch seam runs it) finds the ticket claimed.
                told.append(announce.redecide_waiting(listener_runtime, client, ticket_id))
            return super().analyse(ticket, record=record)

    agent = listener_runtime.agent = Interrupted(UNSURE, SURE)
    outcome = announce.decide_and_announce(listener_runtime, client, ticket_id)

    assert [o.already_processed for o in told] == [True]
    # The first decision read the request alone; the one right after it, the detail too.
    assert [t.description for t in agent.seen] == ["it keeps dropping", "it keeps dropping\n\nit is the VPN"]
    assert _actions(committing_factory, ticket_id) == [ActionType.REQUEST_CLARIFICATION,
                                                       ActionType.AUTO_RESOLVE]
    assert outcome.ticket.status == TicketStatus.RESOLVED and _waiting(committing_factory) == 0


def test_a_reply_written_while_a_re_decision_routes_the_ticket_is_still_decided_right_after(
        listener_runtime, client, committing_factory):
    # The bot asked; the requester replied; while that reply is decided (and the agent
    # routes the ticket to a team: it no longer awaits them), they write again.
    ticket_id = _ticket(committing_factory)
    listener_runtime.agent = AnswersInTurn(UNSURE)
    announce.decide_and_announce(listener_runtime, client, ticket_id)
    with transaction(committing_factory) as session:
        assert conversation.add_reply(session, channel=CHANNEL, thread_ts=THREAD, ts="1732528100.000300",
                                      user_id="UREQ", text="since this morning").created

    class Interrupted(AnswersInTurn):
        def analyse(self, ticket, *, record=None):
            if not self.seen:
                with transaction(committing_factory) as session:
                    assert conversation.add_reply(session, channel=CHANNEL, thread_ts=THREAD,
                                                  ts="1732528101.000300", user_id="UREQ",
                                                  text="it is the VPN").created
            return super().analyse(ticket, record=record)

    routed = vpn_answer(confidence=0.7, action="assign_to_team")
    agent = listener_runtime.agent = Interrupted(routed, SURE)
    outcome = announce.redecide_and_announce(listener_runtime, client, ticket_id)

    assert agent.seen[-1].description == "it keeps dropping\n\nsince this morning\n\nit is the VPN"
    assert _actions(committing_factory, ticket_id)[-1] == ActionType.AUTO_RESOLVE
    assert outcome.ticket.status == TicketStatus.RESOLVED and _waiting(committing_factory) == 0


def test_detail_for_a_ticket_a_person_has_is_not_decided_by_the_bot_nor_swept(
        listener_runtime, client, committing_factory):
    ticket_id = _ticket(committing_factory, status=TicketStatus.IN_PROGRESS)
    with transaction(committing_factory) as session:
        session.get(Ticket, ticket_id).assigned_to = "UAGENT"
    assert not _add_detail(committing_factory, ticket_id, "it is the VPN").redecide
    listener_runtime.agent = AnswersInTurn(SURE)

    assert announce.redecide_waiting(listener_runtime, client, ticket_id).already_processed
    with committing_factory() as session:
        assert conversation.stale_replies(session, now=clock.now() + timedelta(hours=1),
                                          grace=timedelta(minutes=5)) == []
    assert _actions(committing_factory, ticket_id) == []


def test_the_worker_task_runs_the_kind_of_decision_it_is_given_once(
        listener_runtime, client, committing_factory, monkeypatch):
    from jobs import tasks

    monkeypatch.setattr(tasks, "_context", (listener_runtime, client))
    ticket_id = _ticket(committing_factory)
    listener_runtime.agent = AnswersInTurn(UNSURE, SURE)

    assert tasks.decide_ticket.run(ticket_id) == "decided"
    assert tasks.decide_ticket.run(ticket_id, kind="new") == "already decided"
    # Nothing added yet: a re-decision has nothing to decide.
    assert tasks.decide_ticket.run(ticket_id, kind="reply") == "already decided"
    with transaction(committing_factory) as session:
        conversation.add_reply(session, channel=CHANNEL, thread_ts=THREAD, ts="1732528100.000300",
                               user_id="UREQ", text="it is the VPN")
    assert tasks.decide_ticket.run(ticket_id, kind="reply") == "decided"
    assert tasks.decide_ticket.run(ticket_id, kind="reply") == "already decided"
    assert tasks.decide_ticket.run(ticket_id, kind="detail") == "already decided"
    assert tasks.decide_ticket.run(ticket_id, kind="sideways") == "unknown kind"
    assert _actions(committing_factory, ticket_id) == [ActionType.REQUEST_CLARIFICATION,
                                                       ActionType.AUTO_RESOLVE]
