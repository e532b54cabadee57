"""The clarification loop, through the real app in process (signed events, real
PostgreSQL and Redis, the fake Slack): the requester's reply in the thread of the bot's
question joins the same ticket, which is decided again on the whole conversation; after
CLARIFICATION_ROUNDS rounds, or no reply within CLARIFICATION_TIMEOUT (a job, with moved
time), the ticket goes to people with the conversation and the requester is told.
"""

from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from bot.delivery.slack_client import make_web_client
from bot.domain import conversation
from bot.workflows import announce, periodic
from models import ActionHistory, ActionType, AuditEvent, Base, Ticket, TicketMessage, transaction
from tests.support.harness import CHANNEL, ESCALATIONS, REQUESTER, STRANGER, shown, wait_until
from tests.support.scripted_agent import AnswersInTurn, vpn_answer

DM = "D0REQUESTER"
USER_TS = "1732528000.000200"
FIRST = "it keeps dropping"
# Low band: the bot asks for detail.
UNSURE = vpn_answer(confidence=0.35, action="request_clarification")


# Helpers ------------------------------------------------------------------------------

def _dm(text: str, ts: str, *, thread_ts: str | None = None, **extra) -> dict:
    event = {"type": "message", "channel_type": "im", "channel": DM, "user": REQUESTER,
             "text": text, "ts": ts, "event_ts": ts, **extra}
    return {**event, "thread_ts": thread_ts} if thread_ts else event


def _in_channel(text: str, ts: str, *, thread_ts: str | None = None, **extra) -> dict:
    event = {"type": "message", "channel_type": "channel", "channel": CHANNEL, "user": REQUESTER,
             "text": text, "ts": ts, "event_ts": ts, **extra}
    return {**event, "thread_ts": thread_ts} if thread_ts else event


def _ticket(sessions) -> Ticket:
    with sessions() as session:
        return session.scalars(select(Ticket)).one()


def _awaiting(sessions) -> Ticket:
    """Wait until the bot's question on the one ticket was posted and remembered."""
    def asked():
        ticket = _ticket(sessions)
        return ticket if ticket.status == "awaiting_user" and ticket.slack_message_ts else None

    return wait_until(asked, what="the bot's question")


def _actions(sessions, ticket_id: int) -> list[ActionHistory]:
    with sessions() as session:
        return session.scalars(select(ActionHistory).where(ActionHistory.ticket_id == ticket_id)
                               .order_by(ActionHistory.executed_at, ActionHistory.id)).all()


def _replies(sessions) -> list[TicketMessage]:
    with sessions() as session:
        return session.scalars(select(TicketMessage).order_by(TicketMessage.id)).all()


def _counts(sessions) -> dict[str, int]:
    with sessions() as session:
        return {t.name: session.scalar(select(func.count()).select_from(t))
                for t in Base.metadata.sorted_tables}


def _posts_in(slack, channel: str) -> list:
    return [c for c in slack.calls("chat.postMessage") if c.args.get("channel") == channel]


def _asked_in_dm(bolt, slack, sessions) -> Ticket:
    bolt.event(_dm(FIRST, USER_TS))
    [question] = slack.wait_for("chat.postMessage")
    assert question.args["thread_ts"] == USER_TS and "more detail" in shown(question.args)
    return _awaiting(sessions)


# A reply re-decides the same ticket ---------------------------------------------------------

def test_a_reply_in_the_dm_thread_joins_the_ticket_and_it_is_decided_again(
        bolt, slack, listener_runtime, committing_factory):
    agent = listener_runtime.agent = AnswersInTurn(UNSURE, vpn_answer())
    ticket = _asked_in_dm(bolt, slack, committing_factory)

    answer = bolt.event(_dm("It is the VPN, when I work from home", "1732528100.000300",
                            thread_ts=USER_TS))

    assert (answer.status_code, answer.text) == (200, "")
    posts = slack.wait_for("chat.postMessage", 2)
    assert (posts[1].args["channel"], posts[1].args["thread_ts"]) == (DM, USER_TS)
    decided = wait_until(lambda: (t := _ticket(committing_factory)).status == "resolved" and t,
                         what="the re-decision")
    assert decided.ticket_id == ticket.ticket_id  # the same ticket, not a new one
    assert agent.seen[1].description == f"{FIRST}\n\nIt is the VPN, when I work from home"
    asked, resolved = _actions(committing_factory, ticket.ticket_id)
    assert (asked.action_type, resolved.action_type) == (ActionType.REQUEST_CLARIFICATION,
                                                         ActionType.AUTO_RESOLVE)
    [reply] = _replies(committing_factory)
    assert (reply.author_id, reply.decided_action_id) == (REQUESTER, resolved.id)
    with committing_factory() as session:
        [audited] = session.scalars(select(AuditEvent).where(
            AuditEvent.event_type == conversation.CLARIFICATION_REPLY)).all()
    assert (audited.actor_id, audited.ticket_id) == (REQUESTER, ticket.ticket_id)
    assert audited.detail == {"message_id": reply.id, "round": 1}


