"""Every listener in process: the real app from `create_app`, Slack's signed requests
handed to `App.dispatch`, real PostgreSQL and Redis, the fake Slack Web API.

Each test reads what the person was answered (a slash command's ack), what they saw
in Slack (the fake's calls) and what was stored. The end-to-end tests (tests/e2e/) run
the same flows through a `resolvemeq serve` subprocess; these need no server and show
which listener answered what.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.domain import audit
from bot.views import (
    ActionId,
    feedback_value,
    parse_rollback_value,
    rating_action_id,
    ticket_value,
    why_value,
)
from handlers.commands import STATS_PENDING
from models import ActionHistory, AuditEvent, Ticket, TicketResolution
from tests.support.harness import ADMIN, CHANNEL, ESCALATIONS, REQUESTER, STRANGER, VPN, shown, wait_until

DM = "D0REQUESTER"
USER_TS = "1732528000.000200"


# Helpers ------------------------------------------------------------------------------

def _tickets(sessions) -> list[Ticket]:
    with sessions() as session:
        return session.scalars(select(Ticket).order_by(Ticket.ticket_id)).all()


def _one(sessions, model, *where):
    with sessions() as session:
        return session.scalars(select(model).where(*where)).one()


def _audits(sessions, event_type: str) -> list[AuditEvent]:
    with sessions() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type)).all()


def _ephemeral(answer) -> dict:
    assert answer.status_code == 200, answer.text
    said = answer.json()
    assert said["response_type"] == "ephemeral", said
    return said


def _button(blocks, action_id: str) -> dict:
    for block in blocks or []:
        for element in [*(block.get("elements") or []), block.get("accessory") or {}]:
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no button {action_id} in {blocks!r}")


def _answered(sessions, ticket_id: int) -> Ticket:
    """Wait until the bot's answer to a ticket was posted and remembered."""
    def done():
        ticket = _one(sessions, Ticket, Ticket.ticket_id == ticket_id)
        return ticket if ticket.slack_message_ts else None

    return wait_until(done, what=f"ticket #{ticket_id} to be answered")


def _resolved(bolt, slack, sessions):
    """A /ticket the bot auto-resolved: (ticket, its action, the resolution post)."""
    _ephemeral(bolt.command("/ticket", VPN))
    [post] = slack.wait_for("chat.postMessage")
    [ticket] = _tickets(sessions)
    ticket = _answered(sessions, ticket.ticket_id)
    action = _one(sessions, ActionHistory, ActionHistory.ticket_id == ticket.ticket_id)
    assert (action.action_type, ticket.status) == ("AUTO_RESOLVE", "resolved")
    return ticket, action, post


def _ephemerals_to(slack, user: str) -> list[dict]:
    return [e for e in slack.ephemerals() if e["user"] == user]


# /ticket ------------------------------------------------------------------------------

def test_ticket_is_stored_before_the_ack_names_it_and_decided_after(bolt, slack, committing_factory):
    said = _ephemeral(bolt.command("/ticket", VPN))

    [ticket] = _tickets(committing_factory)  # committed by the time the ack is out
    assert f"ticket *#{ticket.ticket_id}*" in shown(said)
    assert (ticket.source, ticket.user_id, ticket.slack_channel_id) == ("slash_command", REQUESTER, CHANNEL)
    [post] = slack.wait_for("chat.postMessage")
    assert post.args["channel"] == CHANNEL and f"#{ticket.ticket_id}" in shown(post.args)
    assert _answered(committing_factory, ticket.ticket_id).status == "resolved"


def test_ticket_without_text_is_refused_in_the_ack_and_stores_nothing(bolt, slack, committing_factory):
    said = _ephemeral(bolt.command("/ticket", "   "))

    assert "Tell me what is wrong" in shown(said) and said["blocks"]
    bolt.settled()
    assert _tickets(committing_factory) == [] and slack.calls("chat.postMessage") == []


# /history -----------------------------------------------------------------------------

def test_history_answers_the_requester_and_refuses_a_stranger(bolt, slack, committing_factory):
    ticket, action, _ = _resolved(bolt, slack, committing_factory)

    mine = _ephemeral(bolt.command("/history", str(ticket.ticket_id)))
    assert mine["text"] == f"History of ticket #{ticket.ticket_id}"
    assert f"`{action.id.hex[:8]}`" in shown(mine)

    theirs = shown(_ephemeral(bolt.command("/history", str(ticket.ticket_id), user=STRANGER)))
    assert "Only the requester and helpdesk admins" in theirs and action.id.hex[:8] not in theirs
    assert "Ticket #999 does not exist" in shown(_ephemeral(bolt.command("/history", "999", user=ADMIN)))


# /rollback, Confirm and Cancel ----------------------------------------------------------

