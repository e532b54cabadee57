"""Intake end to end: tickets from /ticket, DMs and @-mentions, and what the bot answers.

Everything goes over signed HTTP to the real `resolvemeq serve`. A ticket is stored
before the request is acknowledged, so "no ticket" is checked as soon as the
response is back; "no post" is checked after a later ticket's answer has arrived.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.sandbox.standin import SlackStandIn
from bot.views import ActionId
from models import (
    ActionHistory,
    ActionType,
    AuditEvent,
    EscalationPriority,
    OutboxPurpose,
    SlackOutbox,
    Ticket,
    TicketSource,
    TicketStatus,
)
from tests.support.databases import E2E_REDIS_URL
from tests.support.harness import CHANNEL, ESCALATIONS, REQUESTER, Server, wait_until
from tests.support.harness import shown as _shown

VPN = "My VPN keeps disconnecting when I work from home"
DM = "D0REQUESTER"
USER_TS = "1732528000.000200"
INJECTION = "<!channel> <!here> <@U123> & <https://evil|x>"
RAW = ("<!channel>", "<!here>", "<@U123>", "<https://evil|x>")


# Helpers ---------------------------------------------------------------------------

def _dm(text, *, ts=USER_TS, **extra):
    return {"type": "message", "channel_type": "im", "channel": DM, "user": REQUESTER,
            "text": text, "ts": ts, "event_ts": ts, **extra}


def _mention(text, *, ts=USER_TS, channel=CHANNEL, **extra):
    return {"type": "app_mention", "channel": channel, "user": REQUESTER, "text": text,
            "ts": ts, "event_ts": ts, **extra}


def _tickets(sessions):
    with sessions() as session:
        return session.scalars(select(Ticket).order_by(Ticket.ticket_id)).all()


def _actions(sessions, ticket_id):
    with sessions() as session:
        return session.scalars(
            select(ActionHistory).where(ActionHistory.ticket_id == ticket_id)
        ).all()


def _answered(sessions, ticket_id=None):
    """Wait until a ticket's answer was posted and its place remembered; return the ticket."""
    def done():
        for ticket in _tickets(sessions):
            if (ticket_id is None or ticket.ticket_id == ticket_id) and ticket.slack_message_ts:
                return ticket
        return None

    return wait_until(done, what="the ticket's answer to be posted")


def _posts(slack, channel=None):
    return [c for c in slack.calls("chat.postMessage")
            if channel is None or c.args.get("channel") == channel]


def _button(blocks, action_id):
    for block in blocks or []:
        for element in [*(block.get("elements") or []), block.get("accessory") or {}]:
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no button {action_id}")


@pytest.fixture(autouse=True)
def _settled(e2e, e2e_sessions):
    """Before `e2e` empties the tables, let the server finish the posts it owes.

    A post is marked sent in a transaction after Slack answered; a TRUNCATE racing
    that transaction deadlocks and leaves the next test a dirty database.
    """
    yield

    def pending():
        with e2e_sessions() as session:
            # A follow-up DM is owed a day later, not now.
            return session.scalar(
                select(SlackOutbox.id).where(SlackOutbox.status == "pending",
                                             SlackOutbox.purpose != OutboxPurpose.FOLLOWUP).limit(1))

    wait_until(lambda: pending() is None, what="the server to deliver what it owes")


# DMs and mentions -------------------------------------------------------------------

def test_a_dm_opens_a_ticket_answered_in_the_dm_thread(e2e, slack, e2e_sessions):
    response = e2e.event(_dm(VPN))
    assert response.status_code == 200

    [post] = slack.wait_for("chat.postMessage")
    assert post.outcome == "ok"
    assert post.args["channel"] == DM and post.args["thread_ts"] == USER_TS
    assert "I think I can fix ticket *#1*" in _shown(post.args)
    _button(post.args["blocks"], ActionId.FEEDBACK_YES)
    ticket = _answered(e2e_sessions)
    assert ticket.source == TicketSource.DM and ticket.user_id == REQUESTER and ticket.description == VPN
    assert ticket.slack_channel_id == DM and ticket.slack_thread_ts == USER_TS
    assert [a.action_type for a in _actions(e2e_sessions, ticket.ticket_id)] == [ActionType.AUTO_RESOLVE]


def test_a_mention_opens_a_ticket_without_the_bots_mention(e2e, slack, e2e_sessions):
    response = e2e.event(_mention("<@UBOT> the printer on floor 3 is jammed and won't print"))
    assert response.status_code == 200

    [post] = slack.wait_for("chat.postMessage")
    assert post.args["channel"] == CHANNEL and post.args["thread_ts"] == USER_TS
    ticket = _answered(e2e_sessions)
    assert ticket.source == TicketSource.MENTION
    assert ticket.description == "the printer on floor 3 is jammed and won't print"
    assert "<@UBOT>" not in json.dumps(post.args)