def test_a_reply_delivered_twice_is_added_and_decided_once(bolt, slack, listener_runtime, committing_factory):
    agent = listener_runtime.agent = AnswersInTurn(UNSURE, vpn_answer())
    _asked_in_dm(bolt, slack, committing_factory)
    reply = _dm("It is the VPN", "1732528100.000300", thread_ts=USER_TS)

    assert bolt.event(reply, event_id="Ev0REPLY").status_code == 200
    assert bolt.event(reply, event_id="Ev0REPLY", retry=1).status_code == 200
    bolt.settled()

    assert len(_replies(committing_factory)) == 1 and len(agent.seen) == 2
    assert len(slack.calls("chat.postMessage")) == 2


def test_a_mention_in_the_thread_of_the_question_is_a_reply_not_a_new_ticket(
        bolt, slack, listener_runtime, committing_factory):
    listener_runtime.agent = AnswersInTurn(UNSURE, vpn_answer())
    bolt.event({"type": "app_mention", "channel": CHANNEL, "user": REQUESTER,
                "text": f"<@UBOT> {FIRST}", "ts": USER_TS, "event_ts": USER_TS})
    _awaiting(committing_factory)
    reply_ts = "1732528100.000300"

    bolt.event({"type": "app_mention", "channel": CHANNEL, "user": REQUESTER, "thread_ts": USER_TS,
                "text": "<@UBOT> it is the VPN", "ts": reply_ts, "event_ts": reply_ts})
    # Slack also sends the same message as a message.channels event.
    bolt.event(_in_channel("<@UBOT> it is the VPN", reply_ts, thread_ts=USER_TS))
    bolt.settled()

    assert _ticket(committing_factory).status == "resolved"  # one ticket, decided again
    [reply] = _replies(committing_factory)
    assert reply.text == "it is the VPN"
    assert len(_posts_in(slack, CHANNEL)) == 2


# What is dropped before any write -----------------------------------------------------------

def test_messages_that_are_not_the_requesters_reply_write_nothing(
        bolt, slack, listener_runtime, committing_factory):
    agent = listener_runtime.agent = AnswersInTurn(UNSURE)
    _asked_in_dm(bolt, slack, committing_factory)
    before = _counts(committing_factory)

    dropped = [
        _dm("the bot itself", "1732528100.000001", thread_ts=USER_TS, bot_id="B0BOT"),
        _dm("an edit", "1732528100.000002", thread_ts=USER_TS, subtype="message_changed"),
        _dm("someone else", "1732528100.000003", thread_ts=USER_TS, user=STRANGER),
        _dm("another thread", "1732528100.000004", thread_ts="1732520000.000100"),
        _in_channel("chatter in a channel", "1732528100.000005"),
        _in_channel("a thread in a channel", "1732528100.000006", thread_ts="1732520000.000100"),
        # The ticket's thread, but in another channel.
        _in_channel("same ts elsewhere", "1732528100.000007", thread_ts=USER_TS),
        _dm("   ", "1732528100.000008", thread_ts=USER_TS),
    ]
    for event in dropped:
        answer = bolt.event(event)
        assert (answer.status_code, answer.text) == (200, ""), event
    bolt.settled()

    assert _counts(committing_factory) == before
    assert len(agent.seen) == 1 and len(slack.calls("chat.postMessage")) == 1
    assert _ticket(committing_factory).status == "awaiting_user"


# Round limit and timeout: people take it ------------------------------------------------------

def test_after_the_rounds_allowed_the_ticket_goes_to_triage_with_the_conversation(
        bolt, slack, listener_runtime, committing_factory):
    agent = listener_runtime.agent = AnswersInTurn(UNSURE)
    bolt.event({"type": "app_mention", "channel": CHANNEL, "user": REQUESTER,
                "text": f"<@UBOT> {FIRST}", "ts": USER_TS, "event_ts": USER_TS})
    ticket = _awaiting(committing_factory)

    bolt.event(_in_channel("since this morning", "1732528100.000300", thread_ts=USER_TS))
    second = slack.wait_for("chat.postMessage", 2)[1]
    assert second.args["thread_ts"] == USER_TS and "more detail" in shown(second.args)  # round 1 of 2
    bolt.settled()
    bolt.event(_in_channel("on <!channel> & the laptop", "1732528200.000400", thread_ts=USER_TS))
    bolt.settled()

    assert len(agent.seen) == 3
    assert agent.seen[2].description == f"{FIRST}\n\nsince this morning\n\non <!channel> & the laptop"
    triaged = _actions(committing_factory, ticket.ticket_id)[-1]
    assert triaged.action_type == ActionType.ESCALATE and triaged.action_params["triage"] is True
    assert triaged.action_params["suggestion"]["action_type"] == ActionType.REQUEST_CLARIFICATION
    assert _ticket(committing_factory).status == "escalated"
    told = _posts_in(slack, CHANNEL)[-1]
    assert told.args["thread_ts"] == USER_TS
    assert "will pick this up: no confident answer after 2 rounds of questions" in shown(told.args)
    [notice] = _posts_in(slack, ESCALATIONS)
    seen = shown(notice.args)
    assert FIRST in seen and "since this morning" in seen
    assert "&lt;!channel&gt; &amp; the laptop" in seen and "<!channel>" not in seen  # escaped


