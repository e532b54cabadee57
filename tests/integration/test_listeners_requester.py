"""Tickets from a message and the requester's own tickets, in process: the real app,
Slack's signed events, shortcuts, App Home clicks and modal submissions, real
PostgreSQL and Redis, the fake Slack Web API.

A :ticket: reaction (or the message shortcut) opens one ticket for the message's author
however many people ask, and answers in the message's thread; the requester sees their
open tickets in App Home, adds detail (decided again when nobody has it) and withdraws.
"""

from __future__ import annotations

from sqlalchemy import func, select

from bot.domain import audit
from bot.views import ActionId, BlockId, CallbackId, ticket_value
from models import ActionHistory, AuditEvent, MessageKind, Ticket, TicketMessage, TicketSource, TicketStatus
from tests.support.harness import CHANNEL, ESCALATIONS, REQUESTER, STRANGER, VPN, shown, wait_until

AUTHOR = "UAUTHOR"
HELPER = "UHELPER"
PRINTER = "The printer on floor 3 says paper jam but there is no paper stuck"


def _react(bolt, ts, *, user=HELPER, reaction="ticket", channel=CHANNEL, **delivery):
    return bolt.event({"type": "reaction_added", "user": user, "reaction": reaction,
                       "item_user": AUTHOR, "item": {"type": "message", "channel": channel, "ts": ts},
                       "event_ts": "1764400100.000100"}, **delivery)


def _tickets(sessions):
    with sessions() as session:
        return list(session.scalars(select(Ticket).order_by(Ticket.ticket_id)))


def _thread(slack, ts):
    return [m for m in slack.messages(CHANNEL) if m.get("thread_ts") == ts]


def _count(sessions, model, *where):
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def _home(bolt, user=REQUESTER):
    bolt.event({"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home",
                "event_ts": "1764400100.000200"})
    bolt.settled()
    return shown(bolt.slack.home_view(user))


def test_a_ticket_reaction_opens_one_ticket_for_the_author_however_many_react(
        bolt, slack, committing_factory):
    ts = slack.post_as_person(CHANNEL, AUTHOR, PRINTER)
    for user in (HELPER, "USECOND", AUTHOR):
        assert _react(bolt, ts, user=user).status_code == 200
    bolt.settled()

    [ticket] = _tickets(committing_factory)
    assert (ticket.user_id, ticket.description, ticket.source) == (AUTHOR, PRINTER, TicketSource.REACTION)
    thread = _thread(slack, ts)
    opened = [m for m in thread if "I've opened ticket" in m["text"]]
    assert len(opened) == 1
    assert f"<@{HELPER}> asked: I've opened ticket #{ticket.ticket_id} for <@{AUTHOR}>" in opened[0]["text"]
    # The decision's answer is in the same thread, after the notice.
    assert len(thread) >= 2 and "I've opened" in thread[0]["text"]
    assert f"#{ticket.ticket_id}" in shown(thread[-1])
    # The later ones were told, only them, that the message has its ticket.
    told = [e for e in slack.ephemerals(CHANNEL) if "already" in e["text"]]
    assert sorted(e["user"] for e in told) == sorted(["USECOND", AUTHOR])
    # The message was read as asked: only it, inclusive.
    read = slack.calls("conversations.history")[0].args
    assert (read["latest"], str(read["inclusive"]).lower() in ("1", "true"), str(read["limit"])) == (
        ts, True, "1")


def test_slack_retrying_a_reaction_opens_nothing_more_and_tells_nobody(bolt, slack, committing_factory):
    ts = slack.post_as_person(CHANNEL, AUTHOR, PRINTER)
    _react(bolt, ts, event_id="Ev0REACT1")
    _react(bolt, ts, event_id="Ev0REACT1", retry=1)
    bolt.settled()
    assert len(_tickets(committing_factory)) == 1
    assert len([m for m in _thread(slack, ts) if "I've opened ticket" in m["text"]]) == 1
    assert slack.ephemerals() == []


