"""Two-person rollback, the rules (bot.domain.approvals) on PostgreSQL and SQLite: an
admin asks, someone else approves (the rollback runs then) or rejects; nobody approves
their own request; an expired or decided request cannot be approved; every refusal
and decision is audited; the throttle counts the request and the approval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.errors import (
    AlreadyRequested,
    InvalidInput,
    NotAuthorized,
    NotFound,
    RequestClosed,
    RollbackConflict,
    Throttled,
)
from bot.domain import approvals, audit, snapshots
from bot.domain.ratelimit import RollbackThrottle, make_storage
from models import (
    ActionHistory,
    ActionType,
    AuditEvent,
    RollbackRequest,
    Ticket,
    TicketStatus,
    make_engine,
)
from tests.support.factories import make_action

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
TTL = timedelta(hours=1)
ASKER, OTHER, LEAD = "UADMIN", "UADMIN2", "ULEAD"


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request):
    """A session on PostgreSQL (rolled back after) or on a new SQLite file."""
    if request.param == "postgresql":
        yield request.getfixturevalue("session")
        return
    engine = make_engine(request.getfixturevalue("sqlite_url"))
    with Session(engine, expire_on_commit=False) as session:
        yield session
        session.rollback()
    engine.dispose()


@pytest.fixture()
def throttle(settings) -> RollbackThrottle:
    return RollbackThrottle(settings, make_storage(None))


def _ask(db, action, throttle, *, who=ASKER, reason="wrong answer", now=NOW, is_admin=True):
    return approvals.request_rollback(db, ref=action.id.hex[:8], requester_id=who, is_admin=is_admin,
                                      reason=reason, throttle=throttle, ttl=TTL, now=now)


def _approve(db, request, throttle, *, who=OTHER, now=NOW + timedelta(minutes=5), may=True):
    return approvals.approve(db, request_id=request.id, approver_id=who, may_approve=may,
                             throttle=throttle, now=now)


def _audits(db, event_type):
    return db.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type)
                      .order_by(AuditEvent.id)).all()


def _rollbacks(db) -> int:
    return db.scalar(select(func.count()).select_from(ActionHistory)
                     .where(ActionHistory.action_type == ActionType.ROLLBACK))


def test_a_request_waits_with_the_diff_and_changes_nothing(db, throttle):
    action = make_action(db, action_type=ActionType.ESCALATE, now=NOW)
    before = snapshots.snapshot(db.get(Ticket, action.ticket_id))

    request = _ask(db, action, throttle)

    assert (request.status, request.shown_status, request.requested_by) == ("pending", "pending", ASKER)
    assert (request.action_id, request.ticket_id, request.reason) == (action.id, action.ticket_id,
                                                                      "wrong answer")
    assert (request.created_at, request.expires_at) == (NOW, NOW + TTL)
    assert request.diff["status"] == [TicketStatus.ESCALATED, TicketStatus.NEW]
    assert request.diff["assigned_team"] == ["Network", None]
    assert snapshots.snapshot(db.get(Ticket, action.ticket_id)) == before
    assert db.get(ActionHistory, action.id).rolled_back is False and _rollbacks(db) == 0
    [asked] = _audits(db, audit.ROLLBACK_REQUESTED)
    assert (asked.actor_id, asked.action_id, asked.detail["request_id"]) == (ASKER, action.id, request.id)


def test_only_an_admin_may_ask_and_the_refusal_is_audited(db, throttle):
    action = make_action(db, now=NOW)
    with pytest.raises(NotAuthorized, match="Only helpdesk admins"):
        _ask(db, action, throttle, who=LEAD, is_admin=False)
    [denied] = _audits(db, audit.ROLLBACK_DENIED)
    assert (denied.actor_id, denied.detail["stage"]) == (LEAD, "request")
    assert db.scalar(select(func.count()).select_from(RollbackRequest)) == 0


def test_the_same_admin_cannot_approve_their_own_request_another_can(db, throttle):
    action = make_action(db, action_type=ActionType.AUTO_RESOLVE, now=NOW)
    before = action.before_state
    request = _ask(db, action, throttle)

    with pytest.raises(NotAuthorized, match="someone else must approve it"):
        _approve(db, request, throttle, who=ASKER)
    [own] = _audits(db, audit.ROLLBACK_APPROVAL_DENIED)
    assert (own.actor_id, own.detail) == (ASKER, {"request_id": request.id, "stage": "approve",
                                                  "why": "own request"})
    assert db.get(RollbackRequest, request.id).status == "pending" and _rollbacks(db) == 0

    decision = _approve(db, request, throttle, who=OTHER)

    assert decision.result is not None and not decision.expired
    undone = db.get(ActionHistory, action.id)
    assert (undone.rolled_back, undone.rolled_back_by, undone.rollback_reason) == (
        True, ASKER, "wrong answer")
    record = db.get(ActionHistory, decision.result.rollback.id)
    assert (record.executed_by, record.rollback_of) == (ASKER, action.id)
    assert record.action_params == {"rolled_back_action_id": str(action.id), "reason": "wrong answer",
                                    "approved_by": OTHER, "request_id": request.id}
    stored = db.get(RollbackRequest, request.id)
    assert (stored.status, stored.decided_by, stored.rollback_id) == ("approved", OTHER, record.id)
    assert snapshots.snapshot(db.get(Ticket, action.ticket_id)) == before
    [approved] = _audits(db, audit.ROLLBACK_APPROVED)
    assert (approved.actor_id, approved.detail["requested_by"]) == (OTHER, ASKER)


def test_only_admins_and_approvers_may_approve(db, throttle):
    request = _ask(db, make_action(db, now=NOW), throttle)
    with pytest.raises(NotAuthorized, match="Only helpdesk admins and rollback approvers"):
        _approve(db, request, throttle, who="USTRANGER", may=False)
    with pytest.raises(NotAuthorized):
        _approve(db, request, throttle, who=OTHER, may="yes")  # only a real True counts
    assert [e.detail["why"] for e in _audits(db, audit.ROLLBACK_APPROVAL_DENIED)] == [
        "not an admin or approver"] * 2
    assert db.get(RollbackRequest, request.id).status == "pending"


def test_an_expired_request_cannot_be_approved(db, throttle):
    action = make_action(db, now=NOW)
    request = _ask(db, action, throttle)

    decision = _approve(db, request, throttle, who=OTHER, now=NOW + TTL)

    assert decision.expired and decision.result is None
    assert db.get(RollbackRequest, request.id).status == "expired"
    assert db.get(ActionHistory, action.id).rolled_back is False and _rollbacks(db) == 0
    with pytest.raises(RequestClosed, match=f"request #{request.id} expired at 2026-11-29 10:00 UTC"):
        _approve(db, request, throttle, who=LEAD, now=NOW + TTL + timedelta(minutes=1))
    assert [e.actor_id for e in _audits(db, audit.ROLLBACK_REQUEST_EXPIRED)] == [None]


def test_a_decided_request_cannot_be_decided_again(db, throttle):
    request = _ask(db, make_action(db, now=NOW), throttle)
    _approve(db, request, throttle, who=OTHER)
    with pytest.raises(RequestClosed, match=f"was approved by <@{OTHER}>"):
        _approve(db, request, throttle, who=LEAD)
    with pytest.raises(RequestClosed):
        approvals.reject(db, request_id=request.id, user_id=LEAD, may_approve=True, reason="no", now=NOW)
    assert _rollbacks(db) == 1


def test_the_conflict_check_runs_at_approval_and_the_request_stays_pending(db, throttle):
    action = make_action(db, action_type=ActionType.ESCALATE, now=NOW)
    request = _ask(db, action, throttle)
    db.get(Ticket, action.ticket_id).assigned_team = "Desk"  # someone's work after the request
    db.flush()

    with pytest.raises(RollbackConflict, match="assigned_team is now 'Desk'"):
        _approve(db, request, throttle)

    assert db.get(RollbackRequest, request.id).status == "pending" and _rollbacks(db) == 0


def test_one_waiting_request_per_action_until_it_expires(db, throttle):
    action = make_action(db, now=NOW)
    first = _ask(db, action, throttle)
    with pytest.raises(AlreadyRequested, match=f"request #{first.id}, asked by <@{ASKER}>"):
        _ask(db, action, throttle, who=OTHER, now=NOW + timedelta(minutes=10))

    second = _ask(db, action, throttle, who=OTHER, now=NOW + TTL)

    assert db.get(RollbackRequest, first.id).status == "expired"
    assert db.get(RollbackRequest, second.id).status == "pending"


def test_reject_records_who_and_why_and_the_asker_may_withdraw(db, throttle):
    first = _ask(db, make_action(db, now=NOW), throttle)
    with pytest.raises(InvalidInput, match="Say why"):
        approvals.reject(db, request_id=first.id, user_id=LEAD, may_approve=True, reason="  ", now=NOW)
    with pytest.raises(NotAuthorized):
        approvals.reject(db, request_id=first.id, user_id="USTRANGER", may_approve=False, reason="x", now=NOW)

    decision = approvals.reject(db, request_id=first.id, user_id=LEAD, may_approve=True,
                                reason=" the answer was right ", now=NOW + timedelta(minutes=1))

    stored = db.get(RollbackRequest, first.id)
    assert (stored.status, stored.decided_by, stored.decision_reason) == (
        "rejected", LEAD, "the answer was right")
    assert stored.decided_at == NOW + timedelta(minutes=1) and decision.result is None
    [rejected] = _audits(db, audit.ROLLBACK_REJECTED)
    assert (rejected.actor_id, rejected.detail["reason"]) == (LEAD, "the answer was right")
    second = _ask(db, make_action(db, now=NOW), throttle)
    approvals.reject(db, request_id=second.id, user_id=ASKER, may_approve=True, reason="my mistake", now=NOW)
    assert db.get(RollbackRequest, second.id).status == "rejected" and _rollbacks(db) == 0


def test_the_expiry_pass_expires_only_requests_past_their_time(db, throttle):
    old = _ask(db, make_action(db, now=NOW), throttle)
    new = _ask(db, make_action(db, now=NOW), throttle, now=NOW + timedelta(minutes=30))

    expired = approvals.expire_due(db, now=NOW + TTL)

    assert [r.id for r in expired] == [old.id]
    assert (db.get(RollbackRequest, old.id).status, db.get(RollbackRequest, new.id).status) == (
        "expired", "pending")
    assert approvals.lagging_messages(db) == [old.id]
    assert approvals.expire_due(db, now=NOW + TTL) == []


def test_the_throttle_counts_the_request_and_the_approval(db, settings):
    throttle = RollbackThrottle(settings.model_copy(update={"rollback_rate_limit": "1/hour"}),
                                make_storage(None))
    request = _ask(db, make_action(db, now=NOW), throttle)  # the asker's one
    with pytest.raises(Throttled):
        _ask(db, make_action(db, now=NOW), throttle)
    _approve(db, request, throttle, who=OTHER)  # the approver's one
    third = _ask(db, make_action(db, now=NOW), throttle, who=LEAD)
    with pytest.raises(Throttled):
        _approve(db, third, throttle, who=OTHER)
    assert [e.detail["stage"] for e in _audits(db, audit.ROLLBACK_THROTTLED)] == ["request", "approve"]
    assert db.get(RollbackRequest, third.id).status == "pending"


def test_unknown_and_malformed_requests_are_refused(db, throttle):
    with pytest.raises(NotFound, match="Rollback request #999 does not exist"):
        approvals.approve(db, request_id=999, approver_id=OTHER, may_approve=True, throttle=throttle)
    for bad in (0, -1, "1", True, None):
        with pytest.raises(InvalidInput):
            approvals.approve(db, request_id=bad, approver_id=OTHER, may_approve=True, throttle=throttle)
