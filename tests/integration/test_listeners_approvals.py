"""Roles and two-person rollback, in process: the real app from `create_app`, Slack's
signed commands, clicks and modal submissions, the fake Slack Web API (user groups
included), on PostgreSQL with Redis and on SQLite with in-process limits.

A user group admin may roll back, and one removed from the group may not once the
cached membership is five minutes old, even from a confirm drawn while they were in
it. With ROLLBACK_APPROVAL=two-person, Confirm asks for approval in the approvals
channel; the asker's own Approve is refused, an approver's runs the rollback and both
are recorded; Reject asks why in a modal; an expired request cannot be approved, and
its message says so. Parallel confirms by one admin never exceed the throttle.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from bot.delivery.slack_client import make_web_client
from bot.domain import audit
from bot.views import ActionId, BlockId, parse_request_value, rollback_value
from bot.workflows import periodic
from bot.workflows.runtime import Runtime
from models import ActionHistory, ActionType, AuditEvent, RollbackRequest, Ticket
from tests.support.bolt_requests import in_process, listener_settings
from tests.support.databases import REDIS_URL
from tests.support.harness import ADMIN, CHANNEL, STRANGER, resolved_ticket, shown

APPROVALS = "CAPPROVALS"
GROUP_ADMIN = "UGROUPADMIN"  # in @it-admins
LEAD = "ULEAD"  # in @helpdesk-leads: may approve, not ask
GROUPS = {"admin_groups": "it-admins", "approver_groups": "helpdesk-leads"}
TWO_PERSON = {"rollback_approval": "two-person", "approvals_channel": APPROVALS, **GROUPS}


@pytest.fixture(params=["postgresql", "sqlite"])
def backend(request, settings):
    """(database URL, Redis URL or None): PostgreSQL with Redis (tables emptied after),
    or a new SQLite file with in-process limits (the embedded mode)."""
    if request.param == "postgresql":
        request.getfixturevalue("committing_factory")
        return request.getfixturevalue("pg_url"), REDIS_URL
    return request.getfixturevalue("sqlite_url"), None


@pytest.fixture()
def make_bolt(backend, slack, namespace):
    """An app in this process for these settings, with the user groups set in Slack."""
    apps = []

    def build(**overrides):
        url, redis_url = backend
        runtime = Runtime.from_settings(
            listener_settings(database_url=url, slack=slack, redis_url=redis_url, **overrides),
            namespace=namespace)
        slack.set_usergroup("it-admins", [GROUP_ADMIN])
        slack.set_usergroup("helpdesk-leads", [LEAD])
        context = in_process(runtime, slack)
        app = context.__enter__()
        apps.append(context)
        return app, runtime

    yield build
    for context in apps:
        context.__exit__(None, None, None)
    slack.reset()


def _action(sessions) -> ActionHistory:
    """An auto-resolved ticket's action, written straight into the database."""
    ticket_id = resolved_ticket(sessions)
    with sessions() as session:
        return session.scalars(select(ActionHistory).where(ActionHistory.ticket_id == ticket_id)).one()


def _ephemeral(answer) -> dict:
    assert answer.status_code == 200, answer.text
    said = answer.json()
    assert said["response_type"] == "ephemeral", said
    return said


def _button(blocks, action_id) -> dict:
    for block in blocks or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no button {action_id} in {blocks!r}")


def _told(slack, user) -> list[str]:
    """What `user` was told, oldest first: ephemeral messages, and answers to their
    clicks through the response URL (the confirm step's)."""
    return [shown(c.args) for c in slack.calls() if c.outcome == "ok" and (
        (c.method == "chat.postEphemeral" and c.args.get("user") == user) or c in slack.responses(user))]


def _get(sessions, model, key):
    with sessions() as session:
        return session.get(model, key)


def _audits(sessions, event_type) -> list[AuditEvent]:
    with sessions() as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type)
                               .order_by(AuditEvent.id)).all()


def _confirm(bolt, action, *, user=ADMIN, reason="wrong answer") -> dict:
    """/rollback, then its Confirm; returns the confirm button as drawn."""
    preview = _ephemeral(bolt.command("/rollback", f"{action.id.hex[:8]} {reason}", user=user))
    confirm = _button(preview["blocks"], ActionId.ROLLBACK_CONFIRM)
    assert bolt.click(ActionId.ROLLBACK_CONFIRM, confirm["value"], user=user).status_code == 200
    return confirm


