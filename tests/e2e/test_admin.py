"""Admin surfaces end to end: /rollback with its confirm step, /history, App Home.

Everything goes over signed HTTP to the real `resolvemeq serve`; what people saw is
read from the fake Slack (the HTTP ack of a slash command is its ephemeral answer),
what was stored from the server's database.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core import clock
from bot.domain import actions, snapshots
from bot.domain.actions import PlannedAction
from bot.sandbox.standin import SlackStandIn
from bot.views import ActionId, feedback_value, parse_rollback_value, rollback_value
from models import (
    ActionHistory,
    ActionType,
    AuditEvent,
    OutboxPurpose,
    SlackOutbox,
    Ticket,
    TicketSource,
    TicketStatus,
)
from tests.support.databases import E2E_REDIS_URL
from tests.support.harness import ADMIN, CHANNEL, REQUESTER, ROOT, STRANGER, Server, wait_until
from tests.support.harness import shown as _shown

VPN = "My VPN keeps disconnecting when I work from home"


# Helpers ---------------------------------------------------------------------------

def _buttons(blocks):
    for block in blocks or []:
        yield from block.get("elements", []) or []
        if block.get("accessory"):
            yield block["accessory"]


def _button(blocks, action_id):
    for element in _buttons(blocks):
        if element.get("action_id") == action_id:
            return element
    raise AssertionError(f"no button {action_id} in {blocks!r}")


def _ephemeral_answer(response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("response_type") == "ephemeral", body
    return body


def _resolved_ticket(server, slack, sessions, *, text=VPN):
    """Open a ticket by /ticket and wait until the bot answered it and remembered where."""
    posted = len(slack.calls("chat.postMessage"))
    assert server.command("/ticket", text).status_code == 200
    post = slack.wait_for("chat.postMessage", count=posted + 1)[posted]
    assert post.outcome == "ok"

    def answered():
        with sessions() as session:
            ticket = session.scalars(select(Ticket).order_by(Ticket.ticket_id.desc())).first()
            return ticket if ticket is not None and ticket.slack_message_ts else None

    ticket = wait_until(answered, what="the ticket to remember its message")
    with sessions() as session:
        action = session.scalars(
            select(ActionHistory).where(ActionHistory.ticket_id == ticket.ticket_id)
        ).one()
    assert action.action_type == ActionType.AUTO_RESOLVE and ticket.status == TicketStatus.RESOLVED
    return ticket, action, post


def _state(sessions, ticket_id):
    with sessions() as session:
        ticket = session.get(Ticket, ticket_id)
        rows = session.scalars(
            select(ActionHistory).where(ActionHistory.ticket_id == ticket_id)
            .order_by(ActionHistory.executed_at)
        ).all()
        return snapshots.snapshot(ticket), [(r.action_type, r.rolled_back) for r in rows]


def _audits(sessions, event_type):
    with sessions() as session:
        return session.scalars(
            select(AuditEvent).where(AuditEvent.event_type == event_type).order_by(AuditEvent.id)
        ).all()


def _preview(server, ref, reason="", *, user=ADMIN):
    body = _ephemeral_answer(server.command("/rollback", f"{ref} {reason}".strip(), user=user))
    return body, _button(body["blocks"], ActionId.ROLLBACK_CONFIRM)


def _ephemerals_to(slack, user, count=1):
    """Wait for `count` messages `user` alone was shown (ephemeral messages and answers
    through their clicks' response URLs); return them (oldest first)."""
    return wait_until(
        lambda: (found := slack.told(user))[count - 1:] and found,
        what=f"{count} ephemeral message(s) to {user}",
    )


def _insert_actions(sessions, specs, *, age=timedelta(0)):
    """Insert tickets, each with one undoable action; `specs` are (action id or None, type).

    Args:
        age: how long ago the tickets were opened and acted on.

    Returns:
        [(ticket_id, action_id)] in order.
    """
    now = clock.now() - age
    made = []
    with sessions.begin() as session:
        for n, (action_id, action_type) in enumerate(specs, 1):
            ticket = Ticket(
                user_id=REQUESTER, issue_type=VPN[:100], description=VPN,
                status=TicketStatus.NEW, tags=[], source=TicketSource.SLASH_COMMAND, slack_channel_id=CHANNEL,
                slack_thread_ts=f"1732520000.{n:06d}", created_at=now, updated_at=now,
            )
            session.add(ticket)
            session.flush()
            ticket.agent_processed = True  # as bot.processing marks a ticket it acted on
            plan = PlannedAction(
                action_type=action_type, confidence=0.9, reasoning="Matched the VPN article.",
                params={"team": "Network", "steps": ["Reconnect"]},
            )
            row = actions.execute(session, ticket, plan, now=now, followup_delay=timedelta(hours=24))
            if action_id is not None:
                session.flush()
                # A chosen id: rewrite the row (nothing refers to it for these types).
                assert action_type != ActionType.AUTO_RESOLVE
                session.expunge(row)
                session.execute(
                    ActionHistory.__table__.update()
                    .where(ActionHistory.id == row.id).values(id=action_id)
                )
                row_id = action_id
            else:
                row_id = row.id
            made.append((ticket.ticket_id, row_id))
    return made


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


# Non-admins -------------------------------------------------------------------------

def test_a_non_admin_rollback_is_refused_audited_and_changes_nothing(e2e, slack, e2e_sessions):
    ticket, action, _ = _resolved_ticket(e2e, slack, e2e_sessions)
    before = _state(e2e_sessions, ticket.ticket_id)

    body = _ephemeral_answer(e2e.command("/rollback", f"{action.id.hex[:8]} nope", user=STRANGER))

    assert "Only helpdesk admins" in _shown(body)
    assert not any(b.get("type") == "actions" for b in body.get("blocks", [])), "no Confirm for a stranger"
    [denied] = _audits(e2e_sessions, "rollback_denied")
    assert denied.actor_id == STRANGER and denied.action_id == action.id
    assert denied.ticket_id == ticket.ticket_id and denied.detail["stage"] == "preview"
    assert _state(e2e_sessions, ticket.ticket_id) == before


# The confirm step and the rollback ---------------------------------------------------

def test_admin_rollback_confirm_step_then_confirm_restores_and_tells_everyone(e2e, slack, e2e_sessions):
    ticket, action, post = _resolved_ticket(e2e, slack, e2e_sessions)
    short = action.id.hex[:8]

    body, confirm = _preview(e2e, short, "wrong answer")
    shown = _shown(body)
    assert short in shown
    assert re.search(r"`status`: resolved → new", shown), shown  # the before→after diff
    cancel = _button(body["blocks"], ActionId.ROLLBACK_CANCEL)
    assert cancel["value"] == action.id.hex
    assert parse_rollback_value(confirm["value"]) == (action.id, "wrong answer")
    # The preview changes nothing.
    with e2e_sessions() as session:
        assert session.get(Ticket, ticket.ticket_id).status == TicketStatus.RESOLVED
        assert session.get(ActionHistory, action.id).rolled_back is False

    assert e2e.click(ActionId.ROLLBACK_CONFIRM, confirm["value"], user=ADMIN).status_code == 200

    with e2e_sessions() as session:
        restored = session.get(Ticket, ticket.ticket_id)
        undone = session.get(ActionHistory, action.id)
        [record] = session.scalars(
            select(ActionHistory).where(ActionHistory.action_type == ActionType.ROLLBACK)
        ).all()
    assert snapshots.snapshot(restored) == action.before_state
    assert undone.rolled_back is True and undone.rolled_back_by == ADMIN
    assert undone.rollback_reason == "wrong answer" and undone.rolled_back_at is not None
    assert record.rollback_of == action.id and record.executed_by == ADMIN
    assert record.ticket_id == ticket.ticket_id

    # In place of the confirm step (through the click's response URL): no second click.
    [done] = _ephemerals_to(slack, ADMIN)
    assert (done["via"], done["replace_original"]) == ("response_url", True) and "Rolled back" in _shown(done)
    notice = wait_until(
        lambda: [c for c in slack.calls("chat.postMessage") if c.args.get("thread_ts")],
        what="the rollback notice in the ticket's thread",
    )[-1]
    assert notice.args["channel"] == CHANNEL
    assert notice.args["thread_ts"] == post.response["ts"]
    assert "rolled back" in _shown(notice.args) and f"<@{ADMIN}>" in _shown(notice.args)


def test_confirm_clicked_by_a_non_admin_is_refused_and_audited(e2e, slack, e2e_sessions):
    ticket, action, _ = _resolved_ticket(e2e, slack, e2e_sessions)
    _, confirm = _preview(e2e, action.id.hex[:8], "wrong answer")
    before = _state(e2e_sessions, ticket.ticket_id)

    assert e2e.click(ActionId.ROLLBACK_CONFIRM, confirm["value"], user=STRANGER).status_code == 200

    [refusal] = _ephemerals_to(slack, STRANGER)
    assert "Only helpdesk admins" in _shown(refusal)
    assert _state(e2e_sessions, ticket.ticket_id) == before
    [denied] = _audits(e2e_sessions, "rollback_denied")
    assert denied.actor_id == STRANGER and denied.detail["stage"] == "rollback"
    assert denied.action_id == action.id


def test_cancel_changes_nothing(e2e, slack, e2e_sessions):
    ticket, action, _ = _resolved_ticket(e2e, slack, e2e_sessions)
    body, _ = _preview(e2e, action.id.hex[:8])
    cancel = _button(body["blocks"], ActionId.ROLLBACK_CANCEL)
    before = _state(e2e_sessions, ticket.ticket_id)

    assert e2e.click(ActionId.ROLLBACK_CANCEL, cancel["value"], user=ADMIN).status_code == 200

    [told] = _ephemerals_to(slack, ADMIN)
    assert "cancelled" in told["text"].lower() and "Nothing changed" in told["text"]
    assert _state(e2e_sessions, ticket.ticket_id) == before


def test_a_reopened_ticket_gives_a_conflict_naming_the_field(e2e, slack, e2e_sessions):
    ticket, action, post = _resolved_ticket(e2e, slack, e2e_sessions)
    no = _button(post.args["blocks"], ActionId.FEEDBACK_NO)
    assert e2e.click(ActionId.FEEDBACK_NO, no["value"], message_ts=post.response["ts"]).status_code == 200
    with e2e_sessions() as session:
        assert session.get(Ticket, ticket.ticket_id).status == TicketStatus.OPEN
    before = _state(e2e_sessions, ticket.ticket_id)

    body = _ephemeral_answer(e2e.command("/rollback", action.id.hex[:8], user=ADMIN))

    shown = _shown(body)
    assert "changed after action" in shown and action.id.hex[:8] in shown
    assert re.search(r"status is now .open. \(the action left .resolved.\)", shown), shown
    assert "Nothing was changed" in shown
    assert not any(b.get("type") == "actions" for b in body.get("blocks", []))
    assert _state(e2e_sessions, ticket.ticket_id) == before


def test_a_reopen_between_preview_and_confirm_is_a_conflict_too(e2e, slack, e2e_sessions):
    ticket, action, post = _resolved_ticket(e2e, slack, e2e_sessions)
    _, confirm = _preview(e2e, action.id.hex[:8], "wrong answer")
    no = _button(post.args["blocks"], ActionId.FEEDBACK_NO)
    assert e2e.click(ActionId.FEEDBACK_NO, no["value"], message_ts=post.response["ts"]).status_code == 200
    before = _state(e2e_sessions, ticket.ticket_id)

    assert e2e.click(ActionId.ROLLBACK_CONFIRM, confirm["value"], user=ADMIN).status_code == 200

    [told] = _ephemerals_to(slack, ADMIN)
    assert "changed after action" in told["text"] and "status is now 'open'" in told["text"]
    assert _state(e2e_sessions, ticket.ticket_id) == before
    with e2e_sessions() as session:
        assert session.scalar(
            select(ActionHistory.id).where(ActionHistory.action_type == ActionType.ROLLBACK)) is None


def test_a_double_confirm_click_rolls_back_once(e2e, slack, e2e_sessions):
    ticket, action, _ = _resolved_ticket(e2e, slack, e2e_sessions)
    _, confirm = _preview(e2e, action.id.hex[:8], "wrong answer")
    start = threading.Barrier(2)
    statuses = []

    def click():
        start.wait()
        statuses.append(e2e.click(ActionId.ROLLBACK_CONFIRM, confirm["value"], user=ADMIN).status_code)

    clickers = [threading.Thread(target=click) for _ in range(2)]
    for thread in clickers:
        thread.start()
    for thread in clickers:
        thread.join(timeout=15)
    assert statuses == [200, 200]

    told = _ephemerals_to(slack, ADMIN, count=2)
    texts = sorted(e["text"] for e in told)
    assert sum("already rolled back" in t for t in texts) == 1, texts
    assert sum(t.startswith("Rolled back") for t in texts) == 1, texts
    with e2e_sessions() as session:
        rollbacks = session.scalars(
            select(ActionHistory).where(ActionHistory.action_type == ActionType.ROLLBACK)).all()
    assert len(rollbacks) == 1
    # One notice in the ticket's thread, not two (it follows the "Rolled back" ephemeral).
    wait_until(lambda: [c for c in slack.calls("chat.postMessage") if c.args.get("thread_ts")],
               what="the notice in the ticket's thread")
    assert len([c for c in slack.calls("chat.postMessage") if c.args.get("thread_ts")]) == 1


# Refusals of /rollback ----------------------------------------------------------------

def test_rolling_back_twice_says_who_did_it_first(e2e, slack, e2e_sessions):
    _, action, _ = _resolved_ticket(e2e, slack, e2e_sessions)
    _, confirm = _preview(e2e, action.id.hex[:8], "wrong answer")
    assert e2e.click(ActionId.ROLLBACK_CONFIRM, confirm["value"], user=ADMIN).status_code == 200

    body = _ephemeral_answer(e2e.command("/rollback", action.id.hex[:8], user=ADMIN))

    shown = _shown(body)
    assert "already rolled back" in shown and f"<@{ADMIN}>" in shown
    assert not any(b.get("type") == "actions" for b in body.get("blocks", []))


def test_an_unknown_action_id_is_not_found(e2e, slack, e2e_sessions):
    _resolved_ticket(e2e, slack, e2e_sessions)
    with e2e_sessions() as session:
        taken = session.scalars(select(ActionHistory.id)).all()
    unknown = next(p for p in ("0000dead", "1111beef") if not any(t.hex.startswith(p) for t in taken))

    body = _ephemeral_answer(e2e.command("/rollback", unknown, user=ADMIN))

    assert f"No action id starts with {unknown}" in _shown(body)


def test_an_ambiguous_prefix_lists_the_matches_and_more_characters_pick_one(e2e, slack, e2e_sessions):
    first = uuid.UUID("abcd1234-0000-4000-8000-000000000001")
    second = uuid.UUID("abcd1234-9999-4000-8000-000000000002")
    _insert_actions(e2e_sessions, [(first, ActionType.ASSIGN_TO_TEAM), (second, ActionType.ESCALATE)])

    body = _ephemeral_answer(e2e.command("/rollback", "abcd1234", user=ADMIN))

    shown = _shown(body)
    assert "matches several actions" in shown
    assert "ticket #1" in shown and "ticket #2" in shown
    assert not any(b.get("type") == "actions" for b in body.get("blocks", []))
    _, confirm = _preview(e2e, "abcd12349")
    assert parse_rollback_value(confirm["value"])[0] == second


@pytest.mark.parametrize("text", ["", "   "])
def test_rollback_without_an_id_shows_the_usage(e2e, slack, e2e_sessions, text):
    body = _ephemeral_answer(e2e.command("/rollback", text, user=ADMIN))
    assert "Usage: `/rollback" in _shown(body)
    assert _audits(e2e_sessions, "rollback_denied") == []


def test_the_eleventh_rollback_in_an_hour_is_refused_with_when_to_retry(e2e, slack, e2e_sessions):
    made = _insert_actions(e2e_sessions, [(None, ActionType.AUTO_RESOLVE)] * 11)
    for n, (_, action_id) in enumerate(made[:10], 1):
        _, confirm = _preview(e2e, action_id.hex[:8], f"batch {n}")
        assert e2e.click(ActionId.ROLLBACK_CONFIRM, confirm["value"], user=ADMIN).status_code == 200
    done = _ephemerals_to(slack, ADMIN, count=10)
    assert all(e["text"].startswith("Rolled back") for e in done)

    last_ticket, last_action = made[10]
    body = _ephemeral_answer(e2e.command("/rollback", last_action.hex[:8], user=ADMIN))
    shown = _shown(body)
    assert "rollback limit" in shown
    # The time of day, with the date in front when the retry falls on another day.
    assert re.search(r"Try again in (\d+ hours?( \d+ minutes?)?|\d+ minutes?) "
                     r"\(at (\d{4}-\d\d-\d\d )?\d\d:\d\d", shown), shown
    assert not any(b.get("type") == "actions" for b in body.get("blocks", []))

    # A Confirm button kept from before is throttled the same way.
    e2e.click(ActionId.ROLLBACK_CONFIRM, rollback_value(last_action, "late"), user=ADMIN)
    refused = _ephemerals_to(slack, ADMIN, count=11)[-1]
    assert "rollback limit" in refused["text"] and "Try again in" in refused["text"]

    with e2e_sessions() as session:
        assert session.get(ActionHistory, last_action).rolled_back is False
        assert session.get(Ticket, last_ticket).status == TicketStatus.RESOLVED
        assert len(session.scalars(
            select(ActionHistory).where(ActionHistory.action_type == ActionType.ROLLBACK)).all()) == 10
    throttled = _audits(e2e_sessions, "rollback_throttled")
    assert [a.detail["stage"] for a in throttled] == ["preview", "rollback"]
    assert all(a.actor_id == ADMIN and a.action_id == last_action for a in throttled)


def test_a_rolled_back_resolution_is_not_decided_again_by_the_next_jobs_pass(e2e, slack, e2e_sessions):
    [(ticket_id, action_id)] = _insert_actions(e2e_sessions, [(None, ActionType.AUTO_RESOLVE)],
                                               age=timedelta(minutes=10))
    _, confirm = _preview(e2e, action_id.hex[:8], "wrong answer")
    assert e2e.click(ActionId.ROLLBACK_CONFIRM, confirm["value"], user=ADMIN).status_code == 200
    _ephemerals_to(slack, ADMIN)
    # The rollback's own notices (the thread, the escalation channel) go out first.
    wait_until(lambda: _outbox_settled(e2e_sessions), what="the rollback notices sent")
    posted = len(slack.calls("chat.postMessage"))

    job = subprocess.run([sys.executable, "-m", "bot.platform.cli", "jobs", "run-once"], cwd=ROOT,
                         env=e2e.env, capture_output=True, text=True, timeout=60)
    assert job.returncode == 0, job.stdout + job.stderr

    with e2e_sessions() as session:
        kinds = [a.action_type for a in session.scalars(
            select(ActionHistory).where(ActionHistory.ticket_id == ticket_id)
            .order_by(ActionHistory.executed_at))]
        assert kinds == [ActionType.AUTO_RESOLVE, ActionType.ROLLBACK]
        assert session.get(Ticket, ticket_id).status != TicketStatus.RESOLVED
    assert len(slack.calls("chat.postMessage")) == posted


def _outbox_settled(sessions) -> bool:
    with sessions() as session:
        return not session.scalar(select(func.count()).select_from(SlackOutbox)
                                  .where(SlackOutbox.status == "pending",
                                         SlackOutbox.purpose != OutboxPurpose.FOLLOWUP))


# /history ---------------------------------------------------------------------------

def test_history_shows_the_timeline_with_the_rollback_marked(e2e, slack, e2e_sessions):
    ticket, action, _ = _resolved_ticket(e2e, slack, e2e_sessions)
    _, confirm = _preview(e2e, action.id.hex[:8], "wrong answer")
    assert e2e.click(ActionId.ROLLBACK_CONFIRM, confirm["value"], user=ADMIN).status_code == 200
    with e2e_sessions() as session:
        rollback_id = session.scalar(
            select(ActionHistory.id).where(ActionHistory.action_type == ActionType.ROLLBACK))

    for asker in (REQUESTER, ADMIN):
        body = _ephemeral_answer(e2e.command("/history", f"#{ticket.ticket_id}", user=asker))
        shown = _shown(body)
        assert f"History of ticket #{ticket.ticket_id}" in shown
        assert f"`{action.id.hex[:8]}`" in shown and f"`{rollback_id.hex[:8]}`" in shown
        assert f"*AUTO RESOLVE* `{action.id.hex[:8]}`" in shown
        assert f"{action.confidence_score:.0%}" in shown
        assert action.agent_reasoning.split()[0] in shown
        assert re.search(rf"Rolled back\* by <@{ADMIN}>.*wrong answer", shown), shown
        assert f"undoes `{action.id.hex[:8]}`" in shown
        # Newest first: the rollback, then the action it undid.
        assert shown.index(f"*ROLLBACK* `{rollback_id.hex[:8]}`") < shown.index("*AUTO RESOLVE*")


def test_history_is_refused_to_a_stranger_and_clear_for_a_missing_ticket(e2e, slack, e2e_sessions):
    ticket, action, _ = _resolved_ticket(e2e, slack, e2e_sessions)

    stranger = _shown(_ephemeral_answer(e2e.command("/history", str(ticket.ticket_id), user=STRANGER)))
    assert "Only the requester and helpdesk admins" in stranger
    assert action.id.hex[:8] not in stranger

    missing = _shown(_ephemeral_answer(e2e.command("/history", "999", user=ADMIN)))
    assert "Ticket #999 does not exist" in missing

    garbled = _shown(_ephemeral_answer(e2e.command("/history", "latest", user=ADMIN)))
    assert "Give a ticket number" in garbled


# App Home -------------------------------------------------------------------------------

def test_app_home_shows_the_stats(e2e, slack, e2e_sessions):
    ticket, _, post = _resolved_ticket(e2e, slack, e2e_sessions)
    yes = _button(post.args["blocks"], ActionId.FEEDBACK_YES)
    assert yes["value"] == feedback_value(ticket.ticket_id)
    assert e2e.click(ActionId.FEEDBACK_YES, yes["value"], message_ts=post.response["ts"]).status_code == 200

    for n, user in enumerate((REQUESTER, ADMIN), 1):
        response = e2e.event({"type": "app_home_opened", "user": user, "channel": "D0HOME",
                              "tab": "home", "event_ts": "1732527100.000100"})
        assert response.status_code == 200
        publish = slack.wait_for("views.publish", count=n)[-1]
        assert publish.outcome == "ok" and publish.args["user_id"] == user
        view = slack.home_view(user)
        assert view["type"] == "home"
        shown = _shown(view)
        assert "Resolution stats" in shown and "Success rate*\n100%" in shown
        assert "Resolutions*\n1" in shown and "Confirmed*\n1" in shown
        assert ("Admin tools" in shown) is (user == ADMIN)


# Workspace admins (a second server with ALLOW_WORKSPACE_ADMINS) -------------------------------

WS_ADMIN = "UWSADMIN"
WS_OWNER = "UWSOWNER"
WS_FLAKY = "UWSFLAKY"
WS_GONE = "UWSGONE"
WS_MEMBER = "UWSMEMBER"


@pytest.fixture(scope="module")
def ws_slack():
    with SlackStandIn() as fake:
        fake.set_user(WS_ADMIN, is_admin=True)
        fake.set_user(WS_OWNER, is_owner=True)
        fake.set_user(WS_FLAKY, is_admin=True)
        fake.set_user(WS_GONE, is_admin=True)
        fake.set_user(WS_MEMBER)
        yield fake


@pytest.fixture(scope="module")
def ws_server(ws_slack, e2e_db_url):
    running = Server(database_url=e2e_db_url, slack=ws_slack, redis_url=E2E_REDIS_URL,
                     ALLOW_WORKSPACE_ADMINS="true").start()
    yield running
    running.stop()


@pytest.fixture()
def ws(ws_server, ws_slack, e2e):
    """The workspace-admins server; `e2e` empties the shared database and Redis after."""
    yield ws_server
    ws_slack.reset()


@pytest.mark.parametrize("user", [WS_ADMIN, WS_OWNER])
def test_a_workspace_admin_or_owner_may_roll_back(ws, ws_slack, e2e_sessions, user):
    ticket, action, _ = _resolved_ticket(ws, ws_slack, e2e_sessions)

    _, confirm = _preview(ws, action.id.hex[:8], "workspace admin", user=user)
    assert ws.click(ActionId.ROLLBACK_CONFIRM, confirm["value"], user=user).status_code == 200

    [done] = _ephemerals_to(ws_slack, user)
    assert done["text"].startswith("Rolled back")
    with e2e_sessions() as session:
        assert session.get(ActionHistory, action.id).rolled_back_by == user
        assert session.get(Ticket, ticket.ticket_id).status == action.before_state["status"]
    assert any(c.args.get("user") == user for c in ws_slack.calls("users.info"))


def test_a_workspace_member_is_not_an_admin(ws, ws_slack, e2e_sessions):
    _, action, _ = _resolved_ticket(ws, ws_slack, e2e_sessions)
    body = _ephemeral_answer(ws.command("/rollback", action.id.hex[:8], user=WS_MEMBER))
    assert "Only helpdesk admins" in _shown(body)
    assert [a.actor_id for a in _audits(e2e_sessions, "rollback_denied")] == [WS_MEMBER]


@pytest.mark.parametrize(
    ("user", "fault"),
    [(WS_FLAKY, {"status": 429, "retry_after": 1}), (WS_GONE, {"error": "user_not_found"})],
    ids=["rate-limited", "user_not_found"],
)
def test_the_admin_check_fails_closed_when_users_info_fails(ws, ws_slack, e2e_sessions, user, fault):
    ticket, action, _ = _resolved_ticket(ws, ws_slack, e2e_sessions)
    before = _state(e2e_sessions, ticket.ticket_id)
    ws_slack.fail_next("users.info", **fault)

    body = _ephemeral_answer(ws.command("/rollback", action.id.hex[:8], user=user))

    assert "Only helpdesk admins" in _shown(body)
    [asked] = [c for c in ws_slack.calls("users.info") if c.args.get("user") == user]
    assert asked.outcome != "ok"
    assert [a.actor_id for a in _audits(e2e_sessions, "rollback_denied")] == [user]
    assert _state(e2e_sessions, ticket.ticket_id) == before
    # The failure is not remembered: once Slack answers, the admin gets the confirm step.
    _, confirm = _preview(ws, action.id.hex[:8], user=user)
    assert parse_rollback_value(confirm["value"])[0] == action.id
