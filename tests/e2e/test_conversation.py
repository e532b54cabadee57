"""The clarification loop end to end: `resolvemeq serve` with the embedded agent, signed
events over HTTP, the fake Slack. A vague DM gets questions; the requester's reply in
that thread is decided with it, on the same ticket; a second delivery of the reply and
messages that are not replies change nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.views import ActionId
from models import ActionHistory, ActionType, OutboxPurpose, SlackOutbox, Ticket, TicketMessage
from tests.support.harness import CHANNEL, REQUESTER, STRANGER, shown, wait_until

DM = "D0REQUESTER"
USER_TS = "1732528000.000200"
REPLY_TS = "1732528100.000300"
VPN = "My VPN keeps disconnecting when I work from home"


def _dm(text, *, ts, **extra):
    return {"type": "message", "channel_type": "im", "channel": DM, "user": REQUESTER,
            "text": text, "ts": ts, "event_ts": ts, **extra}


def _one_ticket(sessions) -> Ticket:
    with sessions() as session:
        return session.scalars(select(Ticket)).one()


def _count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def _button(blocks, action_id):
    for block in blocks or []:
        for element in [*(block.get("elements") or []), block.get("accessory") or {}]:
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no button {action_id}")


@pytest.fixture(autouse=True)
def _settled(e2e, e2e_sessions):
    """Let the server deliver what it owes before `e2e` empties the tables."""
    yield

    def pending():
        with e2e_sessions() as session:
            return session.scalar(
                select(SlackOutbox.id).where(SlackOutbox.status == "pending",
                                             SlackOutbox.purpose != OutboxPurpose.FOLLOWUP).limit(1))

    wait_until(lambda: pending() is None, what="the server to deliver what it owes")


def test_a_vague_dm_then_a_reply_in_its_thread_resolves_the_same_ticket(e2e, slack, e2e_sessions):
    assert e2e.event(_dm("help", ts=USER_TS)).status_code == 200
    [question] = slack.wait_for("chat.postMessage")
    assert question.args["thread_ts"] == USER_TS and "Reply in this thread" in shown(question.args)
    wait_until(lambda: _one_ticket(e2e_sessions).status == "awaiting_user", what="the question")

    # Not replies: another person in the thread, chatter in a channel, the bot's own post.
    for event in (_dm("me too", ts="1732528050.000001", thread_ts=USER_TS, user=STRANGER),
                  {**_dm("lunch?", ts="1732528050.000002"), "channel": CHANNEL, "channel_type": "channel"},
                  _dm("a bot", ts="1732528050.000003", thread_ts=USER_TS, bot_id="B0BOT")):
        assert e2e.event(event).status_code == 200
    reply = _dm(VPN, ts=REPLY_TS, thread_ts=USER_TS)
    assert e2e.event(reply, event_id="Ev0REPLY").status_code == 200
    assert e2e.event(reply, event_id="Ev0REPLY", retry=1).status_code == 200

    answer = slack.wait_for("chat.postMessage", count=2)[1]
    assert (answer.args["channel"], answer.args["thread_ts"]) == (DM, USER_TS)
    assert "I think I can fix ticket *#1*" in shown(answer.args)
    _button(answer.args["blocks"], ActionId.FEEDBACK_YES)
    ticket = wait_until(lambda: (t := _one_ticket(e2e_sessions)).status == "resolved" and t,
                        what="the re-decision")
    with e2e_sessions() as session:
        actions = session.scalars(select(ActionHistory).where(ActionHistory.ticket_id == ticket.ticket_id)
                                  .order_by(ActionHistory.executed_at)).all()
        [stored] = session.scalars(select(TicketMessage)).all()
    assert [a.action_type for a in actions] == [ActionType.REQUEST_CLARIFICATION, ActionType.AUTO_RESOLVE]
    assert (stored.text, stored.decided_action_id) == (VPN, actions[1].id)
    assert _count(e2e_sessions, Ticket) == 1