def test_rollback_preview_then_confirm_undoes_the_action_and_tells_the_admin(bolt, slack, committing_factory):
    ticket, action, post = _resolved(bolt, slack, committing_factory)

    preview = _ephemeral(bolt.command("/rollback", f"{action.id.hex[:8]} wrong answer", user=ADMIN))
    assert preview["text"] == f"Roll back {action.id.hex[:8]}?"
    confirm = _button(preview["blocks"], ActionId.ROLLBACK_CONFIRM)
    assert parse_rollback_value(confirm["value"]) == (action.id, "wrong answer")
    assert _one(committing_factory, ActionHistory, ActionHistory.id == action.id).rolled_back is False

    answer = bolt.click(ActionId.ROLLBACK_CONFIRM, confirm["value"], user=ADMIN, ephemeral=True)

    assert (answer.status_code, answer.text) == (200, "")
    undone = _one(committing_factory, ActionHistory, ActionHistory.id == action.id)
    assert (undone.rolled_back, undone.rolled_back_by) == (True, ADMIN)
    assert undone.rollback_reason == "wrong answer"
    assert _one(committing_factory, Ticket, Ticket.ticket_id == ticket.ticket_id).status == "new"
    bolt.settled()
    # The outcome replaces the confirm step (its buttons gone), through the response URL.
    [done] = slack.responses(ADMIN)
    assert (done.args["replace_original"], done.args["response_type"]) == (True, "ephemeral")
    assert "Rolled back" in shown(done.args)
    assert not any(b.get("type") == "actions" for b in done.args["blocks"])
    assert _ephemerals_to(slack, ADMIN) == []
    [notice] = [c for c in slack.calls("chat.postMessage") if c.args.get("thread_ts")]
    assert notice.args["thread_ts"] == post.response["ts"] and f"<@{ADMIN}>" in shown(notice.args)


def test_rollback_cancel_changes_nothing_and_says_so(bolt, slack, committing_factory):
    _, action, _ = _resolved(bolt, slack, committing_factory)
    preview = _ephemeral(bolt.command("/rollback", action.id.hex[:8], user=ADMIN))
    cancel = _button(preview["blocks"], ActionId.ROLLBACK_CANCEL)

    answer = bolt.click(ActionId.ROLLBACK_CANCEL, cancel["value"], user=ADMIN, ephemeral=True)
    assert answer.status_code == 200

    bolt.settled()
    [told] = slack.responses(ADMIN)
    assert (told.args["text"], told.args["replace_original"]) == (
        "Rollback cancelled. Nothing changed.", True)
    assert _one(committing_factory, ActionHistory, ActionHistory.id == action.id).rolled_back is False


def test_a_non_admin_rollback_is_refused_and_the_denial_stays_audited(bolt, slack, committing_factory):
    ticket, action, _ = _resolved(bolt, slack, committing_factory)

    said = _ephemeral(bolt.command("/rollback", f"{action.id.hex[:8]} nope", user=STRANGER))

    assert "Only helpdesk admins" in shown(said)
    assert not any(b.get("type") == "actions" for b in said["blocks"]), "no Confirm for a stranger"
    # The refusal rolled the request back, except the audit row it must keep.
    [denied] = _audits(committing_factory, audit.ROLLBACK_DENIED)
    assert (denied.actor_id, denied.action_id, denied.detail["stage"]) == (STRANGER, action.id, "preview")
    assert _one(committing_factory, Ticket, Ticket.ticket_id == ticket.ticket_id).status == "resolved"


def test_rollback_without_an_id_shows_the_usage(bolt, committing_factory):
    assert "Usage: `/rollback" in _ephemeral(bolt.command("/rollback", " ", user=ADMIN))["text"]


# Feedback clicks ------------------------------------------------------------------------

def test_yes_then_stars_are_recorded_and_the_message_redrawn(bolt, slack, committing_factory):
    ticket, _, post = _resolved(bolt, slack, committing_factory)
    ts = post.response["ts"]

    yes = bolt.click(ActionId.FEEDBACK_YES, feedback_value(ticket.ticket_id), message_ts=ts)
    stars = bolt.click(rating_action_id(4), feedback_value(ticket.ticket_id, score=4), message_ts=ts)

    assert [(a.status_code, a.text) for a in (yes, stars)] == [(200, "")] * 2
    resolution = _one(committing_factory, TicketResolution, TicketResolution.ticket_id == ticket.ticket_id)
    assert (resolution.resolution_confirmed, resolution.satisfaction_score) == (True, 4)
    bolt.settled()
    updates = slack.calls("chat.update")
    assert [u.args["ts"] for u in updates] == [ts, ts]
    assert "Rated 4/5" in shown(slack.messages(CHANNEL)[0])


