"""Private stays private, in process: the real app, Slack's signed requests, real
PostgreSQL and Redis, the fake Slack Web API.

A /ticket typed outside HELPDESK_CHANNELS is answered to the requester alone: the
acknowledgement is ephemeral, the answer (with its buttons), a team member's word and a
rollback notice come by DM, and nothing at all is posted in the channel it was typed
in. The request is quoted only there and in the team's channel. In a helpdesk channel
the answer is public, and an @-mention is answered in its thread.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.views import ActionId, feedback_value, parse_rollback_value
from bot.workflows.runtime import Runtime
from models import ActionHistory, Ticket, TicketResolution
from tests.support.bolt_requests import in_process, listener_settings
from tests.support.databases import REDIS_URL
from tests.support.harness import ADMIN, CHANNEL, ESCALATIONS, REQUESTER, VPN, shown, wait_until

GENERAL = "CGENERAL"  # a channel where people chat, not a helpdesk channel
TEAM = "CIDENTITY"
MEMBER = "UMEMBER"
ACCESS = "I need access to the finance shared drive"
USER_TS = "1732528000.000200"


@pytest.fixture()
def app(settings, pg_url, slack, namespace, committing_factory):
    runtime = Runtime.from_settings(
        listener_settings(database_url=pg_url, slack=slack, redis_url=REDIS_URL,
                          team_channels=f"Identity & Access={TEAM}"),
        namespace=namespace)
    slack.set_members(TEAM, [MEMBER])
    with in_process(runtime, slack) as bolt:
        yield bolt
    slack.reset()


def _ticket(sessions) -> Ticket:
    with sessions() as session:
        return session.scalars(select(Ticket)).one()


def _answered(sessions) -> Ticket:
    return wait_until(lambda: (t := _ticket(sessions)).slack_message_ts and t, what="the answer")


def _button(blocks, action_id: str) -> dict:
    for block in blocks or []:
        for element in [*(block.get("elements") or []), block.get("accessory") or {}]:
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no button {action_id} in {blocks!r}")


def _anything_in(slack, channel: str) -> list:
    """Every Web API call that names `channel`: posts, ephemerals, updates."""
    return [c for c in slack.calls() if c.args.get("channel") == channel]


def test_a_ticket_outside_a_helpdesk_channel_is_answered_by_dm_and_nothing_lands_there(
        app, slack, committing_factory):
    dm = slack.dm_channel(REQUESTER)

    ack = app.command("/ticket", VPN, channel=GENERAL).json()

    assert ack["response_type"] == "ephemeral" and "send you my answer by DM" in shown(ack)
    [answer] = slack.wait_for("chat.postMessage")
    # Posted to the requester's id: Slack opens the app's DM with them and names it.
    assert answer.args["channel"] == REQUESTER and not answer.args.get("thread_ts")
    assert answer.response["channel"] == dm
    assert VPN in shown(answer.args)  # quoted to the requester, in their own DM
    yes = _button(answer.args["blocks"], ActionId.FEEDBACK_YES)
    ticket = _answered(committing_factory)
    # The DM is the ticket's conversation from now on; the channel was never stored.
    assert (ticket.slack_channel_id, ticket.slack_thread_ts) == (dm, answer.response["ts"])

    # The requester answers in the DM; an admin rolls the answer back: the notice
    # goes to the DM's thread too.
    assert app.click(ActionId.FEEDBACK_YES, yes["value"], channel=dm,
                     message_ts=answer.response["ts"]).status_code == 200
    with committing_factory() as session:
        action = session.scalars(select(ActionHistory)).one()
        assert session.scalars(select(TicketResolution)).one().resolution_confirmed is True
    preview = app.command("/rollback", f"{action.id.hex[:8]} wrong", user=ADMIN, channel=GENERAL).json()
    confirm = _button(preview["blocks"], ActionId.ROLLBACK_CONFIRM)
    assert parse_rollback_value(confirm["value"])[0] == action.id
    app.click(ActionId.ROLLBACK_CONFIRM, confirm["value"], user=ADMIN, channel=GENERAL)
    app.settled()
    [notice] = [c for c in slack.calls("chat.postMessage") if c.args.get("thread_ts")]
    assert (notice.args["channel"], notice.args["thread_ts"]) == (dm, answer.response["ts"])

    # The admin's own confirmation is theirs alone; the channel holds no message.
    assert slack.messages(GENERAL) == []
    # (It replaces the confirm step through the click's response URL: no Web API call
    # names the channel at all.)
    assert [c.method for c in _anything_in(slack, GENERAL)] == []
    assert any(told["text"].startswith("Rolled back") for told in slack.told(ADMIN)), slack.told(ADMIN)
    assert all(VPN not in shown(told) for told in slack.told(ADMIN))


def test_a_routed_ticket_outside_a_helpdesk_channel_quotes_the_request_only_to_the_team(
        app, slack, committing_factory):
    dm = slack.dm_channel(REQUESTER)

    app.command("/ticket", ACCESS, channel=GENERAL)

    notice = wait_until(lambda: [c for c in slack.calls("chat.postMessage") if c.args["channel"] == TEAM],
                        what="the team notice")[0]
    [told] = [c for c in slack.wait_for("chat.postMessage", count=2)
              if (c.response or {}).get("channel") == dm]
    assert "Identity &amp; Access" in shown(told.args)  # the routing notice, by DM
    assert ACCESS in shown(notice.args)  # the team sees what was asked
    _answered(committing_factory)

    # A member takes it: the requester hears it in the DM's thread.
    take = _button(notice.args["blocks"], ActionId.TEAM_TAKE)
    app.click(ActionId.TEAM_TAKE, take["value"], user=MEMBER, channel=TEAM,
              message_ts=notice.response["ts"])
    app.settled()
    [taken] = [c for c in slack.calls("chat.postMessage") if "is on your ticket" in c.args["text"]]
    assert (taken.args["channel"], taken.args["thread_ts"]) == (dm, told.response["ts"])

    assert _anything_in(slack, GENERAL) == [] and slack.messages(GENERAL) == []
    quoted = [c.args["channel"] for c in slack.calls("chat.postMessage") if ACCESS in shown(c.args)]
    assert set(quoted) <= {REQUESTER, dm, TEAM, ESCALATIONS}


def test_a_critical_ticket_outside_a_helpdesk_channel_is_escalated_by_dm(app, slack, committing_factory):
    dm = slack.dm_channel(REQUESTER)

    app.command("/ticket", "My laptop was stolen from my car last night", channel=GENERAL)

    ticket = _answered(committing_factory)
    assert (ticket.status, ticket.slack_channel_id) == ("escalated", dm)
    app.settled()
    [told] = [c for c in slack.calls("chat.postMessage") if (c.response or {}).get("channel") == dm]
    assert "Escalated" in shown(told.args)
    assert _anything_in(slack, GENERAL) == []


def test_in_a_helpdesk_channel_the_answer_is_public(app, slack, committing_factory):
    ack = app.command("/ticket", VPN, channel=CHANNEL).json()

    assert "post my answer in this channel" in shown(ack)
    [answer] = slack.wait_for("chat.postMessage")
    assert answer.args["channel"] == CHANNEL and VPN in shown(answer.args)
    assert _answered(committing_factory).slack_channel_id == CHANNEL


def test_a_mention_outside_a_helpdesk_channel_is_answered_in_its_thread(app, slack, committing_factory):
    event = {"type": "app_mention", "channel": GENERAL, "user": REQUESTER,
             "text": f"<@UBOT> {VPN}", "ts": USER_TS, "event_ts": USER_TS}

    assert app.event(event).status_code == 200

    [answer] = slack.wait_for("chat.postMessage")
    assert (answer.args["channel"], answer.args["thread_ts"]) == (GENERAL, USER_TS)


def test_the_ticket_ack_and_buttons_work_from_the_dm(app, slack, committing_factory):
    """The follow-up-free path end to end: a No clicked in the DM reopens the ticket and
    the word about it goes to the DM, not to the channel the ticket was typed in."""
    dm = slack.dm_channel(REQUESTER)
    app.command("/ticket", VPN, channel=GENERAL)
    [answer] = slack.wait_for("chat.postMessage")
    ticket = _answered(committing_factory)

    app.click(ActionId.FEEDBACK_NO, feedback_value(ticket.ticket_id), channel=dm,
              message_ts=answer.response["ts"])

    wait_until(lambda: [c for c in slack.calls("chat.postMessage") if "reopened" in c.args["text"]],
               what="the reopen word")
    app.settled()
    assert _ticket(committing_factory).status == "open"
    assert _anything_in(slack, GENERAL) == []
