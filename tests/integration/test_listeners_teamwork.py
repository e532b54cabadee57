"""Teams working in Slack, in process: the real app from `create_app`, Slack's signed
clicks and modal submissions, real PostgreSQL and Redis, the fake Slack Web API.

A routed ticket's notice reaches the team's channel; a member takes it and resolves it
in a modal; the requester rates the person's resolution; a stranger is refused.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.domain import audit
from bot.views import ActionId, BlockId, parse_feedback_target, parse_ticket_value, rating_action_id
from bot.workflows.runtime import Runtime
from models import ActionHistory, ActionType, AuditEvent, PersonResolution, Ticket, TicketResolution
from tests.support.bolt_requests import in_process, listener_settings
from tests.support.databases import REDIS_URL
from tests.support.harness import CHANNEL, ESCALATIONS, REQUESTER, STRANGER, shown, wait_until

TEAM = "CIDENTITY"
MEMBER = "UMEMBER"
ACCESS = "I need access to the finance shared drive"
NOTE = "Added you to the Finance-RW group; sign out and in again <!channel>"


@pytest.fixture()
def team_bolt(settings, pg_url, slack, namespace, committing_factory):
    runtime = Runtime.from_settings(
        listener_settings(database_url=pg_url, slack=slack, redis_url=REDIS_URL,
                          team_channels=f"Identity & Access={TEAM}"),
        namespace=namespace)
    slack.set_members(TEAM, [MEMBER, "UOTHER"])
    with in_process(runtime, slack) as app:
        yield app
    slack.reset()


def _one(sessions, model, *where):
    with sessions() as session:
        return session.scalars(select(model).where(*where)).one()


def _routed(bolt, slack, sessions):
    """A /ticket the bot routed to Identity & Access: (ticket, the team notice's post)."""
    assert bolt.command("/ticket", ACCESS).status_code == 200
    notice = wait_until(lambda: [c for c in slack.calls("chat.postMessage") if c.args["channel"] == TEAM],
                        what="the team notice")[0]
    bolt.settled()
    ticket = _one(sessions, Ticket)
    assert ticket.assigned_team == "Identity & Access"
    return ticket, notice


def _button(blocks, action_id):
    for block in blocks or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no {action_id} in {blocks!r}")


def _notice_now(slack, notice) -> dict:
    [message] = [m for m in slack.messages(TEAM) if m["ts"] == notice.response["ts"]]
    return message


def _to(slack, user):
    return [e for e in slack.ephemerals() if e["user"] == user]


def test_a_routed_ticket_reaches_the_teams_channel_with_the_request_and_two_buttons(
        team_bolt, slack, committing_factory):
    ticket, notice = _routed(team_bolt, slack, committing_factory)

    seen = shown(notice.args)
    assert f"Ticket #{ticket.ticket_id} routed to Identity &amp; Access" in seen
    assert f"<@{REQUESTER}>" in seen and f"> {ACCESS}" in seen
    assert "*The bot's suggestion* (confidence *" in seen
    take = _button(notice.args["blocks"], ActionId.TEAM_TAKE)
    assert parse_ticket_value(take["value"]) == ticket.ticket_id
    # The escalation channel is the fallback for teams without a channel: not this one.
    assert slack.messages(ESCALATIONS) == []


def test_a_member_takes_it_the_notice_shows_who_and_the_requester_is_told(team_bolt, slack,
                                                                          committing_factory):
    ticket, notice = _routed(team_bolt, slack, committing_factory)
    take = _button(notice.args["blocks"], ActionId.TEAM_TAKE)

    answer = team_bolt.click(ActionId.TEAM_TAKE, take["value"], user=MEMBER, channel=TEAM,
                             message_ts=notice.response["ts"])

    assert (answer.status_code, answer.text) == (200, "")
    taken = _one(committing_factory, Ticket)
    assert (taken.assigned_to, taken.status) == (MEMBER, "in_progress")
    record = _one(committing_factory, ActionHistory, ActionHistory.action_type == ActionType.TAKE)
    assert record.executed_by == MEMBER
    team_bolt.settled()
    assert f"<@{MEMBER}> has it." in shown(_notice_now(slack, notice))
    told = [c for c in slack.calls("chat.postMessage") if "is on your ticket" in c.args["text"]]
    assert len(told) == 1 and told[0].args["channel"] == CHANNEL
    assert told[0].args["thread_ts"] == taken.slack_thread_ts
    assert f"<@{MEMBER}> from *Identity &amp; Access* is on your ticket" in shown(told[0].args)

    # Clicking again changes nothing, and says so to the clicker alone.
    team_bolt.click(ActionId.TEAM_TAKE, take["value"], user=MEMBER, channel=TEAM,
                    message_ts=notice.response["ts"])
    team_bolt.settled()
    assert [e["text"] for e in _to(slack, MEMBER)] == [f"You have ticket #{ticket.ticket_id} already."]
    assert len([c for c in slack.calls("chat.postMessage") if "is on your ticket" in c.args["text"]]) == 1


def test_a_strangers_take_is_refused_to_them_alone_and_audited(team_bolt, slack, committing_factory):
    ticket, notice = _routed(team_bolt, slack, committing_factory)
    posts = len(slack.calls("chat.postMessage"))

    answer = team_bolt.click(ActionId.TEAM_TAKE, _button(notice.args["blocks"], ActionId.TEAM_TAKE)["value"],
                             user=STRANGER, channel=TEAM, message_ts=notice.response["ts"])

    assert (answer.status_code, answer.text) == (200, "")
    team_bolt.settled()
    [refusal] = _to(slack, STRANGER)
    assert refusal["channel"] == TEAM
    assert "Only members of Identity & Access's channel and helpdesk admins" in refusal["text"]
    assert _one(committing_factory, Ticket).assigned_to is None
    [denied] = _audit(committing_factory)
    assert (denied.actor_id, denied.detail["work"], denied.detail["channel"]) == (STRANGER, "take", TEAM)
    assert len(slack.calls("chat.postMessage")) == posts and slack.calls("chat.update") == []


def test_resolve_opens_a_modal_and_the_note_reaches_the_requester_who_rates_it(team_bolt, slack,
                                                                               committing_factory):
    ticket, notice = _routed(team_bolt, slack, committing_factory)
    resolve = _button(notice.args["blocks"], ActionId.TEAM_RESOLVE)

    answer = team_bolt.click(ActionId.TEAM_RESOLVE, resolve["value"], user=MEMBER, channel=TEAM,
                             message_ts=notice.response["ts"], trigger_id="trig-resolve-1")

    assert (answer.status_code, answer.text) == (200, "")
    [opened] = slack.calls("views.open")
    assert opened.args["trigger_id"] == "trig-resolve-1"
    view = opened.response["view"]
    assert parse_ticket_value(view["private_metadata"]) == ticket.ticket_id

    # An empty note keeps the modal open with the reason under the field.
    empty = team_bolt.submit_view(view, {BlockId.RESOLUTION_NOTE: {ActionId.RESOLUTION_NOTE: "  "}},
                                  user=MEMBER)
    assert empty.json() == {"response_action": "errors", "errors": {
        BlockId.RESOLUTION_NOTE: "Write what you did: the requester reads this note."}}
    assert _one(committing_factory, Ticket).status == "in_progress"

    done = team_bolt.submit_view(view, {BlockId.RESOLUTION_NOTE: {ActionId.RESOLUTION_NOTE: NOTE}},
                                 user=MEMBER)

    assert (done.status_code, done.text) == (200, "")
    resolved = _one(committing_factory, Ticket)
    assert (resolved.status, resolved.assigned_to) == ("resolved", MEMBER)
    person = _one(committing_factory, PersonResolution)
    assert (person.resolved_by, person.team, person.note) == (MEMBER, "Identity & Access", NOTE)
    team_bolt.settled()
    [message] = [c for c in slack.calls("chat.postMessage") if "resolved your ticket" in shown(c.args)]
    assert message.args["channel"] == CHANNEL and message.args["thread_ts"] == resolved.slack_thread_ts
    seen = shown(message.args)
    assert "Added you to the Finance-RW group; sign out and in again &lt;!channel&gt;" in seen
    assert "Did this solve it?" in seen
    state = shown(_notice_now(slack, notice))
    assert f"Resolved by <@{MEMBER}>." in state and "Finance-RW" in state
    assert not any(b.get("block_id") == BlockId.TEAM_ACTIONS for b in _notice_now(slack, notice)["blocks"])

    # The requester answers on the message: the person's record, not the bot's.
    yes = _button(message.args["blocks"], ActionId.FEEDBACK_YES)
    four = _button(message.args["blocks"], rating_action_id(4))
    assert parse_feedback_target(four["value"]) == (ticket.ticket_id, person.id, 4)
    ts = message.response["ts"]
    assert team_bolt.click(ActionId.FEEDBACK_YES, yes["value"], message_ts=ts).status_code == 200
    assert team_bolt.click(rating_action_id(4), four["value"], message_ts=ts).status_code == 200
    rated = _one(committing_factory, PersonResolution)
    assert (rated.resolution_confirmed, rated.satisfaction_score) == (True, 4)
    with committing_factory() as session:
        assert session.scalars(select(TicketResolution)).all() == []
    team_bolt.settled()
    [now] = [m for m in slack.messages(CHANNEL) if m["ts"] == ts]
    assert "You said this solved it" in shown(now) and "Rated 4/5" in shown(now)

    # A member's stale second Resolve is refused: it is resolved already.
    team_bolt.click(ActionId.TEAM_RESOLVE, resolve["value"], user="UOTHER", channel=TEAM,
                    message_ts=notice.response["ts"])
    team_bolt.settled()
    assert "resolved already" in _to(slack, "UOTHER")[0]["text"]
    assert len(slack.calls("views.open")) == 1


def test_no_to_a_persons_resolution_with_a_reason_reaches_that_resolutions_reopen_notice(
        team_bolt, slack, committing_factory):
    ticket, notice = _routed(team_bolt, slack, committing_factory)
    resolve = _button(notice.args["blocks"], ActionId.TEAM_RESOLVE)
    team_bolt.click(ActionId.TEAM_RESOLVE, resolve["value"], user=MEMBER, channel=TEAM,
                    message_ts=notice.response["ts"])
    modal = slack.last("views.open").response["view"]
    team_bolt.submit_view(modal, {BlockId.RESOLUTION_NOTE: {ActionId.RESOLUTION_NOTE: NOTE}}, user=MEMBER)
    team_bolt.settled()
    [message] = [c for c in slack.calls("chat.postMessage") if "resolved your ticket" in shown(c.args)]
    person = _one(committing_factory, PersonResolution)

    no = _button(message.args["blocks"], ActionId.FEEDBACK_NO)
    team_bolt.click(ActionId.FEEDBACK_NO, no["value"], message_ts=message.response["ts"], trigger_id="trig-p")

    assert _one(committing_factory, Ticket).status == "open"
    opened = slack.last("views.open")
    assert opened.args["trigger_id"] == "trig-p"
    assert parse_feedback_target(opened.response["view"]["private_metadata"]) == (
        ticket.ticket_id, person.id, None)
    team_bolt.settled()
    done = team_bolt.submit_view(opened.response["view"],
                                 {BlockId.FEEDBACK_REASON: {ActionId.FEEDBACK_REASON: "Still no access"}})
    assert (done.status_code, done.text) == (200, "")

    assert _one(committing_factory, PersonResolution).user_feedback_text == "Still no access"
    team_bolt.settled()
    reopened = [m for m in slack.messages(TEAM) if "reopened*" in shown(m)]
    assert len(reopened) == 1 and "*The requester said:*\n> Still no access" in shown(reopened[0])
    assert f"<@{MEMBER}>'s resolution did not solve it" in shown(reopened[0])
    # The routing notice keeps what it said.
    assert "The requester said" not in shown(_notice_now(slack, notice))


def test_a_strangers_resolve_opens_nothing_and_a_stranger_submitting_is_refused_in_the_modal(
        team_bolt, slack, committing_factory):
    ticket, notice = _routed(team_bolt, slack, committing_factory)
    resolve = _button(notice.args["blocks"], ActionId.TEAM_RESOLVE)

    team_bolt.click(ActionId.TEAM_RESOLVE, resolve["value"], user=STRANGER, channel=TEAM,
                    message_ts=notice.response["ts"])
    team_bolt.settled()
    assert slack.calls("views.open") == []
    assert "Only members of Identity & Access's channel" in _to(slack, STRANGER)[0]["text"]

    # A modal opened for a member and submitted by someone else (or after they left
    # the channel) is checked again.
    team_bolt.click(ActionId.TEAM_RESOLVE, resolve["value"], user=MEMBER, channel=TEAM,
                    message_ts=notice.response["ts"])
    view = slack.last("views.open").response["view"]
    refused = team_bolt.submit_view(view, {BlockId.RESOLUTION_NOTE: {ActionId.RESOLUTION_NOTE: NOTE}},
                                    user=STRANGER)
    errors = refused.json()["errors"]
    assert refused.json()["response_action"] == "errors"
    assert "Only members of Identity & Access's channel" in errors[BlockId.RESOLUTION_NOTE]
    tampered = team_bolt.submit_view({**view, "private_metadata": f"t={ticket.ticket_id};x"},
                                     {BlockId.RESOLUTION_NOTE: {ActionId.RESOLUTION_NOTE: NOTE}}, user=MEMBER)
    assert tampered.json()["errors"] == {
        BlockId.RESOLUTION_NOTE: "This form is not valid any more. Close it and click Resolve again."}
    assert _one(committing_factory, Ticket).status == "in_progress"
    with committing_factory() as session:
        assert session.scalars(select(PersonResolution)).all() == []
    assert [e.detail["work"] for e in _audit(committing_factory)] == ["resolve", "resolve"]


def test_a_tampered_take_button_is_refused_and_changes_nothing(team_bolt, slack, committing_factory):
    ticket, notice = _routed(team_bolt, slack, committing_factory)
    for value in (f"t={ticket.ticket_id};s=1", "t=0", json.dumps({"t": ticket.ticket_id})):
        team_bolt.click(ActionId.TEAM_TAKE, value, user=MEMBER, channel=TEAM,
                        message_ts=notice.response["ts"])
    team_bolt.settled()
    assert {e["text"] for e in _to(slack, MEMBER)} == {
        "That button is not valid any more. Nothing was changed."}
    assert _one(committing_factory, Ticket).assigned_to is None


def _audit(sessions) -> list[AuditEvent]:
    with sessions() as session:
        return session.scalars(select(AuditEvent).where(
            AuditEvent.event_type == audit.TEAM_ACTION_DENIED).order_by(AuditEvent.id)).all()