def test_no_reopens_the_ticket_for_a_person(bolt, slack, committing_factory):
    ticket, _, post = _resolved(bolt, slack, committing_factory)

    answer = bolt.click(ActionId.FEEDBACK_NO, feedback_value(ticket.ticket_id),
                        message_ts=post.response["ts"])

    assert answer.status_code == 200
    reopened = _one(committing_factory, Ticket, Ticket.ticket_id == ticket.ticket_id)
    assert reopened.status == "open"
    assert _one(committing_factory, TicketResolution,
                TicketResolution.ticket_id == ticket.ticket_id).reopened is True
    wait_until(lambda: slack.messages(ESCALATIONS), what="the escalation channel's notice")


def test_yes_or_stars_on_an_old_answer_after_a_withdrawal_are_refused_and_only_audited(
        bolt, slack, committing_factory):
    ticket, _, post = _resolved(bolt, slack, committing_factory)
    ts = post.response["ts"]
    # No reopens it; then the requester withdraws it from App Home.
    bolt.click(ActionId.FEEDBACK_NO, feedback_value(ticket.ticket_id), message_ts=ts)
    bolt.home_click(ActionId.MY_WITHDRAW, ticket_value(ticket.ticket_id))
    bolt.settled()
    assert _one(committing_factory, Ticket, Ticket.ticket_id == ticket.ticket_id).status == "closed"
    updates = len(slack.calls("chat.update"))

    yes = bolt.click(ActionId.FEEDBACK_YES, feedback_value(ticket.ticket_id), message_ts=ts)
    stars = bolt.click(rating_action_id(5), feedback_value(ticket.ticket_id, score=5), message_ts=ts)
    again = bolt.click(ActionId.FEEDBACK_NO, feedback_value(ticket.ticket_id), message_ts=ts)

    assert [(a.status_code, a.text) for a in (yes, stars, again)] == [(200, "")] * 3
    bolt.settled()
    stored = _one(committing_factory, Ticket, Ticket.ticket_id == ticket.ticket_id)
    assert (stored.status, stored.resolved_at) == ("closed", None)
    resolution = _one(committing_factory, TicketResolution, TicketResolution.ticket_id == ticket.ticket_id)
    assert (resolution.resolution_confirmed, resolution.satisfaction_score) == (False, None)
    with committing_factory() as session:
        kinds = session.scalars(select(ActionHistory.action_type).where(
            ActionHistory.ticket_id == ticket.ticket_id).order_by(ActionHistory.executed_at)).all()
    assert kinds == ["AUTO_RESOLVE", "REOPEN"]
    refusals = [e["text"] for e in _ephemerals_to(slack, REQUESTER) if "withdrew" in e["text"]]
    assert refusals == [f"You withdrew ticket #{ticket.ticket_id}, so this answer was not recorded. "
                        "Open a new ticket if you still need help."] * 3
    attempts = _audits(committing_factory, audit.FEEDBACK_ON_WITHDRAWN)
    assert [(a.actor_id, a.detail["kind"]) for a in attempts] == [
        (REQUESTER, "answer"), (REQUESTER, "rating"), (REQUESTER, "answer")]
    # The message still shows the answer it had: nothing was redrawn.
    assert len(slack.calls("chat.update")) == updates


def test_why_shows_the_reasoning_to_the_clicker_only(bolt, slack, committing_factory):
    _, action, _ = _resolved(bolt, slack, committing_factory)

    assert bolt.click(ActionId.WHY, why_value(action.id), user=STRANGER).status_code == 200

    bolt.settled()
    [why] = _ephemerals_to(slack, STRANGER)
    assert action.agent_reasoning.split()[0] in shown(why)


def test_a_strangers_click_is_refused_to_them_and_only_the_denial_is_stored(bolt, slack, committing_factory):
    ticket, _, post = _resolved(bolt, slack, committing_factory)

    answer = bolt.click(ActionId.FEEDBACK_YES, feedback_value(ticket.ticket_id), user=STRANGER,
                        message_ts=post.response["ts"])

    assert (answer.status_code, answer.text) == (200, "")
    bolt.settled()
    [refusal] = _ephemerals_to(slack, STRANGER)
    assert refusal["channel"] == CHANNEL and "requester" in refusal["text"].lower()
    assert _one(committing_factory, TicketResolution,
                TicketResolution.ticket_id == ticket.ticket_id).resolution_confirmed is None
    [denied] = _audits(committing_factory, audit.FEEDBACK_WRONG_USER)
    assert denied.actor_id == STRANGER and denied.ticket_id == ticket.ticket_id
    assert slack.calls("chat.update") == []