def _requested(bolt, slack, runtime, action) -> tuple[int, dict]:
    """Ask for a rollback of `action` as ADMIN: (request id, its message in APPROVALS)."""
    confirm = _confirm(bolt, action)
    assert confirm["text"]["text"] == "Ask for approval"
    bolt.settled()
    message = slack.messages(APPROVALS)[-1]
    approve = _button(message["blocks"], ActionId.ROLLBACK_APPROVE)
    return parse_request_value(approve["value"]), message


def _on_message(bolt, action_id, request_id, message, *, user):
    return bolt.click(action_id, f"q={request_id}", user=user, channel=APPROVALS, message_ts=message["ts"])


# Roles from user groups ---------------------------------------------------------------

def test_a_user_group_admin_may_roll_back_and_a_removed_one_may_not(make_bolt, slack):
    bolt, runtime = make_bolt(**GROUPS)
    first, second = _action(runtime.sessions), _action(runtime.sessions)

    _confirm(bolt, first, user=GROUP_ADMIN)
    undone = _get(runtime.sessions, ActionHistory, first.id)
    assert (undone.rolled_back, undone.rolled_back_by) == (True, GROUP_ADMIN)

    # A confirm drawn while they were in the group, clicked after they left it.
    preview = _ephemeral(bolt.command("/rollback", second.id.hex[:8], user=GROUP_ADMIN))
    confirm = _button(preview["blocks"], ActionId.ROLLBACK_CONFIRM)
    slack.set_usergroup("it-admins", [])
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=5, seconds=1)):
        assert bolt.click(ActionId.ROLLBACK_CONFIRM, confirm["value"], user=GROUP_ADMIN).status_code == 200
        bolt.settled()
        refused = shown(_ephemeral(bolt.command("/rollback", second.id.hex[:8], user=GROUP_ADMIN)))
    assert "Only helpdesk admins" in _told(slack, GROUP_ADMIN)[-1] and "Only helpdesk admins" in refused
    assert _get(runtime.sessions, ActionHistory, second.id).rolled_back is False
    assert [(e.actor_id, e.detail["stage"]) for e in _audits(runtime.sessions, audit.ROLLBACK_DENIED)] == [
        (GROUP_ADMIN, "rollback"), (GROUP_ADMIN, "preview")]


def test_an_approver_may_not_start_a_rollback_and_slack_down_refuses_a_group_admin(make_bolt, slack):
    bolt, runtime = make_bolt(**GROUPS)
    action = _action(runtime.sessions)

    slack.fail_next("usergroups.list", status=500)
    refused = shown(_ephemeral(bolt.command("/rollback", action.id.hex[:8], user=GROUP_ADMIN)))
    assert "Only helpdesk admins" in refused  # fail closed
    preview = _ephemeral(bolt.command("/rollback", action.id.hex[:8], user=GROUP_ADMIN))  # asked again
    assert _button(preview["blocks"], ActionId.ROLLBACK_CONFIRM)
    approver = shown(_ephemeral(bolt.command("/rollback", action.id.hex[:8], user=LEAD)))
    assert "Only helpdesk admins" in approver


# Two-person rollback --------------------------------------------------------------------