def test_a_reaction_on_a_reply_reads_it_from_the_thread_and_answers_in_that_thread(
        bolt, slack, committing_factory):
    root = slack.post_as_person(CHANNEL, "USOMEONE", "Anyone else having trouble today?")
    reply = slack.post_as_person(CHANNEL, AUTHOR, VPN, thread_ts=root)
    _react(bolt, reply)
    bolt.settled()

    [ticket] = _tickets(committing_factory)
    assert (ticket.description, ticket.slack_thread_ts, ticket.origin_message_ts) == (VPN, root, reply)
    assert slack.calls("conversations.replies")
    assert any("I've opened ticket" in m["text"] for m in _thread(slack, root))


def test_other_reactions_open_nothing_and_read_nothing(bolt, slack, committing_factory):
    ts = slack.post_as_person(CHANNEL, AUTHOR, PRINTER)
    for reaction in ("eyes", "tickets", "admission_tickets"):
        assert _react(bolt, ts, reaction=reaction).status_code == 200
    bolt.settled()
    assert _tickets(committing_factory) == [] and slack.calls("conversations.history") == []
    assert slack.calls("chat.postMessage") == [] and slack.ephemerals() == []


def test_a_reaction_on_the_bots_message_is_refused_to_the_reactor(bolt, slack, committing_factory):
    assert bolt.command("/ticket", VPN).status_code == 200
    bolt.settled()
    post = slack.calls("chat.postMessage")[0].response
    _react(bolt, post["ts"], channel=post["channel"])
    bolt.settled()

    assert len(_tickets(committing_factory)) == 1
    [refusal] = [e for e in slack.ephemerals() if e["user"] == HELPER]
    assert "person's message" in refusal["text"]


def test_the_message_shortcut_opens_the_ticket_and_a_later_reaction_finds_it(
        bolt, slack, committing_factory):
    ts = slack.post_as_person(CHANNEL, AUTHOR, PRINTER)
    message = {"type": "message", "user": AUTHOR, "text": PRINTER, "ts": ts}
    assert bolt.message_shortcut(CallbackId.CREATE_TICKET, message, user=HELPER).status_code == 200
    bolt.settled()
    _react(bolt, ts, user="UTHIRD")
    bolt.settled()

    [ticket] = _tickets(committing_factory)
    assert (ticket.user_id, ticket.source) == (AUTHOR, TicketSource.SHORTCUT)
    assert len([m for m in _thread(slack, ts) if "I've opened ticket" in m["text"]]) == 1
    assert [e["user"] for e in slack.ephemerals(CHANNEL) if "already" in e["text"]] == ["UTHIRD"]
    with committing_factory() as session:
        [event] = session.scalars(select(AuditEvent).where(
            AuditEvent.event_type == audit.TICKET_FROM_MESSAGE)).all()
        assert (event.actor_id, event.detail["via"]) == (HELPER, "shortcut")


def test_a_shortcut_in_a_channel_the_bot_is_not_in_tells_the_author_by_dm(
        bolt, slack, committing_factory):
    message = {"type": "message", "user": AUTHOR, "text": PRINTER, "ts": "1764400000.000100"}
    # The first post (the notice in the message's thread) is refused: the bot is not there.
    slack.fail_next("chat.postMessage", error="not_in_channel")
    bolt.message_shortcut(CallbackId.CREATE_TICKET, message, user=HELPER, channel="CNOTIN")
    bolt.settled()

    [ticket] = _tickets(committing_factory)
    dm = wait_until(lambda: slack.messages(slack.dm_channel(AUTHOR)), what="the notice in the author's DM")
    assert f"I've opened ticket #{ticket.ticket_id} for <@{AUTHOR}>" in dm[0]["text"]


def test_app_home_lists_the_requesters_open_tickets_with_state_and_buttons(
        bolt, slack, committing_factory):
    assert bolt.command("/ticket", "help").status_code == 200
    bolt.settled()
    [ticket] = _tickets(committing_factory)

    view = _home(bolt)
    assert "Your open tickets" in view and f"#{ticket.ticket_id}" in view
    home = slack.home_view(REQUESTER)
    [buttons] = [b for b in home["blocks"] if b.get("block_id") == f"my_ticket_{ticket.ticket_id}"]
    assert [e["action_id"] for e in buttons["elements"]] == [ActionId.MY_ADD_DETAIL, ActionId.MY_WITHDRAW]
    # Someone else's Home does not show it.
    assert f"#{ticket.ticket_id}" not in _home(bolt, STRANGER)