def test_a_tampered_button_is_refused_and_stores_nothing(bolt, slack, committing_factory):
    ticket, _, _ = _resolved(bolt, slack, committing_factory)

    assert bolt.click(ActionId.FEEDBACK_YES, feedback_value(ticket.ticket_id) + ";s=5").status_code == 200
    assert bolt.click(ActionId.ROLLBACK_CONFIRM, "a=nope;r=", user=ADMIN).status_code == 200

    bolt.settled()
    assert [e["text"] for e in _ephemerals_to(slack, REQUESTER)] == [
        "That button is not valid any more. Nothing was recorded."]
    # On the confirm step: in its place, through the click's response URL.
    assert [(r.args["text"], r.args["replace_original"]) for r in slack.responses(ADMIN)] == [
        ("That button is not valid any more. Nothing was rolled back.", True)]
    resolution = _one(committing_factory, TicketResolution, TicketResolution.ticket_id == ticket.ticket_id)
    assert resolution.response_received_at is None


# Events: a DM, a mention, the App Home ------------------------------------------------------

def test_a_dm_opens_a_ticket_answered_in_its_thread(bolt, slack, committing_factory):
    event = {"type": "message", "channel_type": "im", "channel": DM, "user": REQUESTER,
             "text": VPN, "ts": USER_TS, "event_ts": USER_TS}

    answer = bolt.event(event)

    assert (answer.status_code, answer.text) == (200, "")
    [ticket] = _tickets(committing_factory)
    assert (ticket.source, ticket.description, ticket.slack_thread_ts) == ("dm", VPN, USER_TS)
    [post] = slack.wait_for("chat.postMessage")
    assert (post.args["channel"], post.args["thread_ts"]) == (DM, USER_TS)


def test_a_mention_opens_a_ticket_without_the_bots_mention(bolt, slack, committing_factory):
    event = {"type": "app_mention", "channel": CHANNEL, "user": REQUESTER,
             "text": "<@UBOT> the printer on floor 3 is jammed", "ts": USER_TS, "event_ts": USER_TS}

    assert bolt.event(event).status_code == 200

    [ticket] = _tickets(committing_factory)
    assert (ticket.source, ticket.description) == ("mention", "the printer on floor 3 is jammed")
    [post] = slack.wait_for("chat.postMessage")
    assert (post.args["channel"], post.args["thread_ts"]) == (CHANNEL, USER_TS)


def test_a_retried_event_opens_one_ticket(bolt, slack, committing_factory):
    event = {"type": "app_mention", "channel": CHANNEL, "user": REQUESTER,
             "text": f"<@UBOT> {VPN}", "ts": USER_TS, "event_ts": USER_TS}

    assert bolt.event(event, event_id="Ev0SAME").status_code == 200
    assert bolt.event(event, event_id="Ev0SAME", retry=1).status_code == 200

    bolt.settled()
    assert len(_tickets(committing_factory)) == 1 and len(slack.calls("chat.postMessage")) == 1


def test_app_home_is_published_with_the_admin_tools_for_an_admin(bolt, slack, committing_factory):
    for user in (REQUESTER, ADMIN):
        answer = bolt.event({"type": "app_home_opened", "user": user, "channel": "D0HOME",
                             "tab": "home", "event_ts": "1732527100.000100"})
        assert answer.status_code == 200

    bolt.settled()
    assert [c.args["user_id"] for c in slack.calls("views.publish")] == [REQUESTER, ADMIN]
    for user in (REQUESTER, ADMIN):
        view = shown(slack.home_view(user))
        assert "Resolution stats" in view and ("Admin tools" in view) is (user == ADMIN)


# /resolution-stats ------------------------------------------------------------------------

def _stats_seen(bolt, slack, text: str) -> dict:
    """The figures as the person sees them: the acknowledgement when they were counted
    within STATS_ACK_WAIT; on a machine too busy for that, what the command's response
    URL got after the "Counting…" note (the wait is a latency bound, not the behaviour)."""
    before = len(slack.responses())
    said = _ephemeral(bolt.command("/resolution-stats", text))
    if said["text"] != STATS_PENDING:
        return said
    return wait_until(lambda: (slack.responses()[before:] or [None])[0], what="the stats").args


def test_stats_answer_in_the_ack_and_bad_days_show_the_usage(bolt, slack, committing_factory):
    ticket, _, post = _resolved(bolt, slack, committing_factory)
    bolt.click(ActionId.FEEDBACK_YES, feedback_value(ticket.ticket_id), message_ts=post.response["ts"])
    bolt.settled()

    said = _stats_seen(bolt, slack, "7")
    assert said["text"] == "Resolution stats" and "100%" in shown(said)
    usage = _ephemeral(bolt.command("/resolution-stats", "week"))
    assert "Usage: `/resolution-stats [days]`" in usage["text"]