def test_two_person_rollback_the_asker_cannot_approve_an_approver_can_and_both_are_recorded(make_bolt, slack):
    bolt, runtime = make_bolt(**TWO_PERSON)
    action = _action(runtime.sessions)

    request_id, message = _requested(bolt, slack, runtime, action)

    assert _get(runtime.sessions, ActionHistory, action.id).rolled_back is False
    assert f"<@{ADMIN}>" in shown(message) and "Rollback approval needed" in shown(message)
    assert f"Asked for approval in <#{APPROVALS}>: rollback request #{request_id}" in _told(slack, ADMIN)[-1]
    # In place of the confirm step, through its response URL: it cannot be asked twice.
    assert slack.responses(ADMIN)[-1].args["replace_original"] is True

    assert _on_message(bolt, ActionId.ROLLBACK_APPROVE, request_id, message, user=ADMIN).status_code == 200
    bolt.settled()
    assert "You asked for this rollback, so someone else must approve it" in _told(slack, ADMIN)[-1]
    assert _get(runtime.sessions, RollbackRequest, request_id).status == "pending"
    assert _get(runtime.sessions, ActionHistory, action.id).rolled_back is False

    assert _on_message(bolt, ActionId.ROLLBACK_APPROVE, request_id, message, user=LEAD).status_code == 200
    bolt.settled()

    undone = _get(runtime.sessions, ActionHistory, action.id)
    assert (undone.rolled_back, undone.rolled_back_by, undone.rollback_reason) == (
        True, ADMIN, "wrong answer")
    request = _get(runtime.sessions, RollbackRequest, request_id)
    assert (request.status, request.decided_by, request.shown_status) == ("approved", LEAD, "approved")
    record = _get(runtime.sessions, ActionHistory, request.rollback_id)
    assert (record.executed_by, record.action_params["approved_by"]) == (ADMIN, LEAD)
    assert _get(runtime.sessions, Ticket, action.ticket_id).status == "new"
    [redrawn] = slack.messages(APPROVALS)
    assert "Approved* by <@ULEAD>" in shown(redrawn)
    assert not [b for b in redrawn["blocks"] if b.get("block_id") == BlockId.APPROVAL_ACTIONS]
    assert "Rolled back" in _told(slack, LEAD)[-1]
    [dm] = slack.messages(ADMIN)
    assert f"Your rollback request #{request_id}" in shown(dm) and "Approved" in shown(dm)
    notice = [m for m in slack.messages(CHANNEL) if "rolled back" in shown(m)]
    assert f"<@{ADMIN}> rolled back the bot's AUTO RESOLVE with <@{LEAD}>'s approval" in shown(notice[-1])
    history = shown(_ephemeral(bolt.command("/history", str(action.ticket_id), user=ADMIN)))
    assert f"*Rolled back* by <@{ADMIN}> with <@{LEAD}>'s approval" in history
    assert f"approved by <@{LEAD}>" in history
    assert [e.actor_id for e in _audits(runtime.sessions, audit.ROLLBACK_APPROVED)] == [LEAD]


def test_an_expired_request_cannot_be_approved_and_its_message_says_so(make_bolt, slack):
    bolt, runtime = make_bolt(**TWO_PERSON, rollback_approval_ttl="10m")
    clicked, left = _action(runtime.sessions), _action(runtime.sessions)
    request_id, message = _requested(bolt, slack, runtime, clicked)
    other_id, _ = _requested(bolt, slack, runtime, left)

    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=10, seconds=1)):
        assert _on_message(bolt, ActionId.ROLLBACK_APPROVE, request_id, message, user=LEAD).status_code == 200
        bolt.settled()
        # The other one nobody clicks: the periodic pass expires it.
        assert periodic.expire_rollback_requests(runtime, make_web_client(runtime.settings)) == 1

    assert f"Rollback request #{request_id} expired at" in _told(slack, LEAD)[-1]
    for expired_id in (request_id, other_id):
        request = _get(runtime.sessions, RollbackRequest, expired_id)
        assert (request.status, request.shown_status, request.decided_by) == ("expired", "expired", None)
    assert not any(_get(runtime.sessions, ActionHistory, a.id).rolled_back for a in (clicked, left))
    assert [m for m in slack.calls("chat.update") if "Expired* at" in shown(m.args)]
    assert len([m for m in slack.messages(ADMIN) if "Expired" in shown(m)]) == 2
    assert _on_message(bolt, ActionId.ROLLBACK_APPROVE, request_id, message, user=LEAD).status_code == 200
    bolt.settled()
    assert "expired at" in _told(slack, LEAD)[-1]