NOT_REQUESTS = {
    "bot message": _dm("I think I can fix that", subtype="bot_message", bot_id="BBOT",
                       user="UBOT"),
    "bot's own post": _dm("Ticket #1: here is a fix to try", bot_id="BBOT", user="UBOT"),
    "edit": {**_dm(""), "subtype": "message_changed", "hidden": True,
             "message": {"type": "message", "user": REQUESTER, "text": VPN + " (edited)",
                         "ts": "1732527999.000100", "edited": {"user": REQUESTER,
                                                              "ts": USER_TS}},
             "previous_message": {"type": "message", "user": REQUESTER, "text": VPN,
                                  "ts": "1732527999.000100"}},
    "deletion": {**_dm(""), "subtype": "message_deleted", "hidden": True,
                 "deleted_ts": "1732527999.000100"},
    "thread reply": _dm("still broken, any news?", thread_ts="1732527999.000100"),
    "mention by a bot": _mention("<@UBOT> " + VPN, bot_id="B0OTHER", user="U0OTHERBOT"),
}


@pytest.mark.parametrize("event", NOT_REQUESTS.values(), ids=NOT_REQUESTS.keys())
def test_bot_posts_edits_and_thread_replies_open_no_ticket(e2e, slack, e2e_sessions, event):
    assert e2e.event(event).status_code == 200
    assert _tickets(e2e_sessions) == []

    # A real request afterwards is answered, and it is the only thing posted.
    assert e2e.event(_dm(VPN, ts="1732528100.000300")).status_code == 200
    _answered(e2e_sessions)
    assert [t.description for t in _tickets(e2e_sessions)] == [VPN]
    assert [c.args["thread_ts"] for c in _posts(slack)] == ["1732528100.000300"]


@pytest.mark.parametrize("channel_type", ["channel", "group", "mpim"])
def test_a_plain_message_outside_a_dm_opens_no_ticket(e2e, slack, e2e_sessions, channel_type):
    event = {**_dm(VPN), "channel_type": channel_type, "channel": CHANNEL}
    assert e2e.event(event).status_code == 200
    assert _tickets(e2e_sessions) == []


