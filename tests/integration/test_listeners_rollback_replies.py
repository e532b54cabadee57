"""Rollback replies, in process: the real app from `create_app`, Slack's signed requests,
real PostgreSQL and Redis, the fake Slack Web API.

`/rollback` answers with an ephemeral confirm step, in any channel, the bot a member or
not. After Confirm or Cancel, the step is replaced by the outcome through the click's
response URL, so it cannot be clicked twice; every answer to the admin reaches them
where the bot cannot post. Without a response URL that works, the answer falls back
to an ephemeral message, then to a DM.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.delivery.slack_client import make_web_client
from bot.views import ActionId
from bot.workflows import announce
from models import ActionHistory, Ticket
from tests.support.harness import ADMIN, CHANNEL, ESCALATIONS, VPN, resolved_ticket, shown, wait_until

PRIVATE = "CPRIVATEOPS"  # where the admin works; the bot was never invited


def _action(sessions) -> ActionHistory:
    ticket_id = resolved_ticket(sessions)
    with sessions() as session:
        return session.scalars(select(ActionHistory).where(ActionHistory.ticket_id == ticket_id)).one()


def _confirm_step(bolt, action, *, reason="wrong answer") -> dict:
    """/rollback in the channel without the bot: the confirm step (the ack)."""
    answer = bolt.command("/rollback", f"{action.id.hex[:8]} {reason}", user=ADMIN, channel=PRIVATE)
    said = answer.json()
    assert said["response_type"] == "ephemeral" and said["text"].startswith("Roll back")
    return said


def _button(blocks, action_id) -> dict:
    for block in blocks:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no {action_id} in {blocks!r}")


def _click(bolt, said, action_id):
    value = _button(said["blocks"], action_id)["value"]
    answer = bolt.click(action_id, value, user=ADMIN, channel=PRIVATE, ephemeral=True)
    assert (answer.status_code, answer.text) == (200, "")


def test_confirm_in_a_channel_without_the_bot_replaces_the_step_with_the_outcome(bolt, slack,
                                                                                 committing_factory):
    slack.keep_bot_out(PRIVATE)
    action = _action(committing_factory)
    said = _confirm_step(bolt, action)

    _click(bolt, said, ActionId.ROLLBACK_CONFIRM)

    bolt.settled()
    with committing_factory() as session:
        assert session.get(ActionHistory, action.id).rolled_back is True
    [done] = slack.told(ADMIN)
    assert (done["via"], done["replace_original"]) == ("response_url", True)
    assert "Rolled back" in shown(done) and "wrong answer" in shown(done)
    # The outcome has no buttons left to click.
    assert not any(b.get("type") == "actions" for b in done["blocks"])
    # Nothing was tried where the bot cannot post; the ticket's thread and the team are told.
    assert slack.calls("chat.postEphemeral") == []
    assert [c.args["channel"] for c in slack.calls("chat.postMessage")] == [CHANNEL, ESCALATIONS]


def test_a_second_confirm_from_a_stale_step_is_refused_in_its_place(bolt, slack, committing_factory):
    slack.keep_bot_out(PRIVATE)
    action = _action(committing_factory)
    said = _confirm_step(bolt, action)
    _click(bolt, said, ActionId.ROLLBACK_CONFIRM)
    bolt.settled()

    # Slack would have replaced the step; a retried or stale click gets a refusal in
    # its place, never a second rollback.
    _click(bolt, said, ActionId.ROLLBACK_CONFIRM)

    bolt.settled()
    first, second = slack.told(ADMIN)
    assert "Rolled back" in shown(first)
    assert second["via"] == "response_url" and second["replace_original"] is True
    assert "already rolled back" in second["text"].lower()
    with committing_factory() as session:
        rollbacks = session.scalars(
            select(ActionHistory).where(ActionHistory.action_type == "ROLLBACK")).all()
    assert len(rollbacks) == 1


def test_cancel_replaces_the_step_and_changes_nothing(bolt, slack, committing_factory):
    slack.keep_bot_out(PRIVATE)
    action = _action(committing_factory)
    said = _confirm_step(bolt, action)

    _click(bolt, said, ActionId.ROLLBACK_CANCEL)

    bolt.settled()
    [told] = slack.told(ADMIN)
    assert (told["via"], told["replace_original"], told["text"]) == (
        "response_url", True, "Rollback cancelled. Nothing changed.")
    with committing_factory() as session:
        assert session.get(ActionHistory, action.id).rolled_back is False
        assert session.get(Ticket, action.ticket_id).status == "resolved"


def test_a_conflict_on_confirm_replaces_the_step_with_why(bolt, slack, committing_factory):
    slack.keep_bot_out(PRIVATE)
    action = _action(committing_factory)
    said = _confirm_step(bolt, action)
    with committing_factory() as session:  # someone reopened it meanwhile
        session.get(Ticket, action.ticket_id).status = "open"
        session.commit()

    _click(bolt, said, ActionId.ROLLBACK_CONFIRM)

    bolt.settled()
    [told] = slack.told(ADMIN)
    assert told["replace_original"] is True and "changed after action" in told["text"]
    with committing_factory() as session:
        assert session.get(ActionHistory, action.id).rolled_back is False


def test_without_a_working_response_url_the_answer_falls_back_to_ephemeral_then_to_a_dm(
        listener_runtime, slack):
    client = make_web_client(listener_runtime.settings)
    dead = "http://127.0.0.1:9/response/gone"  # nothing listens on the discard port

    announce.reply(client, response_url=dead, channel=CHANNEL, user=ADMIN, text="Done once.")
    [ephemeral] = slack.told(ADMIN)
    assert (ephemeral["via"], ephemeral["channel"]) == ("ephemeral", CHANNEL)

    slack.keep_bot_out(PRIVATE)
    announce.reply(client, response_url=None, channel=PRIVATE, user=ADMIN, text="Done twice.")
    [dm] = wait_until(lambda: slack.messages(ADMIN), what="the DM")
    assert dm["text"] == "Done twice." and VPN not in dm["text"]
    assert [c.outcome for c in slack.calls("chat.postEphemeral")] == ["ok", "not_in_channel"]