def test_reject_asks_why_in_a_modal_and_records_who_and_why(make_bolt, slack):
    bolt, runtime = make_bolt(**TWO_PERSON)
    action = _action(runtime.sessions)
    request_id, message = _requested(bolt, slack, runtime, action)

    assert _on_message(bolt, ActionId.ROLLBACK_REJECT, request_id, message, user=STRANGER).status_code == 200
    bolt.settled()
    assert "Only helpdesk admins and rollback approvers" in _told(slack, STRANGER)[-1]
    assert slack.calls("views.open") == []

    assert _on_message(bolt, ActionId.ROLLBACK_REJECT, request_id, message, user=LEAD).status_code == 200
    view = slack.last("views.open").args["view"]
    assert view["private_metadata"] == f"q={request_id}"
    empty = bolt.submit_view(view, {BlockId.REJECT_REASON: {ActionId.REJECT_REASON: "  "}}, user=LEAD)
    assert empty.json()["response_action"] == "errors"
    assert bolt.submit_view(view, {BlockId.REJECT_REASON: {ActionId.REJECT_REASON: "It was right <!here>"}},
                            user=LEAD).status_code == 200
    bolt.settled()

    request = _get(runtime.sessions, RollbackRequest, request_id)
    assert (request.status, request.decided_by, request.decision_reason) == (
        "rejected", LEAD, "It was right <!here>")
    assert _get(runtime.sessions, ActionHistory, action.id).rolled_back is False
    [redrawn] = slack.messages(APPROVALS)
    assert "Rejected* by <@ULEAD>" in shown(redrawn) and "It was right &lt;!here&gt;" in shown(redrawn)
    [dm] = slack.messages(ADMIN)
    assert "Rejected" in shown(dm) and "<!here>" not in shown(dm)
    assert _on_message(bolt, ActionId.ROLLBACK_APPROVE, request_id, message, user=LEAD).status_code == 200
    bolt.settled()
    assert f"was rejected by <@{LEAD}>" in _told(slack, LEAD)[-1]


def test_a_tampered_request_button_is_refused_and_changes_nothing(make_bolt, slack):
    bolt, runtime = make_bolt(**TWO_PERSON)
    for value in ("q=0", "q=1;x", "t=1", "q=99999999999"):
        assert bolt.click(ActionId.ROLLBACK_APPROVE, value, user=LEAD, channel=APPROVALS).status_code == 200
    bolt.settled()
    assert [e["text"] for e in slack.ephemerals() if e["user"] == LEAD] == [
        "That button is not valid any more. Nothing was rolled back."] * 4
    with runtime.sessions() as session:
        assert session.scalars(select(AuditEvent)).all() == []


# The throttle -----------------------------------------------------------------------------

def test_parallel_confirms_by_one_admin_never_exceed_the_throttle(make_bolt, slack):
    bolt, runtime = make_bolt(rollback_rate_limit="3/hour")
    actions = [_action(runtime.sessions) for _ in range(8)]
    barrier = threading.Barrier(len(actions))
    answers = []

    def click(action):
        barrier.wait(timeout=10)
        value = rollback_value(action.id, "parallel")
        answers.append(bolt.click(ActionId.ROLLBACK_CONFIRM, value, user=ADMIN))

    threads = [threading.Thread(target=click, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    bolt.settled()

    assert [a.status_code for a in answers] == [200] * 8
    undone = [_get(runtime.sessions, ActionHistory, a.id).rolled_back for a in actions]
    assert undone.count(True) == 3
    with runtime.sessions() as session:
        rollbacks = session.scalars(select(ActionHistory).where(
            ActionHistory.action_type == ActionType.ROLLBACK)).all()
    assert len(rollbacks) == 3
    assert len([t for t in _told(slack, ADMIN) if "You have reached the rollback limit" in t]) == 5


def test_an_approver_removed_from_the_group_cannot_approve_once_the_cache_is_old(make_bolt, slack):
    bolt, runtime = make_bolt(**TWO_PERSON)
    action = _action(runtime.sessions)
    request_id, message = _requested(bolt, slack, runtime, action)
    # LEAD is known to be an approver now (cached), then leaves the group.
    assert _on_message(bolt, ActionId.ROLLBACK_REJECT, request_id, message, user=LEAD).status_code == 200
    slack.set_usergroup("helpdesk-leads", [])

    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=5, seconds=1)):
        assert _on_message(bolt, ActionId.ROLLBACK_APPROVE, request_id, message, user=LEAD).status_code == 200
        bolt.settled()

    assert "Only helpdesk admins and rollback approvers" in _told(slack, LEAD)[-1]
    assert _get(runtime.sessions, RollbackRequest, request_id).status == "pending"
    assert _get(runtime.sessions, ActionHistory, action.id).rolled_back is False
    [denied] = _audits(runtime.sessions, audit.ROLLBACK_APPROVAL_DENIED)
    assert (denied.actor_id, denied.detail["why"]) == (LEAD, "not an admin or approver")