@pytest.mark.parametrize("together", [False, True], ids=["retry-after", "retry-racing"])
def test_an_events_api_retry_opens_one_ticket_and_posts_one_answer(e2e, slack, e2e_sessions, together):
    event, event_id = _dm(VPN), "Ev0RETRY0001"
    if together:
        statuses = []
        start = threading.Barrier(2)

        def deliver(retry):
            start.wait()
            statuses.append(e2e.event(event, event_id=event_id, retry=retry).status_code)

        threads = [threading.Thread(target=deliver, args=(r,)) for r in (None, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=15)
        assert statuses == [200, 200]
    else:
        assert e2e.event(event, event_id=event_id).status_code == 200
        assert e2e.event(event, event_id=event_id, retry=1).status_code == 200
    [ticket] = _tickets(e2e_sessions)
    assert ticket.source_event_id == event_id

    # Another request, answered after: by then a second answer to the first would show.
    # (Its number is not asserted: a losing racer's INSERT may have used #2.)
    assert e2e.event(_dm("I forgot my password and need a password reset",
                         ts="1732528100.000300")).status_code == 200
    wait_until(lambda: len(tickets := _tickets(e2e_sessions)) == 2
               and all(t.slack_message_ts for t in tickets), what="both answers")
    assert sorted(c.args["thread_ts"] for c in _posts(slack)) == [USER_TS, "1732528100.000300"]
    assert len(_actions(e2e_sessions, ticket.ticket_id)) == 1


# /ticket ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   "])
def test_ticket_without_text_shows_the_usage_and_stores_nothing(e2e, slack, e2e_sessions, text):
    response = e2e.command("/ticket", text)

    assert response.status_code == 200
    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert "Tell me what is wrong" in _shown(body) and "/ticket" in _shown(body)
    assert _tickets(e2e_sessions) == []
    assert _posts(slack) == []


def test_the_ticket_ack_is_immediate_and_ephemeral(e2e, slack, e2e_sessions):
    response = e2e.command("/ticket", VPN)

    assert response.status_code == 200
    body = response.json()
    assert body["response_type"] == "ephemeral" and "ticket *#1*" in _shown(body)
    [ticket] = _tickets(e2e_sessions)
    assert ticket.source == TicketSource.SLASH_COMMAND and ticket.slack_channel_id == CHANNEL
    slack.wait_for("chat.postMessage")


# Escaping ---------------------------------------------------------------------------

def test_nothing_anyone_typed_can_ping_or_hide_a_link(e2e, slack, e2e_sessions):
    acks = [e2e.command("/ticket", f"{INJECTION} {VPN}")]
    resolved = slack.wait_for("chat.postMessage")[0]
    acks.append(e2e.event(_dm(f"ransomware on the file server {INJECTION}")))
    acks.append(e2e.event(_mention(f"<@UBOT> {INJECTION}", ts="1732528100.000300")))
    wait_until(lambda: len(_tickets(e2e_sessions)) == 3
               and all(t.slack_message_ts for t in _tickets(e2e_sessions)),
               what="three answered tickets")
    kinds = {t.description: _actions(e2e_sessions, t.ticket_id)[0].action_type
             for t in _tickets(e2e_sessions)}
    assert sorted(kinds.values()) == [
        ActionType.AUTO_RESOLVE, ActionType.ESCALATE, ActionType.REQUEST_CLARIFICATION], kinds
    wait_until(lambda: _posts(slack, ESCALATIONS), what="the escalation channel post")
    # "Why?" and "No" echo the request too: the reasoning, the reopen notice.
    why = _button(resolved.args["blocks"], ActionId.WHY)
    acks.append(e2e.click(ActionId.WHY, why["value"], message_ts=resolved.response["ts"]))
    slack.wait_for("chat.postEphemeral")
    no = _button(resolved.args["blocks"], ActionId.FEEDBACK_NO)
    acks.append(e2e.click(ActionId.FEEDBACK_NO, no["value"], message_ts=resolved.response["ts"]))
    wait_until(lambda: len(_posts(slack, ESCALATIONS)) == 2, what="the reopen notice")
    slack.wait_for("chat.update")

    assert all(ack.status_code == 200 for ack in acks)
    for ack in acks:
        assert not any(raw in ack.text for raw in RAW), ack.text
    for call in slack.calls():
        sent = json.dumps(call.args, ensure_ascii=False)
        assert not any(raw in sent for raw in RAW), (call.method, sent)
    # Shown, escaped, as typed: the request is quoted back, not dropped.
    assert "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &amp; &lt;https://evil|x&gt;" in (
        _shown(resolved.args))
    assert "&lt;!channel&gt;" in json.loads(acks[0].text)["blocks"][1]["elements"][0]["text"]
    assert any("&lt;!channel&gt;" in _shown(c.args) for c in _posts(slack, ESCALATIONS))


# What the bot decides ---------------------------------------------------------------

def test_a_critical_ticket_is_escalated_in_the_thread_and_to_the_escalation_channel(e2e, slack, e2e_sessions):
    assert e2e.event(
        _mention("<@UBOT> we have a security breach, ransomware on the file server")
    ).status_code == 200

    slack.wait_for("chat.postMessage", count=2)
    ticket = _answered(e2e_sessions)
    [action] = _actions(e2e_sessions, ticket.ticket_id)
    assert action.action_type == ActionType.ESCALATE and ticket.status == TicketStatus.ESCALATED
    assert ticket.escalation_priority == EscalationPriority.CRITICAL and ticket.assigned_team == "Security"
    [thread] = _posts(slack, CHANNEL)
    assert thread.args["thread_ts"] == USER_TS
    assert "Escalated to *Security*" in _shown(thread.args)
    [alert] = _posts(slack, ESCALATIONS)
    assert alert.args["text"] == f"Ticket #{ticket.ticket_id} escalated to Security"
    assert f"<@{REQUESTER}>" in _shown(alert.args) and "> we have a security breach" in _shown(alert.args)
    assert "*Priority*\ncritical" in _shown(alert.args)


def test_a_vague_ticket_gets_questions_in_the_thread(e2e, slack, e2e_sessions):
    assert e2e.event(_dm("help")).status_code == 200

    [post] = slack.wait_for("chat.postMessage")
    ticket = _answered(e2e_sessions)
    [action] = _actions(e2e_sessions, ticket.ticket_id)
    assert action.action_type == ActionType.REQUEST_CLARIFICATION
    assert ticket.status == TicketStatus.AWAITING_USER
    assert post.args["channel"] == DM and post.args["thread_ts"] == USER_TS
    shown = _shown(post.args)
    assert "I need a bit more detail" in shown and "Reply in this thread" in shown
    questions = action.action_params["questions"]
    assert questions and all(q in shown for q in questions)
    assert _posts(slack, ESCALATIONS) == []


def test_a_slash_command_in_a_helpdesk_channel_the_bot_is_not_in_answers_by_dm(e2e, slack, e2e_sessions):
    slack.fail_next("chat.postMessage", error="not_in_channel")

    assert e2e.command("/ticket", VPN, channel=CHANNEL).status_code == 200

    failed, posted = slack.wait_for("chat.postMessage", count=2)
    assert failed.args["channel"] == CHANNEL and failed.outcome == "not_in_channel"
    # The DM goes to the requester's id; Slack opens the app's DM and says which.
    assert slack.calls("conversations.open") == []
    assert posted.outcome == "ok" and posted.args["channel"] == REQUESTER
    assert posted.response["channel"] == slack.dm_channel(REQUESTER)
    [answer] = slack.messages(REQUESTER)
    assert "I think I can fix ticket *#1*" in _shown(answer)
    ticket = _answered(e2e_sessions)
    assert ticket.slack_channel_id == slack.dm_channel(REQUESTER)
    # The buttons work where the answer went.
    yes = _button(answer["blocks"], ActionId.FEEDBACK_YES)
    assert e2e.click(ActionId.FEEDBACK_YES, yes["value"], channel=ticket.slack_channel_id,
                     message_ts=answer["ts"]).status_code == 200
    [update] = slack.wait_for("chat.update")
    assert update.outcome == "ok" and "You said this solved it" in _shown(update.args)


# Human triage when the autonomy cap is reached (a second server) -------------------

@pytest.fixture(scope="module")
def capped_slack():
    with SlackStandIn() as fake:
        yield fake


@pytest.fixture(scope="module")
def capped_server(capped_slack, e2e_db_url):
    running = Server(database_url=e2e_db_url, slack=capped_slack, redis_url=E2E_REDIS_URL,
                     MAX_AUTONOMOUS_ACTIONS_PER_MINUTE="1").start()
    yield running
    running.stop()


@pytest.fixture()
def capped(capped_server, capped_slack, e2e):
    """The capped server; `e2e` empties the shared database and Redis after."""
    yield capped_server
    capped_slack.reset()


def test_past_the_autonomy_cap_a_person_picks_it_up_and_the_suggestion_is_kept(
        capped, capped_slack, e2e_sessions):
    assert capped.command("/ticket", VPN).status_code == 200
    capped_slack.wait_for("chat.postMessage")
    first = _answered(e2e_sessions, ticket_id=1)
    assert [a.action_type for a in _actions(e2e_sessions, first.ticket_id)] == [ActionType.AUTO_RESOLVE]

    assert capped.command("/ticket", "my vpn disconnects every few minutes from home").status_code == 200
    second = _answered(e2e_sessions, ticket_id=2)

    [action] = _actions(e2e_sessions, second.ticket_id)
    assert action.action_type == ActionType.ESCALATE and action.autonomous is False
    assert action.action_params["triage"] is True
    assert action.action_params["suggestion"]["action_type"] == ActionType.AUTO_RESOLVE
    assert second.suggested_action["action_type"] == ActionType.AUTO_RESOLVE
    assert second.status == TicketStatus.ESCALATED
    thread = next(c for c in _posts(capped_slack, CHANNEL)
                  if c.response and c.response["ts"] == second.slack_message_ts)
    shown = _shown(thread.args)
    assert "A person from *Service Desk* will pick this up" in shown
    assert "autonomy cap reached" in shown
    assert "suggestion, not applied: AUTO RESOLVE" in shown
    wait_until(lambda: _posts(capped_slack, ESCALATIONS), what="the escalation channel post")
    with e2e_sessions() as session:
        [cap] = session.scalars(
            select(AuditEvent).where(AuditEvent.event_type == "autonomy_cap_reached")).all()
    assert cap.ticket_id == second.ticket_id


def test_two_serve_workers_share_the_work_and_answer_each_ticket_once(e2e, e2e_db_url, e2e_sessions):
    with SlackStandIn() as fake:
        server = Server(database_url=e2e_db_url, slack=fake, redis_url=E2E_REDIS_URL,
                        SERVER_WORKERS="2").start()
        try:
            workers = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
            wait_until(lambda: len(workers.read_text().split()) == 2, what="two gunicorn workers")
            answers = [server.command("/ticket", f"printer {n} on floor 3 is jammed")
                       for n in range(8)]
            assert all(a.status_code == 200 and "ticket" in a.text for a in answers)
            wait_until(lambda: len(fake.calls("chat.postMessage")) >= 8, what="eight answers")
        finally:
            server.stop()
    with e2e_sessions() as session:
        assert len(session.scalars(select(Ticket)).all()) == 8
        assert all(row.status == "sent" for row in session.scalars(
            select(SlackOutbox).where(SlackOutbox.purpose != OutboxPurpose.FOLLOWUP)))
    assert len([c for c in fake.calls("chat.postMessage") if c.outcome == "ok"]) == 8