def test_the_requester_withdraws_a_ticket_from_app_home(bolt, slack, committing_factory):
    assert bolt.command("/ticket", "help").status_code == 200
    bolt.settled()
    [ticket] = _tickets(committing_factory)
    _home(bolt)
    publishes = len(slack.calls("views.publish"))

    assert bolt.home_click(ActionId.MY_WITHDRAW, ticket_value(ticket.ticket_id)).status_code == 200
    bolt.settled()

    [ticket] = _tickets(committing_factory)
    assert ticket.status == TicketStatus.CLOSED
    assert _count(committing_factory, AuditEvent, AuditEvent.event_type == audit.TICKET_WITHDRAWN) == 1
    # The Home was drawn again, without it.
    assert len(slack.calls("views.publish")) == publishes + 1
    view = shown(slack.home_view(REQUESTER))
    assert "You have no open tickets" in view and f"#{ticket.ticket_id}" not in view
    # A second click (a stale Home) is refused in the requester's DM with the bot.
    bolt.home_click(ActionId.MY_WITHDRAW, ticket_value(ticket.ticket_id))
    bolt.settled()
    dm = slack.messages(slack.dm_channel(REQUESTER))
    assert any("withdrawn already" in m["text"] for m in dm)


def test_someone_else_cannot_withdraw_or_add_detail_and_is_audited(bolt, slack, committing_factory):
    assert bolt.command("/ticket", VPN).status_code == 200
    bolt.settled()
    [ticket] = _tickets(committing_factory)
    status = ticket.status

    bolt.home_click(ActionId.MY_WITHDRAW, ticket_value(ticket.ticket_id), user=STRANGER)
    bolt.home_click(ActionId.MY_ADD_DETAIL, ticket_value(ticket.ticket_id), user=STRANGER)
    bolt.settled()

    assert _tickets(committing_factory)[0].status == status
    assert slack.calls("views.open") == []
    assert _count(committing_factory, AuditEvent, AuditEvent.event_type == audit.TICKET_CHANGE_DENIED) == 2
    dm = slack.messages(slack.dm_channel(STRANGER))
    assert sum("Only the person who asked" in m["text"] for m in dm) == 2


def test_added_detail_joins_the_ticket_and_it_is_decided_again(bolt, slack, committing_factory):
    assert bolt.command("/ticket", "help").status_code == 200
    bolt.settled()
    [ticket] = _tickets(committing_factory)
    assert ticket.assigned_to is None
    decisions = _count(committing_factory, ActionHistory, ActionHistory.ticket_id == ticket.ticket_id)

    bolt.home_click(ActionId.MY_ADD_DETAIL, ticket_value(ticket.ticket_id))
    [opened] = slack.calls("views.open")
    modal = opened.response["view"]
    assert modal["callback_id"] == CallbackId.ADD_DETAIL
    answer = bolt.submit_view(modal, {BlockId.DETAIL_TEXT: {ActionId.DETAIL_TEXT: VPN}})
    assert answer.status_code == 200 and not answer.text
    bolt.settled()

    [ticket] = _tickets(committing_factory)
    assert ticket.description == "help"
    # Decided again through the claim, on the request and the detail: one more action,
    # which took the detail into account, announced like the first.
    with committing_factory() as session:
        [message] = session.scalars(select(TicketMessage)).all()
        latest = session.scalars(select(ActionHistory).where(ActionHistory.ticket_id == ticket.ticket_id)
                                 .order_by(ActionHistory.executed_at.desc())).first()
    assert (message.kind, message.text, message.decided_action_id) == (MessageKind.DETAIL, VPN, latest.id)
    assert latest.action_type == "AUTO_RESOLVE"
    assert _count(committing_factory, ActionHistory, ActionHistory.ticket_id == ticket.ticket_id) == \
        decisions + 1
    # /history shows the conversation: who added what, and when.
    history = shown(bolt.command("/history", str(ticket.ticket_id)).json())
    assert f"<@{REQUESTER}> added detail from App Home" in history and VPN in history
    assert _count(committing_factory, AuditEvent, AuditEvent.event_type == audit.TICKET_DETAIL_ADDED) == 1
    assert slack.calls("views.publish")


