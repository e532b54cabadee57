"""Two-person rollback (ROLLBACK_APPROVAL=two-person): an admin asks, someone else
decides.

- `request_rollback`: an admin's Confirm makes a pending request (who, why, what the
  rollback would change) instead of rolling back; counted against the admin's
  rollback budget.
- `approve`: another admin or an approver approves; the rollback runs then, with the
  conflict check at that moment, counted against the approver's budget. The undone
  action records who asked (`rolled_back_by`); the ROLLBACK row and the request record
  who approved.
- `reject`: an admin or approver (the one who asked included: a withdrawal) rejects it,
  with a reason.
- `expire_due`: a request nobody decided within ROLLBACK_APPROVAL_TTL expires; a click
  on one found past its time expires it too.

Who may decide is asked of Slack by the caller, at click time (`may_approve`). Nobody
approves their own request. Every refusal is audited, and so is every decision.

Locks are taken in the rollback order (ticket, action, then the request), so an
approval, a second request for the same action and a direct rollback wait for each
other instead of deadlocking; the expiry job takes request rows only (SKIP LOCKED).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.errors import AlreadyRequested, InvalidInput, NotAuthorized, NotFound, RequestClosed
from bot.domain import audit, rollback
from bot.domain.ratelimit import RollbackThrottle
from bot.domain.rollback import RollbackResult
from models import ActionHistory, RequestStatus, RollbackRequest, as_utc, short_id

# A rejection's reason: the modal's limit, as a rollback's.
MAX_REJECT_REASON = rollback.MAX_REASON_LENGTH
# How many requests one expiry pass (or redraw pass) handles; the next pass goes on.
BATCH = 100


@dataclass(frozen=True)
class Decision:
    """What an approval click (or a rejection) came to.

    `result` is the rollback when the request was approved; `request.status` says
    what happened: approved, rejected, or expired (found past its time: nothing ran).
    """

    request: RollbackRequest
    result: RollbackResult | None = None

    @property
    def expired(self) -> bool:
        return self.request.status == RequestStatus.EXPIRED


def request_rollback(
    session: Session,
    *,
    ref: str,
    requester_id: str,
    is_admin: bool,
    reason: str,
    throttle: RollbackThrottle,
    ttl: timedelta,
    now: datetime | None = None,
) -> RollbackRequest:
    """Ask for a rollback: check it would go through now, then make a pending request.

    Args:
        session: the caller's session; flushed, not committed. NotAuthorized and
            Throttled leave their audit row flushed for the owner to keep.
        ref: the action id or a prefix of it.
        requester_id: the Slack user id of the admin asking.
        is_admin: whether they are an admin now (see bot.domain.admins).
        reason: why, up to 500 characters; may be empty.
        throttle: the rollback throttle; a request counts against the asker's budget.
        ttl: how long the request waits for a decision.
        now: the clock reading.

    Returns:
        The pending request (flushed: it has its id).

    Raises:
        NotAuthorized: not an admin (audited).
        AlreadyRequested: a request for this action is waiting already.
        Throttled, LimiterUnavailable, InvalidInput, NotFound, Ambiguous,
        AlreadyRolledBack, RollbackNotPossible, RollbackConflict: as for
        :func:`bot.domain.rollback.rollback_action`.
    """
    now = now or clock.now()
    rollback.check_admin(session, ref, requester_id, is_admin, now, stage="request")
    reason = rollback.valid_reason(reason)
    ticket, action = rollback.lock_target(session, rollback.find_action(session, ref))
    current = rollback.check_undoable_now(action, ticket)
    waiting = _pending_for(session, action)
    if waiting is not None and as_utc(waiting.expires_at) <= now:
        _expire(session, waiting, now)
        waiting = None
    if waiting is not None:
        raise AlreadyRequested(
            f"A rollback of action {short_id(action.id)} is already waiting for approval: "
            f"request #{waiting.id}, asked by <@{waiting.requested_by}> at {_at(waiting.created_at)}, "
            f"until {_at(waiting.expires_at)}."
        )
    rollback.count_rollback(session, throttle, requester_id, action, now, stage="request")
    diff = {name: [then, after] for name, (then, after) in
            rollback.changes(current, action.before_state or {}).items()}
    request = RollbackRequest(
        action_id=action.id, ticket_id=action.ticket_id, requested_by=requester_id, reason=reason,
        diff=diff, created_at=now, expires_at=now + ttl, status=RequestStatus.PENDING,
        decision_reason="", shown_status=RequestStatus.PENDING,
    )
    session.add(request)
    session.flush()
    audit.record(session, audit.ROLLBACK_REQUESTED, actor_id=requester_id, ticket_id=action.ticket_id,
                 action_id=action.id, now=now,
                 detail={"request_id": request.id, "expires_at": request.expires_at.isoformat()})
    return request


def approve(
    session: Session,
    *,
    request_id: int,
    approver_id: str,
    may_approve: bool,
    throttle: RollbackThrottle,
    now: datetime | None = None,
) -> Decision:
    """Approve a pending request: the rollback runs now, if it still can.

    Args:
        session: the caller's session; flushed, not committed. NotAuthorized and
            Throttled leave their audit row flushed for the owner to keep.
        request_id: the request.
        approver_id: the Slack user id clicking Approve.
        may_approve: whether they are an admin or approver now (asked at click time).
        throttle: the rollback throttle; an approval counts against the approver's budget.
        now: the clock reading.

    Returns:
        The decision: approved with the rollback's result, or expired (the request was
        past its time: it is marked expired and nothing ran).

    Raises:
        NotFound: no such request.
        NotAuthorized: not an admin or approver, or their own request (audited).
        RequestClosed: approved, rejected or expired already.
        Throttled, LimiterUnavailable, AlreadyRolledBack, RollbackNotPossible,
        RollbackConflict: the rollback cannot run now; the request stays pending.
    """
    now = now or clock.now()
    found = _get(session, request_id)
    _authorize(session, found, approver_id, may_approve, now, stage="approve")
    if approver_id == found.requested_by:
        _deny(session, found, approver_id, now, stage="approve", why="own request")
        raise NotAuthorized(
            "You asked for this rollback, so someone else must approve it: another admin or an approver."
        )
    action = session.get(ActionHistory, found.action_id)
    if action is None:
        raise NotFound(f"The action of rollback request #{request_id} no longer exists.")
    ticket, action = rollback.lock_target(session, action)
    request = _locked(session, request_id)
    _check_pending(request)
    if as_utc(request.expires_at) <= now:
        _expire(session, request, now)
        return Decision(request)
    rollback.check_undoable_now(action, ticket)
    rollback.count_rollback(session, throttle, approver_id, action, now, stage="approve")
    result = rollback.apply_rollback(session, ticket, action, by=request.requested_by,
                                     reason=request.reason, now=now, approved_by=approver_id,
                                     request_id=request.id)
    request.status = RequestStatus.APPROVED
    request.decided_by, request.decided_at = approver_id, now
    request.rollback_id = result.rollback.id
    session.flush()
    audit.record(session, audit.ROLLBACK_APPROVED, actor_id=approver_id, ticket_id=request.ticket_id,
                 action_id=request.action_id, now=now,
                 detail={"request_id": request.id, "requested_by": request.requested_by,
                         "rollback_id": str(result.rollback.id)})
    return Decision(request, result)


def check_may_decide(
    session: Session, *, request_id: int, user_id: str, may_approve: bool, now: datetime | None = None,
) -> RollbackRequest:
    """Check, before the reject modal opens, that this person may reject the request now.

    Nothing is written but a refusal's audit row.

    Returns:
        The request, for the modal.

    Raises:
        NotFound: no such request.
        NotAuthorized: not an admin or approver (audited).
        RequestClosed: decided already, or past its time.
    """
    now = now or clock.now()
    request = _get(session, request_id)
    _authorize(session, request, user_id, may_approve, now, stage="reject")
    _check_pending(request)
    if as_utc(request.expires_at) <= now:
        raise RequestClosed(_expired_text(request, request.expires_at))
    return request


def reject(
    session: Session,
    *,
    request_id: int,
    user_id: str,
    may_approve: bool,
    reason: str,
    now: datetime | None = None,
) -> Decision:
    """Reject a pending request, with the reason; nothing is rolled back.

    The admin who asked may reject their own request (a withdrawal).

    Args:
        session: the caller's session; flushed, not committed.
        request_id: the request.
        user_id: the Slack user id submitting the rejection.
        may_approve: whether they are an admin or approver now (asked at submit time).
        reason: why (1 to 500 characters): the person who asked reads it.
        now: the clock reading.

    Returns:
        The decision: rejected, or expired (past its time: marked expired instead).

    Raises:
        InvalidInput: no reason, or too long.
        NotFound: no such request.
        NotAuthorized: not an admin or approver (audited).
        RequestClosed: approved, rejected or expired already.
    """
    now = now or clock.now()
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("Say why you reject it: the person who asked reads this.")
    reason = reason.strip()
    if len(reason) > MAX_REJECT_REASON:
        raise InvalidInput(f"The reason is {len(reason)} characters long; keep it to {MAX_REJECT_REASON}.")
    found = _get(session, request_id)
    _authorize(session, found, user_id, may_approve, now, stage="reject")
    request = _locked(session, request_id)
    _check_pending(request)
    if as_utc(request.expires_at) <= now:
        _expire(session, request, now)
        return Decision(request)
    request.status = RequestStatus.REJECTED
    request.decided_by, request.decided_at, request.decision_reason = user_id, now, reason
    session.flush()
    audit.record(session, audit.ROLLBACK_REJECTED, actor_id=user_id, ticket_id=request.ticket_id,
                 action_id=request.action_id, now=now,
                 detail={"request_id": request.id, "requested_by": request.requested_by, "reason": reason})
    return Decision(request)


def expire_due(session: Session, *, now: datetime | None = None, limit: int = BATCH) -> list[RollbackRequest]:
    """Mark pending requests past their time expired (one batch; rows another process
    holds are left to it).

    Returns:
        The requests expired now.
    """
    now = now or clock.now()
    due = session.scalars(
        select(RollbackRequest)
        .where(RollbackRequest.status == RequestStatus.PENDING, RollbackRequest.expires_at <= now)
        .order_by(RollbackRequest.expires_at, RollbackRequest.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for request in due:
        _expire(session, request, now)
    return list(due)


def lagging_messages(session: Session, *, limit: int = BATCH) -> list[int]:
    """Requests whose approvals message does not show their status yet (a redraw that
    failed or has not happened), oldest first."""
    return list(session.scalars(
        select(RollbackRequest.id)
        .where(RollbackRequest.status != RollbackRequest.shown_status)
        .order_by(RollbackRequest.id)
        .limit(limit)
    ))


def closed_text(request: RollbackRequest) -> str:
    """What someone clicking a decided request is told."""
    if request.status == RequestStatus.APPROVED:
        return (f"Rollback request #{request.id} was approved by <@{request.decided_by}> at "
                f"{_at(request.decided_at)}; the action is rolled back.")
    if request.status == RequestStatus.REJECTED:
        return (f"Rollback request #{request.id} was rejected by <@{request.decided_by}> at "
                f"{_at(request.decided_at)}; nothing was rolled back.")
    return _expired_text(request, request.decided_at or request.expires_at)


def _expired_text(request: RollbackRequest, when: datetime | None) -> str:
    return (f"Rollback request #{request.id} expired at {_at(when)} without a decision; nothing "
            "was rolled back. Ask again with /rollback if it is still needed.")


def _get(session: Session, request_id: int) -> RollbackRequest:
    if type(request_id) is not int or request_id <= 0:
        raise InvalidInput("That is not a rollback request.")
    request = session.get(RollbackRequest, request_id)
    if request is None:
        raise NotFound(f"Rollback request #{request_id} does not exist.")
    return request


def _locked(session: Session, request_id: int) -> RollbackRequest:
    # populate_existing: after waiting on the lock, see the winner's commit.
    request = session.scalars(
        select(RollbackRequest).where(RollbackRequest.id == request_id)
        .with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if request is None:
        raise NotFound(f"Rollback request #{request_id} does not exist.")
    return request


def _pending_for(session: Session, action: ActionHistory) -> RollbackRequest | None:
    return session.scalars(
        select(RollbackRequest)
        .where(RollbackRequest.action_id == action.id, RollbackRequest.status == RequestStatus.PENDING)
        .with_for_update().execution_options(populate_existing=True)
    ).one_or_none()


def _authorize(session: Session, request: RollbackRequest, user_id: str, may_approve: bool,
               now: datetime, *, stage: str) -> None:
    if may_approve is True and isinstance(user_id, str) and user_id:
        return
    _deny(session, request, user_id, now, stage=stage, why="not an admin or approver")
    raise NotAuthorized("Only helpdesk admins and rollback approvers can approve or reject a rollback.")


def _deny(session: Session, request: RollbackRequest, user_id: str, now: datetime, *, stage: str,
          why: str) -> None:
    audit.record(session, audit.ROLLBACK_APPROVAL_DENIED, actor_id=user_id, ticket_id=request.ticket_id,
                 action_id=request.action_id, now=now,
                 detail={"request_id": request.id, "stage": stage, "why": why})


def _check_pending(request: RollbackRequest) -> None:
    if request.status != RequestStatus.PENDING:
        raise RequestClosed(closed_text(request))


def _expire(session: Session, request: RollbackRequest, now: datetime) -> None:
    request.status = RequestStatus.EXPIRED
    request.decided_at = now
    session.flush()
    audit.record(session, audit.ROLLBACK_REQUEST_EXPIRED, actor_id=None, ticket_id=request.ticket_id,
                 action_id=request.action_id, now=now,
                 detail={"request_id": request.id, "requested_by": request.requested_by,
                         "expires_at": as_utc(request.expires_at).isoformat()})


def _at(moment: datetime | None) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC") if moment else "an unknown time"
