"""The main flows, end to end over signed HTTP against the real server."""

from __future__ import annotations

from sqlalchemy import select

from bot.sandbox.standin import RESPONSE_METHOD
from bot.views import ActionId, BlockId, feedback_value, rating_action_id
from models import ActionHistory, ActionType, Ticket, TicketResolution, TicketStatus
from tests.support.harness import CHANNEL, ESCALATIONS, REQUESTER, STRANGER, shown, wait_until

VPN = "My VPN keeps disconnecting when I work from home"


def _ticket_resolved(e2e, slack, e2e_sessions, text=VPN):
    response = e2e.command("/ticket", text)
    assert response.status_code == 200
    assert "ticket *#1*" in response.text or "ticket #1" in response.text
    [post] = slack.wait_for("chat.postMessage")

    def recorded():  # the bot stores the answer's ts once Slack has answered the post
        with e2e_sessions() as session:
            ticket = session.scalars(select(Ticket)).one()
            return ticket if ticket.slack_message_ts else None

    ticket = wait_until(recorded, what="the answer's ts stored")
    with e2e_sessions() as session:
        action = session.scalars(select(ActionHistory)).one()
    return ticket, action, post


def _button(post, action_id):
    for block in post.args["blocks"]:
        for element in [*block.get("elements", []), block.get("accessory") or {}]:
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no button {action_id} in the message")


def test_ticket_is_auto_resolved_confirmed_rated_and_counted(e2e, slack, e2e_sessions):
    ticket, action, post = _ticket_resolved(e2e, slack, e2e_sessions)
    assert action.action_type == ActionType.AUTO_RESOLVE and ticket.status == TicketStatus.RESOLVED
    assert post.args["channel"] == CHANNEL
    yes = _button(post, ActionId.FEEDBACK_YES)
    assert yes["value"] == feedback_value(ticket.ticket_id)
    _button(post, ActionId.WHY)

    assert e2e.click(ActionId.FEEDBACK_YES, yes["value"], message_ts=post.response["ts"]).status_code == 200
    slack.wait_for("chat.update")
    five = _button(post, rating_action_id(5))
    assert e2e.click(rating_action_id(5), five["value"], message_ts=post.response["ts"]).status_code == 200
    slack.wait_for("chat.update", count=2)
    with e2e_sessions() as session:
        resolution = session.scalars(select(TicketResolution)).one()
        assert resolution.resolution_confirmed is True and resolution.satisfaction_score == 5

    stats = e2e.command("/resolution-stats", "7")
    assert stats.status_code == 200
    assert "100%" in stats.text and "5.0" in stats.text


def test_no_reopens_and_tells_the_escalation_channel(e2e, slack, e2e_sessions):
    ticket, _, post = _ticket_resolved(e2e, slack, e2e_sessions)
    no = _button(post, ActionId.FEEDBACK_NO)
    assert e2e.click(ActionId.FEEDBACK_NO, no["value"], message_ts=post.response["ts"]).status_code == 200
    wait_until(lambda: slack.messages(ESCALATIONS), what="the escalation channel notice")
    with e2e_sessions() as session:
        reopened = session.get(Ticket, ticket.ticket_id)
        assert reopened.status == TicketStatus.OPEN
        assert session.scalars(select(TicketResolution)).one().reopened is True


def test_no_with_a_reason_reaches_the_team_history_and_stats(e2e, slack, e2e_sessions):
    ticket, _, post = _ticket_resolved(e2e, slack, e2e_sessions)
    no = _button(post, ActionId.FEEDBACK_NO)

    assert e2e.click(ActionId.FEEDBACK_NO, no["value"], message_ts=post.response["ts"],
                     trigger_id="trig-no-e2e").status_code == 200

    [opened] = slack.wait_for("views.open")
    assert opened.args["trigger_id"] == "trig-no-e2e"
    with e2e_sessions() as session:  # reopened on the click, before any submission
        assert session.get(Ticket, ticket.ticket_id).status == TicketStatus.OPEN
    wait_until(lambda: slack.messages(ESCALATIONS), what="the reopen notice")
    said = "Still drops on the train <!here>"
    submitted = e2e.submit_view(opened.response["view"],
                                {BlockId.FEEDBACK_REASON: {ActionId.FEEDBACK_REASON: said}})
    assert (submitted.status_code, submitted.text) == (200, "")

    escaped = "Still drops on the train &lt;!here&gt;"
    wait_until(lambda: any(escaped in shown(m) for m in slack.messages(ESCALATIONS)),
               what="the words on the reopen notice")
    with e2e_sessions() as session:
        assert session.scalars(select(TicketResolution)).one().user_feedback_text == said
    assert escaped in e2e.command("/history", str(ticket.ticket_id)).text
    stats = e2e.command("/resolution-stats", "7").text
    assert "Latest comments" in stats and escaped in stats