def test_no_reply_within_the_timeout_sends_the_ticket_to_people_and_tells_the_requester(
        bolt, slack, listener_runtime, committing_factory):
    listener_runtime.agent = AnswersInTurn(UNSURE)
    ticket = _asked_in_dm(bolt, slack, committing_factory)
    bolt.settled()
    client = make_web_client(listener_runtime.settings, timeout=2)
    asked_at = _actions(committing_factory, ticket.ticket_id)[0].executed_at

    with time_machine.travel(asked_at + timedelta(hours=23), tick=False):
        assert periodic.expire_clarifications(listener_runtime, client) == 0
    with time_machine.travel(asked_at + timedelta(hours=24, minutes=1), tick=False):
        assert periodic.expire_clarifications(listener_runtime, client) == 1
        assert periodic.expire_clarifications(listener_runtime, client) == 0

    assert _ticket(committing_factory).status == "escalated"
    triaged = _actions(committing_factory, ticket.ticket_id)[-1]
    assert triaged.action_params["triage"] is True and triaged.autonomous is False
    assert triaged.action_params["triage_cause"] == "clarification_timeout"
    told = _posts_in(slack, DM)[-1]
    assert told.args["thread_ts"] == USER_TS
    assert "no reply to the bot's questions within 24 hours" in shown(told.args)
    [notice] = _posts_in(slack, ESCALATIONS)
    assert FIRST in shown(notice.args)
    # Too late: the ticket no longer waits for a reply, so nothing is added.
    bolt.event(_dm("here is the detail", "1732628100.000300", thread_ts=USER_TS))
    bolt.settled()
    assert _replies(committing_factory) == []


def test_a_waiting_reply_stops_the_timeout(bolt, slack, listener_runtime, committing_factory):
    listener_runtime.agent = AnswersInTurn(UNSURE)
    ticket = _asked_in_dm(bolt, slack, committing_factory)
    bolt.settled()
    # A reply stored, its decision never run (the process died after the ack).
    with transaction(committing_factory) as session:
        assert conversation.add_reply(session, channel=DM, thread_ts=USER_TS, ts="1732528100.000300",
                                      user_id=REQUESTER, text="it is the VPN") is not None
    later = _actions(committing_factory, ticket.ticket_id)[0].executed_at + timedelta(days=2)
    client = make_web_client(listener_runtime.settings, timeout=2)

    with time_machine.travel(later, tick=False):
        assert periodic.expire_clarifications(listener_runtime, client) == 0
        listener_runtime.agent = AnswersInTurn(vpn_answer())
        assert periodic.sweep_new_tickets(listener_runtime, client) == 1  # the reply is decided
        assert periodic.sweep_new_tickets(listener_runtime, client) == 0

    assert _ticket(committing_factory).status == "resolved"
    assert _replies(committing_factory)[0].decided_action_id is not None


def test_a_reply_is_decided_once_by_two_workers(bolt, slack, listener_runtime, committing_factory):
    listener_runtime.agent = AnswersInTurn(UNSURE, UNSURE)
    ticket = _asked_in_dm(bolt, slack, committing_factory)
    bolt.settled()
    with transaction(committing_factory) as session:
        conversation.add_reply(session, channel=DM, thread_ts=USER_TS, ts="1732528100.000300",
                               user_id=REQUESTER, text="it is the VPN")
    client = make_web_client(listener_runtime.settings, timeout=2)

    first = announce.redecide_and_announce(listener_runtime, client, ticket.ticket_id)
    # Asked again: still awaiting the requester, but no reply waits for a decision.
    second = announce.redecide_and_announce(listener_runtime, client, ticket.ticket_id)

    assert first.action.action_type == ActionType.REQUEST_CLARIFICATION and not first.already_processed
    assert second.already_processed
    assert len(_actions(committing_factory, ticket.ticket_id)) == 2
