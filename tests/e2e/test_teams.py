"""Teams work in Slack, end to end: the real `resolvemeq serve` with TEAM_CHANNELS, the
fake Slack, signed clicks and a signed modal submission.

A routed ticket's notice reaches the team's channel; a member takes it and resolves it;
the requester rates the person's resolution, which is counted as the person's; a
stranger's take is refused.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.views import ActionId, BlockId, parse_feedback_target, rating_action_id
from models import (
    ActionHistory,
    ActionType,
    AuditEvent,
    PersonResolution,
    Ticket,
    TicketResolution,
    TicketStatus,
)
from tests.support.databases import E2E_REDIS_URL, clean_e2e
from tests.support.harness import CHANNEL, ESCALATIONS, REQUESTER, STRANGER, Server, shown, wait_until

TEAM = "CIDENTITY"
MEMBER = "UMEMBER"
ACCESS = "I need access to the finance shared drive"
NOTE = "Added you to Finance-RW. Sign out of Windows and back in, then open \\\\files\\finance."


@pytest.fixture(scope="module")
def team_server(slack, e2e_db_url):
    running = Server(database_url=e2e_db_url, slack=slack, redis_url=E2E_REDIS_URL,
                     TEAM_CHANNELS=f"Identity & Access={TEAM},Network=CNETWORK").start()
    yield running
    running.stop()


@pytest.fixture()
def teams(team_server, slack, e2e_engine):
    slack.set_members(TEAM, ["UOTHER", MEMBER])
    yield team_server
    clean_e2e(e2e_engine)
    slack.reset()


def _posts_to(slack, channel):
    return [c for c in slack.calls("chat.postMessage") if c.args["channel"] == channel and c.outcome == "ok"]


def _posts_saying(slack, words):
    """The requester's side: posts in the ticket's channel that say `words`."""
    return [c for c in _posts_to(slack, CHANNEL) if words in shown(c.args)]


def _button(blocks, action_id):
    for block in blocks or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no {action_id} in {blocks!r}")


def _message(slack, channel, ts):
    found = [m for m in slack.messages(channel) if m["ts"] == ts]
    return found[0] if found else None


def _routed(teams, slack, sessions):
    assert teams.command("/ticket", ACCESS).status_code == 200
    [notice] = wait_until(lambda: _posts_to(slack, TEAM), what="the team notice")
    with sessions() as session:
        ticket = session.scalars(select(Ticket)).one()
    return ticket, notice


def test_a_team_member_takes_and_resolves_a_ticket_and_the_requester_rates_it(teams, slack, e2e_sessions):
    ticket, notice = _routed(teams, slack, e2e_sessions)
    seen = shown(notice.args)
    assert f"Ticket #{ticket.ticket_id} routed to Identity &amp; Access" in seen
    assert f"<@{REQUESTER}>" in seen and f"> {ACCESS}" in seen and "confidence" in seen
    assert _posts_to(slack, ESCALATIONS) == []
    ts = notice.response["ts"]

    # Take it: the ticket is the member's, the notice says so, the requester hears who.
    take = _button(notice.args["blocks"], ActionId.TEAM_TAKE)
    taken = teams.click(ActionId.TEAM_TAKE, take["value"], user=MEMBER, channel=TEAM, message_ts=ts)
    assert taken.status_code == 200
    wait_until(lambda: f"<@{MEMBER}> has it." in shown(_message(slack, TEAM, ts)), what="the redrawn notice")
    [told] = wait_until(lambda: _posts_saying(slack, "is on your ticket"), what="the requester told")
    assert (f"<@{MEMBER}> from *Identity &amp; Access* is on your ticket *#{ticket.ticket_id}*"
            in shown(told.args))

    # Resolve: a modal on the click's trigger, the note submitted, the ticket resolved.
    resolve = _button(notice.args["blocks"], ActionId.TEAM_RESOLVE)
    assert teams.click(ActionId.TEAM_RESOLVE, resolve["value"], user=MEMBER, channel=TEAM,
                       message_ts=ts, trigger_id="trig-e2e-resolve").status_code == 200
    [opened] = slack.wait_for("views.open")
    assert opened.args["trigger_id"] == "trig-e2e-resolve"
    view = opened.response["view"]
    submitted = teams.submit_view(view, {BlockId.RESOLUTION_NOTE: {ActionId.RESOLUTION_NOTE: NOTE}},
                                  user=MEMBER)
    assert (submitted.status_code, submitted.text) == (200, "")
    with e2e_sessions() as session:
        resolved = session.get(Ticket, ticket.ticket_id)
        assert (resolved.status, resolved.assigned_to) == (TicketStatus.RESOLVED, MEMBER)
        person = session.scalars(select(PersonResolution)).one()

    [message] = wait_until(lambda: _posts_saying(slack, "resolved your ticket"),
                           what="the requester's resolution message")
    assert message.args["thread_ts"] == resolved.slack_thread_ts
    assert "Finance-RW" in shown(message.args) and "Did this solve it?" in shown(message.args)
    wait_until(lambda: f"Resolved by <@{MEMBER}>." in shown(_message(slack, TEAM, ts)),
               what="the notice showing the resolution")

    # The requester answers: Yes and five stars, on the person's record.
    yes = _button(message.args["blocks"], ActionId.FEEDBACK_YES)
    five = _button(message.args["blocks"], rating_action_id(5))
    assert parse_feedback_target(five["value"]) == (ticket.ticket_id, person.id, 5)
    at = message.response["ts"]
    assert teams.click(ActionId.FEEDBACK_YES, yes["value"], message_ts=at).status_code == 200
    assert teams.click(rating_action_id(5), five["value"], message_ts=at).status_code == 200
    wait_until(lambda: "Rated 5/5" in shown(_message(slack, CHANNEL, at) or {}), what="the rated message")
    with e2e_sessions() as session:
        rated = session.get(PersonResolution, person.id)
        assert (rated.resolution_confirmed, rated.satisfaction_score) == (True, 5)
        assert session.scalars(select(TicketResolution)).all() == []
        kinds = session.scalars(select(ActionHistory.action_type).where(
            ActionHistory.ticket_id == ticket.ticket_id).order_by(ActionHistory.executed_at)).all()
    assert kinds == [ActionType.ASSIGN_TO_TEAM, ActionType.TAKE, ActionType.RESOLVE]

    # Counted as the person's, not the bot's; /history shows the take and the resolve.
    stats = teams.command("/resolution-stats", "7")
    assert "Resolved by people" in stats.text and "Identity &amp; Access" in stats.text
    history = shown(teams.command("/history", str(ticket.ticket_id)).json())
    assert "*TAKE*" in history and "*RESOLVE*" in history and f"by <@{MEMBER}>" in history
    assert "Added you to Finance-RW" in history


def test_a_strangers_take_is_refused(teams, slack, e2e_sessions):
    ticket, notice = _routed(teams, slack, e2e_sessions)
    take = _button(notice.args["blocks"], ActionId.TEAM_TAKE)

    answer = teams.click(ActionId.TEAM_TAKE, take["value"], user=STRANGER, channel=TEAM,
                         message_ts=notice.response["ts"])

    assert (answer.status_code, answer.text) == (200, "")
    [refusal] = wait_until(lambda: [e for e in slack.ephemerals(TEAM) if e["user"] == STRANGER],
                           what="the refusal")
    assert "Only members of Identity & Access's channel and helpdesk admins can take" in refusal["text"]
    with e2e_sessions() as session:
        assert session.get(Ticket, ticket.ticket_id).assigned_to is None
        assert session.scalars(select(ActionHistory.action_type)).all() == [ActionType.ASSIGN_TO_TEAM]
        [denied] = session.scalars(select(AuditEvent).where(
            AuditEvent.event_type == "team_action_denied")).all()
    assert (denied.actor_id, denied.ticket_id) == (STRANGER, ticket.ticket_id)
    assert slack.calls("chat.update") == []
    assert not _posts_saying(slack, "is on your ticket")