def test_a_strangers_click_is_refused_and_stores_nothing(e2e, slack, e2e_sessions):
    ticket, _, post = _ticket_resolved(e2e, slack, e2e_sessions)
    yes = _button(post, ActionId.FEEDBACK_YES)
    assert e2e.click(ActionId.FEEDBACK_YES, yes["value"], user=STRANGER).status_code == 200
    [refusal] = slack.wait_for("chat.postEphemeral")
    assert refusal.args["user"] == STRANGER
    assert REQUESTER in refusal.args["text"] or "requester" in refusal.args["text"].lower()
    with e2e_sessions() as session:
        assert session.scalars(select(TicketResolution)).one().resolution_confirmed is None


def test_an_admin_rollback_hands_the_ticket_to_a_person(e2e, slack, e2e_sessions):
    ticket, action, post = _ticket_resolved(e2e, slack, e2e_sessions)
    preview = e2e.command("/rollback", f"{str(action.id)[:8]} wrong article", user="UADMIN")
    assert preview.status_code == 200
    confirm = next(e for b in preview.json()["blocks"] for e in b.get("elements", [])
                   if e.get("action_id") == ActionId.ROLLBACK_CONFIRM)
    assert e2e.click(ActionId.ROLLBACK_CONFIRM, confirm["value"], user="UADMIN").status_code == 200
    # The requester's thread is told, and the humans' channel gets the ticket: the bot
    # will not decide on it again.
    notice = wait_until(lambda: [m for m in slack.messages(ESCALATIONS)
                                 if f"Ticket #{ticket.ticket_id} needs a person" in m["text"]],
                        what="the escalation channel notice")
    assert "wrong article" in notice[0]["text"]
    # Two posts of one rollback, sent one after the other: the thread's may come second.
    thread = wait_until(lambda: [m for m in slack.messages(CHANNEL)
                                 if m.get("thread_ts") == post.response["ts"]], what="the thread's word")
    assert "rolled back" in thread[0]["text"]


def test_the_embedded_default_sqlite_and_no_redis_serves_the_same_flow(sqlite_url, tmp_path):
    """README's first command: SQLite, in-process limits and jobs."""
    from sqlalchemy import create_engine

    from bot.sandbox.standin import SlackStandIn
    from tests.support.harness import Server

    with SlackStandIn() as fake:
        server = Server(database_url=sqlite_url, slack=fake, redis_url=None,
                        JOB_INTERVAL="1s", FOLLOWUP_DELAY="2s", STATS_ACK_WAIT="0").start()
        try:
            assert server.command("/ticket", VPN).status_code == 200
            [post] = fake.wait_for("chat.postMessage")
            assert "Why?" in str(post.args["blocks"])
            # The in-process scheduler sends the follow-up DM once the (short) delay is up.
            [dm] = wait_until(lambda: _followups(fake), timeout=20, what="the follow-up DM")
            # To the requester's id: Slack opens the app's DM and says which.
            assert dm.args["channel"] == REQUESTER and dm.response["channel"] == fake.dm_channel(REQUESTER)
            yes = _button(post, ActionId.FEEDBACK_YES)
            assert server.click(ActionId.FEEDBACK_YES, yes["value"],
                                message_ts=post.response["ts"]).status_code == 200
            fake.wait_for("chat.update")
            # Figures not ready within STATS_ACK_WAIT: acknowledged at once, and the
            # figures replace that reply through the command's response URL.
            stats = server.command("/resolution-stats", "7")
            assert stats.status_code == 200 and "Counting" in stats.text
            [answer] = fake.wait_for(RESPONSE_METHOD)
            assert answer.args["replace_original"] is True
            assert answer.args["response_type"] == "ephemeral"
            assert "100%" in str(answer.args["blocks"])
        finally:
            server.stop()
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("SELECT resolution_confirmed FROM ticket_resolution")).scalar() == 1
    engine.dispose()
    assert len(_followups(fake)) == 1


def _followups(fake):
    return [c for c in fake.calls("chat.postMessage")
            if (c.args.get("metadata") or {}).get("event_type") == "resolvemeq_followup"]
