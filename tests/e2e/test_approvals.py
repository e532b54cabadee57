"""Two-person rollback end to end: the real `resolvemeq serve` with
ROLLBACK_APPROVAL=two-person, the fake Slack (an approver group included), signed
commands and clicks.

Admin A asks; A's own Approve is refused; an approver approves and the rollback
happens, with both recorded; a request past its time cannot be approved, and its
message says so.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.core import clock
from bot.views import ActionId, parse_request_value
from models import ActionHistory, ActionType, RollbackRequest, Ticket
from tests.support.databases import E2E_REDIS_URL, clean_e2e
from tests.support.harness import ADMIN, Server, resolved_ticket, shown, wait_until

APPROVALS = "CAPPROVALS"
LEAD = "ULEAD"  # in @helpdesk-leads


@pytest.fixture(scope="module")
def approvals_server(slack, e2e_db_url):
    running = Server(database_url=e2e_db_url, slack=slack, redis_url=E2E_REDIS_URL,
                     ROLLBACK_APPROVAL="two-person", APPROVALS_CHANNEL=APPROVALS,
                     APPROVER_GROUPS="helpdesk-leads").start()
    yield running
    running.stop()


@pytest.fixture()
def two_person(approvals_server, slack, e2e_engine):
    slack.set_usergroup("helpdesk-leads", [LEAD])
    yield approvals_server
    clean_e2e(e2e_engine)
    slack.reset()


def _action(sessions) -> ActionHistory:
    ticket_id = resolved_ticket(sessions)
    with sessions() as session:
        return session.scalars(select(ActionHistory).where(ActionHistory.ticket_id == ticket_id)).one()


def _button(blocks, action_id) -> dict:
    for block in blocks or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return element
    raise AssertionError(f"no button {action_id} in {blocks!r}")


def _told(slack, user, words) -> dict:
    return wait_until(lambda: next((e for e in slack.told(user) if words in shown(e)),
                                   None), what=f"{user} to be told {words!r}")


def _ask(server, slack, action) -> tuple[int, str]:
    """ADMIN's /rollback and Confirm: (the request's id, its message's ts in APPROVALS)."""
    answer = server.command("/rollback", f"{action.id.hex[:8]} the answer was wrong", user=ADMIN)
    assert answer.status_code == 200, answer.text
    confirm = _button(answer.json()["blocks"], ActionId.ROLLBACK_CONFIRM)
    assert confirm["text"]["text"] == "Ask for approval"
    posted = len([c for c in slack.calls("chat.postMessage") if c.args["channel"] == APPROVALS])
    assert server.click(ActionId.ROLLBACK_CONFIRM, confirm["value"], user=ADMIN).status_code == 200
    post = wait_until(lambda: [c for c in slack.calls("chat.postMessage")
                               if c.args["channel"] == APPROVALS and c.outcome == "ok"][posted:],
                      what="the request in the approvals channel")[0]
    approve = _button(post.args["blocks"], ActionId.ROLLBACK_APPROVE)
    return parse_request_value(approve["value"]), post.response["ts"]


def _approve(server, request_id, ts, *, user):
    return server.click(ActionId.ROLLBACK_APPROVE, f"q={request_id}", user=user, channel=APPROVALS,
                        message_ts=ts)


def _request(sessions, request_id) -> RollbackRequest:
    with sessions() as session:
        return session.get(RollbackRequest, request_id)


def test_an_admin_asks_cannot_approve_it_an_approver_does_and_both_are_recorded(
        two_person, slack, e2e_sessions):
    action = _action(e2e_sessions)
    request_id, ts = _ask(two_person, slack, action)
    _told(slack, ADMIN, f"Asked for approval in <#{APPROVALS}>")

    assert _approve(two_person, request_id, ts, user=ADMIN).status_code == 200
    _told(slack, ADMIN, "You asked for this rollback, so someone else must approve it")
    assert _request(e2e_sessions, request_id).status == "pending"

    assert _approve(two_person, request_id, ts, user=LEAD).status_code == 200

    _told(slack, LEAD, "Rolled back")
    with e2e_sessions() as session:
        undone = session.get(ActionHistory, action.id)
        [record] = session.scalars(select(ActionHistory).where(
            ActionHistory.action_type == ActionType.ROLLBACK)).all()
        ticket = session.get(Ticket, action.ticket_id)
    assert (undone.rolled_back, undone.rolled_back_by) == (True, ADMIN)
    assert (record.executed_by, record.action_params["approved_by"]) == (ADMIN, LEAD)
    assert ticket.status == "new"
    request = _request(e2e_sessions, request_id)
    assert (request.status, request.decided_by, request.rollback_id) == ("approved", LEAD, record.id)
    wait_until(lambda: [c for c in slack.calls("chat.update") if c.args.get("ts") == ts
                        and "Approved* by <@ULEAD>" in shown(c.args)], what="the request redrawn approved")


def test_a_request_past_its_time_cannot_be_approved_and_its_message_says_so(two_person, slack, e2e_sessions):
    action = _action(e2e_sessions)
    request_id, ts = _ask(two_person, slack, action)
    with e2e_sessions.begin() as session:  # an hour went by
        session.execute(update(RollbackRequest).where(RollbackRequest.id == request_id)
                        .values(expires_at=clock.now() - timedelta(minutes=1)))

    assert _approve(two_person, request_id, ts, user=LEAD).status_code == 200

    _told(slack, LEAD, f"Rollback request #{request_id} expired at")
    assert _request(e2e_sessions, request_id).status == "expired"
    with e2e_sessions() as session:
        assert session.get(ActionHistory, action.id).rolled_back is False
    wait_until(lambda: [c for c in slack.calls("chat.update") if c.args.get("ts") == ts
                        and "Expired* at" in shown(c.args)], what="the request redrawn expired")
