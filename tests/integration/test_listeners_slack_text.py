"""Slack's escaping of what people type, through the real app in process (signed
requests, real PostgreSQL and Redis, the fake Slack).

Slack sends the text of slash commands and messages with `&`, `<` and `>` as `&amp;`,
`&lt;` and `&gt;`. The bot stores and reasons on the text as typed, and escapes it once
when it shows it: a person who typed `<b>PAPER JAM</b> & more` reads exactly that in
Slack, not `&lt;b&gt;…`. A form's text is sent as typed and kept as typed.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.views import ActionId, BlockId, CallbackId, parse_rollback_value, ticket_value
from models import ActionHistory, Ticket, TicketMessage, TicketStatus
from tests.support.harness import ADMIN, CHANNEL, REQUESTER, shown, wait_until
from tests.support.scripted_agent import AnswersInTurn, vpn_answer

TYPED = "<b>PAPER JAM</b> & more"
# What Slack sends for it, and what mrkdwn must carry for Slack to show it as typed.
FROM_SLACK = "&lt;b&gt;PAPER JAM&lt;/b&gt; &amp; more"
SHOWN = FROM_SLACK
TWICE = "&amp;lt;b&amp;gt;"  # what the double escaping showed
DM = "D0REQUESTER"
USER_TS = "1732528000.000200"
UNSURE = vpn_answer(confidence=0.35, action="request_clarification")  # the bot asks for detail


def _tickets(sessions) -> list[Ticket]:
    with sessions() as session:
        return list(session.scalars(select(Ticket).order_by(Ticket.ticket_id)))


def _dm(text: str, ts: str, *, thread_ts: str | None = None) -> dict:
    event = {"type": "message", "channel_type": "im", "channel": DM, "user": REQUESTER,
             "text": text, "ts": ts, "event_ts": ts}
    return {**event, "thread_ts": thread_ts} if thread_ts else event


def test_a_ticket_command_is_stored_as_typed_and_shown_escaped_once(
        bolt, slack, listener_runtime, committing_factory):
    # Unsure: the bot asks for detail, and the ticket stays open in the requester's Home.
    agent = listener_runtime.agent = AnswersInTurn(UNSURE)

    said = bolt.command("/ticket", FROM_SLACK).json()

    assert SHOWN in shown(said) and TWICE not in shown(said)
    [ticket] = _tickets(committing_factory)
    assert ticket.description == TYPED
    bolt.settled()
    assert agent.seen[0].description == TYPED  # the agent reads what the person typed
    # In App Home, among their tickets, too.
    bolt.event({"type": "app_home_opened", "user": REQUESTER, "channel": "D0HOME", "tab": "home",
                "event_ts": "1764400100.000200"})
    bolt.settled()
    home = shown(slack.home_view(REQUESTER))
    assert SHOWN in home and TWICE not in home


def test_a_person_typing_an_entity_sees_the_entity(bolt, committing_factory):
    # They typed "&lt;" literally; Slack sent "&amp;lt;".
    said = shown(bolt.command("/ticket", "what does &amp;lt; mean in the wiki").json())

    assert _tickets(committing_factory)[0].description == "what does &lt; mean in the wiki"
    assert "what does &amp;lt; mean" in said


def test_slacks_own_markup_and_a_typed_channel_ping_still_never_ping(bolt, committing_factory):
    said = shown(bolt.command("/ticket", "printer <!channel> &lt;!here&gt; <@U0OTHER>").json())

    assert _tickets(committing_factory)[0].description == "printer <!channel> <!here> <@U0OTHER>"
    assert "printer &lt;!channel&gt; &lt;!here&gt; &lt;@U0OTHER&gt;" in said
    assert "<!channel>" not in said and "<!here>" not in said


def test_a_dm_and_its_thread_reply_are_stored_as_typed(bolt, slack, listener_runtime, committing_factory):
    agent = listener_runtime.agent = AnswersInTurn(UNSURE, vpn_answer())
    assert bolt.event(_dm(FROM_SLACK, USER_TS)).status_code == 200
    slack.wait_for("chat.postMessage")
    wait_until(lambda: (t := _tickets(committing_factory)[0]).status == TicketStatus.AWAITING_USER
               and t.slack_message_ts, what="the bot's question")

    bolt.event(_dm("it says &lt;E42&gt; &amp; stops", "1732528100.000300", thread_ts=USER_TS))
    bolt.settled()

    [ticket] = _tickets(committing_factory)
    assert ticket.description == TYPED
    with committing_factory() as session:
        [reply] = session.scalars(select(TicketMessage)).all()
    assert reply.text == "it says <E42> & stops"
    wait_until(lambda: len(agent.seen) == 2, what="the re-decision")
    assert agent.seen[1].description == f"{TYPED}\n\nit says <E42> & stops"
    history = shown(bolt.command("/history", str(ticket.ticket_id)).json())
    assert "it says &lt;E42&gt; &amp; stops" in history and "&amp;lt;" not in history


def test_a_mention_is_stored_as_typed_without_the_bots_mention(bolt, committing_factory):
    bolt.event({"type": "app_mention", "channel": CHANNEL, "user": REQUESTER,
                "text": f"<@UBOT> {FROM_SLACK}", "ts": USER_TS, "event_ts": USER_TS})

    assert _tickets(committing_factory)[0].description == TYPED


def test_a_reaction_and_the_shortcut_read_the_message_as_typed(bolt, slack, committing_factory):
    reacted = slack.post_as_person(CHANNEL, "UAUTHOR", FROM_SLACK)
    bolt.event({"type": "reaction_added", "user": "UHELPER", "reaction": "ticket", "item_user": "UAUTHOR",
                "item": {"type": "message", "channel": CHANNEL, "ts": reacted},
                "event_ts": "1764400100.000100"})
    shortcut = slack.post_as_person(CHANNEL, "UAUTHOR", "second &amp; &lt;last&gt;")
    bolt.message_shortcut(CallbackId.CREATE_TICKET, {"type": "message", "user": "UAUTHOR",
                                                     "text": "second &amp; &lt;last&gt;", "ts": shortcut},
                          user="UHELPER")
    bolt.settled()

    assert [t.description for t in _tickets(committing_factory)] == [TYPED, "second & <last>"]


def test_an_autonomy_reason_is_announced_as_typed(bolt, slack, committing_factory):
    said = shown(bolt.command("/autonomy", "pause rollout &lt;v2&gt; &amp; tests", user=ADMIN).json())

    assert "rollout &lt;v2&gt; &amp; tests" in said and "&amp;lt;" not in said


def test_a_rollback_reason_is_kept_as_typed(bolt, slack, committing_factory):
    bolt.command("/ticket", "the VPN keeps dropping")
    bolt.settled()
    with committing_factory() as session:
        action = session.scalars(select(ActionHistory)).one()

    reason = "wrong &lt;fix&gt; &amp; more"  # as Slack sends it
    preview = bolt.command("/rollback", f"{action.id.hex[:8]} {reason}", user=ADMIN).json()

    confirm = next(e for b in preview["blocks"] for e in b.get("elements") or []
                   if e.get("action_id") == ActionId.ROLLBACK_CONFIRM)
    assert parse_rollback_value(confirm["value"]) == (action.id, "wrong <fix> & more")
    assert "&amp;lt;" not in shown(preview)


def test_a_form_is_kept_as_typed(bolt, slack, committing_factory):
    # Slack does not escape what was typed in a form: "&lt;" there is what they typed.
    bolt.command("/ticket", "help")
    bolt.settled()
    with committing_factory() as session:
        ticket = session.scalars(select(Ticket)).one()
        ticket.assigned_to, ticket.status = "UAGENT", TicketStatus.IN_PROGRESS
        session.commit()
        ticket_id = ticket.ticket_id
    bolt.home_click(ActionId.MY_ADD_DETAIL, ticket_value(ticket_id))
    modal = slack.calls("views.open")[0].response["view"]

    bolt.submit_view(modal, {BlockId.DETAIL_TEXT: {ActionId.DETAIL_TEXT: "a <b> & &lt; c"}})
    bolt.settled()

    with committing_factory() as session:
        [detail] = session.scalars(select(TicketMessage)).all()
    assert detail.text == "a <b> & &lt; c"
    history = shown(bolt.command("/history", str(ticket_id)).json())
    assert "a &lt;b&gt; &amp; &amp;lt; c" in history