def test_detail_on_a_ticket_a_person_has_goes_to_them_and_is_not_decided_again(
        bolt, slack, committing_factory):
    assert bolt.command("/ticket", "help").status_code == 200
    bolt.settled()
    with committing_factory() as session:
        ticket = session.scalars(select(Ticket)).one()
        ticket.assigned_to, ticket.status = "UAGENT", TicketStatus.IN_PROGRESS
        session.commit()
        ticket_id = ticket.ticket_id
    decisions = _count(committing_factory, ActionHistory, ActionHistory.ticket_id == ticket_id)

    bolt.home_click(ActionId.MY_ADD_DETAIL, ticket_value(ticket_id))
    modal = slack.calls("views.open")[0].response["view"]
    assert "A person has your ticket" in shown(modal)
    bolt.submit_view(modal, {BlockId.DETAIL_TEXT: {ActionId.DETAIL_TEXT: "Error <!channel> 0x80070005"}})
    bolt.settled()

    assert _count(committing_factory, ActionHistory, ActionHistory.ticket_id == ticket_id) == decisions
    dm = wait_until(lambda: slack.messages(slack.dm_channel("UAGENT")), what="the holder's DM")
    assert "added detail to ticket" in dm[-1]["text"] and "&lt;!channel&gt;" in dm[-1]["text"]
    # Kept in the conversation, escaped in /history (the holder reads it there too).
    history = bolt.command("/history", str(ticket_id)).json()
    assert "Error &lt;!channel&gt; 0x80070005" in shown(history) and "<!channel>" not in str(history)


def test_empty_detail_keeps_the_modal_open_with_the_reason(bolt, slack, committing_factory):
    assert bolt.command("/ticket", "help").status_code == 200
    bolt.settled()
    [ticket] = _tickets(committing_factory)
    bolt.home_click(ActionId.MY_ADD_DETAIL, ticket_value(ticket.ticket_id))
    modal = slack.calls("views.open")[0].response["view"]
    answer = bolt.submit_view(modal, {BlockId.DETAIL_TEXT: {ActionId.DETAIL_TEXT: "   "}})
    assert answer.json() == {"response_action": "errors",
                             "errors": {BlockId.DETAIL_TEXT: "Please write the detail to add."}}


def test_a_withdrawn_tickets_team_notice_says_so_and_loses_its_buttons(bolt, slack, committing_factory):
    assert bolt.command("/ticket", "I need access to the finance shared drive").status_code == 200
    bolt.settled()
    [ticket] = _tickets(committing_factory)
    [notice] = [c for c in slack.calls("chat.postMessage") if c.args["channel"] == ESCALATIONS]

    bolt.home_click(ActionId.MY_WITHDRAW, ticket_value(ticket.ticket_id))
    bolt.settled()

    [now] = [m for m in slack.messages(ESCALATIONS) if m["ts"] == notice.response["ts"]]
    assert "Withdrawn by the person who asked" in shown(now)
    assert not [b for b in now["blocks"] if b.get("block_id") == BlockId.TEAM_ACTIONS]
    # Nobody can take it from a stale notice either.
    bolt.click(ActionId.TEAM_TAKE, ticket_value(ticket.ticket_id), user="UADMIN", channel=ESCALATIONS,
               message_ts=notice.response["ts"])
    bolt.settled()
    assert _tickets(committing_factory)[0].assigned_to is None
    assert any("withdrawn" in e["text"] for e in slack.ephemerals(ESCALATIONS))


def test_the_manifest_asks_for_the_reaction_event_its_scope_and_the_shortcut():
    from bot.platform.manifest import build_manifest

    manifest = build_manifest("https://helpdesk.example.com")
    assert "reaction_added" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"reactions:read", "channels:history", "groups:history", "im:history"} <= set(
        manifest["oauth_config"]["scopes"]["bot"])
    assert manifest["features"]["shortcuts"] == [
        {"name": "Create a ticket", "type": "message", "callback_id": CallbackId.CREATE_TICKET,
         "description": "Open a helpdesk ticket for this message's author"}]
