"""Undoing one of the bot's actions (or a person's take or resolve from the team
channel): admins only, throttled, never over someone's work.

A rollback puts the ticket back to the action's `before_state`, but only while the
ticket still looks exactly as the action left it (`after_state`); otherwise someone
changed it since, and restoring would silently throw their work away.

Locks are taken in one order (ticket, action, resolution, rollback request; feedback
and processing also take the ticket first), so concurrent rollbacks, approvals,
feedback and processing wait for each other at the ticket instead of deadlocking.

The throttle is one atomic check-and-count (`count_rollback`), taken once every other
check has passed: parallel confirms by one admin never exceed it, and a refusal never
uses up the budget.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.errors import (
    AlreadyRolledBack,
    Ambiguous,
    InvalidInput,
    NotAuthorized,
    NotFound,
    ResolveMeQError,
    RollbackConflict,
    RollbackNotPossible,
    Throttled,
)
from bot.domain import audit, followups, snapshots
from bot.domain.ratelimit import RollbackThrottle
from models import (
    UNDOABLE_ACTIONS,
    ActionHistory,
    ActionType,
    PersonResolution,
    Ticket,
    TicketResolution,
    as_utc,
    short_id,
)

MAX_REASON_LENGTH = 500
MIN_PREFIX = 4
# How many matches an ambiguous prefix lists; more would flood the Slack message.
_MAX_LISTED = 10
_HEX = re.compile(r"^[0-9a-f]+$")
# The outcome row a resolving action owns, withdrawn with it.
_OUTCOME_OF: dict[str, type[TicketResolution] | type[PersonResolution]] = {
    ActionType.AUTO_RESOLVE: TicketResolution, ActionType.RESOLVE: PersonResolution,
}


@dataclass(frozen=True)
class RollbackPreview:
    """What a rollback would do, for the confirm dialog."""

    action_id: uuid.UUID
    short_id: str
    ticket_id: int
    action_type: str
    executed_at: datetime
    confidence: float | None
    reasoning: str
    # {field: (current value, value after the rollback)}, only fields that change.
    changes: dict[str, tuple[Any, Any]]


@dataclass(frozen=True)
class RollbackResult:
    """A rollback that happened."""

    action: ActionHistory
    rollback: ActionHistory
    ticket: Ticket
    # {field: (value before the rollback, restored value)}, only fields that changed.
    restored: dict[str, tuple[Any, Any]]


def find_action(session: Session, ref: str) -> ActionHistory:
    """The action_history row whose id is `ref` or starts with it.

    Args:
        session: the caller's session.
        ref: a full UUID or a prefix of at least 4 hex digits; hyphens and case are
            ignored.

    Returns:
        The one matching row, of any type (rollback decides what it may undo).

    Raises:
        InvalidInput: `ref` is not hex, too short or too long.
        NotFound: no action has this id.
        Ambiguous: the prefix matches several actions; `matches` lists their short ids.
    """
    if not isinstance(ref, str):
        raise InvalidInput("Give an action id, such as 3f2a9c1e.")
    shown = ref.strip()[:40]
    digits = ref.strip().replace("-", "").lower()
    if not _HEX.match(digits) or len(digits) > 32:
        raise InvalidInput(
            f"'{shown}' is not an action id: use the id shown in /history (hex digits, "
            "such as 3f2a9c1e)."
        )
    if len(digits) < MIN_PREFIX:
        raise InvalidInput(
            f"'{shown}' is too short: give at least {MIN_PREFIX} characters of the action id."
        )
    if len(digits) == 32:
        action = session.get(ActionHistory, uuid.UUID(hex=digits))
        if action is None:
            raise NotFound(f"No action has the id {digits}.")
        return action
    # A prefix is a range of ids: from the prefix padded with 0s to it padded with fs.
    # Both backends order uuids as their 32 hex digits (PostgreSQL by bytes, SQLite as
    # lower-case text), so this is a primary-key range scan, where matching the id as
    # text read every row (1.2 s at 1M actions, bench/queries.py).
    lowest, highest = uuid.UUID(hex=digits.ljust(32, "0")), uuid.UUID(hex=digits.ljust(32, "f"))
    rows = session.scalars(
        select(ActionHistory)
        .where(ActionHistory.id.between(lowest, highest))
        .order_by(ActionHistory.executed_at, ActionHistory.id)
        .limit(_MAX_LISTED + 1)
    ).all()
    if not rows:
        raise NotFound(f"No action id starts with {digits}.")
    if len(rows) > 1:
        listed = rows[:_MAX_LISTED]
        described = "; ".join(
            f"{short_id(row.id)} (ticket #{row.ticket_id}, {row.action_type})" for row in listed
        )
        more = " and more" if len(rows) > _MAX_LISTED else ""
        raise Ambiguous(
            f"{digits} matches several actions: {described}{more}. "
            "Give more characters of the id.",
            [short_id(row.id) for row in listed],
        )
    return rows[0]


def preview_rollback(
    session: Session,
    *,
    ref: str,
    admin_id: str,
    is_admin: bool,
    throttle: RollbackThrottle | None = None,
    now: datetime | None = None,
) -> RollbackPreview:
    """Check that a rollback would go through and say what it would change.

    The checks of :func:`rollback_action`, refusals audited alike, but nothing on the
    ticket or the action changes and the throttle is only read, never counted.

    Args:
        session: the caller's session; flushed, not committed.
        ref: the action id or a prefix of it.
        admin_id: the Slack user id asking.
        is_admin: whether they are an admin (see bot.admins.is_admin).
        throttle: when given, read so a throttled admin hears it before the dialog.
        now: the clock reading.

    Returns:
        The preview for the confirm dialog.

    Raises:
        The errors of :func:`rollback_action`, except the reason check.
    """
    now = now or clock.now()
    _check_allowed(session, ref, admin_id, is_admin, throttle, now, stage="preview")
    action = find_action(session, ref)
    _check_undoable(action)
    current = snapshots.snapshot(_ticket_of(session, action, lock=False))
    _check_no_conflict(action, current)
    return RollbackPreview(
        action_id=action.id,
        short_id=short_id(action.id),
        ticket_id=action.ticket_id,
        action_type=action.action_type,
        executed_at=action.executed_at,
        confidence=action.confidence_score,
        reasoning=action.agent_reasoning,
        changes=_changes(current, action.before_state or {}),
    )


def rollback_action(
    session: Session,
    *,
    ref: str,
    admin_id: str,
    is_admin: bool,
    reason: str,
    throttle: RollbackThrottle,
    now: datetime | None = None,
) -> RollbackResult:
    """Undo an action: restore the ticket's `before_state` and record who and why.

    Args:
        session: the caller's session; flushed, not committed. NotAuthorized and
            Throttled leave their audit row flushed for the owner to keep.
        ref: the action id or a prefix of it.
        admin_id: the Slack user id of the admin.
        is_admin: whether they are an admin (see bot.admins.is_admin).
        reason: why, up to 500 characters; may be empty.
        throttle: the per-admin rollback throttle; counted (atomically) once every other
            check has passed, so refusals never use up an admin's budget.
        now: the clock reading for every timestamp written.

    Returns:
        The original action, the new ROLLBACK row, the ticket and the restored fields.

    Raises:
        NotAuthorized: not an admin (audited).
        Throttled: too many rollbacks lately (audited); says when to retry.
        LimiterUnavailable: the throttle store is down; nothing is rolled back.
        InvalidInput: a malformed id or a reason too long.
        NotFound, Ambiguous: see :func:`find_action`.
        AlreadyRolledBack: it was rolled back before (says by whom and when).
        RollbackNotPossible: not an undoable action (a ROLLBACK or REOPEN record...).
        RollbackConflict: the ticket changed since the action; nothing is changed.
    """
    now = now or clock.now()
    _check_allowed(session, ref, admin_id, is_admin, None, now, stage="rollback")
    reason = valid_reason(reason)
    ticket, action = lock_target(session, find_action(session, ref))
    check_undoable_now(action, ticket)
    count_rollback(session, throttle, admin_id, action, now, stage="rollback")
    return apply_rollback(session, ticket, action, by=admin_id, reason=reason, now=now)


def check_admin(session: Session, ref: object, admin_id: str, is_admin: bool, now: datetime, *,
                stage: str) -> None:
    """Refuse (audited) anyone who is not an admin.

    Raises:
        NotAuthorized: `is_admin` is not True; the refusal's audit row is flushed.
    """
    _check_allowed(session, ref, admin_id, is_admin, None, now, stage=stage)


def valid_reason(reason: object) -> str:
    """The reason for a rollback, stripped.

    Raises:
        InvalidInput: not text, or longer than 500 characters.
    """
    if not isinstance(reason, str):
        raise InvalidInput("The reason must be text.")
    reason = reason.strip()
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(
            f"The reason is {len(reason)} characters long; keep it to {MAX_REASON_LENGTH}."
        )
    return reason


def lock_target(session: Session, found: ActionHistory) -> tuple[Ticket, ActionHistory]:
    """Lock the action's ticket, then the action, and read both afresh.

    The ticket first, as feedback and processing lock it: a No being recorded holds
    the ticket and then needs the action row (its resolution's foreign key).
    FOR UPDATE makes a second rollback of the same action wait for the first;
    populate_existing makes it see the first one's commit, not its stale copy.

    Returns:
        (the ticket, the action), both locked until the transaction ends.

    Raises:
        NotFound: the ticket or the action was deleted meanwhile.
    """
    ticket = _ticket_of(session, found, lock=True)
    action = session.scalars(
        select(ActionHistory)
        .where(ActionHistory.id == found.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if action is None:
        raise NotFound(f"Action {short_id(found.id)} no longer exists.")
    return ticket, action


def check_undoable_now(action: ActionHistory, ticket: Ticket) -> dict[str, Any]:
    """Check the action can be undone on the ticket as it is now.

    Returns:
        The ticket's snapshot now.

    Raises:
        AlreadyRolledBack, RollbackNotPossible, RollbackConflict: see
        :func:`rollback_action`.
    """
    _check_undoable(action)
    current = snapshots.snapshot(ticket)
    _check_no_conflict(action, current)
    return current


def count_rollback(
    session: Session, throttle: RollbackThrottle, person_id: str, action: ActionHistory, now: datetime,
    *, stage: str,
) -> None:
    """Count one rollback (or request, or approval) against `person_id`'s budget, in one
    atomic check-and-count; a full budget is refused and audited.

    Raises:
        Throttled: the budget is full (audited; nothing was counted).
        LimiterUnavailable: the store cannot be reached (nothing was counted).
    """
    retry_at = throttle.acquire(person_id)
    if retry_at is None:
        return
    detail = {"stage": stage, "limit": throttle.limit, "retry_at": retry_at.isoformat()}
    _audit_refusal(session, audit.ROLLBACK_THROTTLED, action.id.hex, person_id, detail, now)
    raise Throttled(
        f"You have reached the rollback limit ({throttle.limit}). Try again {_when(retry_at, now)}.",
        retry_at,
    )


def apply_rollback(
    session: Session, ticket: Ticket, action: ActionHistory, *, by: str, reason: str, now: datetime,
    approved_by: str | None = None, request_id: int | None = None,
) -> RollbackResult:
    """Restore the ticket to the action's `before_state` and record the rollback.

    Call with both locked (:func:`lock_target`) and checked (:func:`check_undoable_now`).

    Args:
        session: the caller's session; flushed, not committed.
        ticket: the action's ticket.
        action: the action to undo.
        by: who rolled it back (the admin; in two-person mode, who asked).
        reason: why (already checked by :func:`valid_reason`).
        now: the clock reading for every timestamp written.
        approved_by: in two-person mode, who approved it (kept in the ROLLBACK row).
        request_id: in two-person mode, the rollback request approved.

    Returns:
        The original action, the new ROLLBACK row, the ticket and the restored fields.
    """
    before = snapshots.snapshot(ticket)
    snapshots.restore(ticket, action.before_state or {})
    ticket.updated_at = now
    after = snapshots.snapshot(ticket)
    action.rolled_back = True
    action.rolled_back_at = now
    action.rolled_back_by = by
    action.rollback_reason = reason
    params: dict[str, Any] = {"rolled_back_action_id": str(action.id), "reason": reason}
    if approved_by is not None:
        params.update(approved_by=approved_by, request_id=request_id)
    record = ActionHistory(
        ticket_id=ticket.ticket_id, action_type=ActionType.ROLLBACK, executed_at=now,
        action_params=params, executed_by=by, autonomous=False, confidence_score=None,
        agent_reasoning=reason, rollback_possible=False, rollback_of=action.id,
        before_state=before, after_state=after,
    )
    session.add(record)
    outcome = _OUTCOME_OF.get(action.action_type)
    if outcome is not None:
        # An undone resolution (the bot's or a person's) has nothing to follow up on;
        # the row stays as a record.
        with followups.waiting_briefly(session):  # a follow-up being sent holds it
            resolution = cast(TicketResolution | PersonResolution | None, session.scalars(
                select(outcome)
                .where(outcome.action_id == action.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one_or_none())
        if resolution is not None:
            resolution.followup_due_at = None
            followups.cancel(session, resolution.id, reason=followups.ROLLED_BACK,
                             person=outcome is PersonResolution)
    session.flush()
    return RollbackResult(action, record, ticket, _changes(before, after))


def changes(current: dict[str, Any], target: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{field: (value now, value after the rollback)}, only the fields that change."""
    return _changes(current, target)


def _check_allowed(
    session: Session,
    ref: object,
    admin_id: str,
    is_admin: bool,
    throttle: RollbackThrottle | None,
    now: datetime,
    *,
    stage: str,
) -> None:
    if is_admin is not True:
        _audit_refusal(session, audit.ROLLBACK_DENIED, ref, admin_id, {"stage": stage}, now)
        raise NotAuthorized("Only helpdesk admins can roll back the bot's actions.")
    if throttle is None:
        return
    # Read only (the preview): the rollback itself counts atomically, count_rollback.
    retry_at = throttle.retry_at(admin_id)  # LimiterUnavailable propagates: fail closed
    if retry_at is not None:
        detail = {"stage": stage, "limit": throttle.limit, "retry_at": retry_at.isoformat()}
        _audit_refusal(session, audit.ROLLBACK_THROTTLED, ref, admin_id, detail, now)
        raise Throttled(
            f"You have reached the rollback limit ({throttle.limit}). "
            f"Try again {_when(retry_at, now)}.",
            retry_at,
        )


def _audit_refusal(
    session: Session, event_type: str, ref: object, admin_id: str, detail: dict, now: datetime
) -> None:
    # Name the action in the audit row when the reference resolves; the refusal is
    # recorded either way.
    action_id = ticket_id = None
    try:
        action = find_action(session, ref)  # type: ignore[arg-type]
        action_id, ticket_id = action.id, action.ticket_id
    except ResolveMeQError:
        pass
    audit.record(session, event_type, actor_id=admin_id, ticket_id=ticket_id,
                 action_id=action_id, detail={"ref": str(ref)[:64], **detail}, now=now)


def _when(retry_at: datetime, now: datetime) -> str:
    minutes = max(1, math.ceil((retry_at - now).total_seconds() / 60))
    hours, rest = divmod(minutes, 60)
    parts = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in
             ((hours, "hour"), (rest, "minute")) if n]
    at = as_utc(retry_at)
    # The date only when it is not today, so the usual case stays short.
    pattern = "%H:%M" if at.date() == as_utc(now).date() else "%Y-%m-%d %H:%M"
    return f"in {' '.join(parts)} (at {at.strftime(pattern)} UTC)"


def _check_undoable(action: ActionHistory) -> None:
    sid = short_id(action.id)
    if action.rolled_back:
        when = as_utc(action.rolled_back_at)
        at = f" at {when:%Y-%m-%d %H:%M} UTC" if when else ""
        raise AlreadyRolledBack(
            f"Action {sid} was already rolled back by <@{action.rolled_back_by}>{at}."
        )
    if action.action_type not in UNDOABLE_ACTIONS:
        raise RollbackNotPossible(
            f"Action {sid} is a {action.action_type} record, not an action of the bot "
            "or a team's take or resolve; it cannot be rolled back."
        )
    complete = all(snapshots.is_complete(state) for state in (action.before_state, action.after_state))
    if not action.rollback_possible or not complete:
        raise RollbackNotPossible(
            f"Action {sid} cannot be rolled back: it was recorded without what it takes "
            "to undo it."
        )


def _ticket_of(session: Session, action: ActionHistory, *, lock: bool) -> Ticket:
    query = select(Ticket).where(Ticket.ticket_id == action.ticket_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    ticket = session.scalars(query).one_or_none()
    if ticket is None:  # the FK cascades, so only a row deleted under us gets here
        raise NotFound(f"The ticket of action {short_id(action.id)} no longer exists.")
    return ticket


def _check_no_conflict(action: ActionHistory, current: dict[str, Any]) -> None:
    differing = snapshots.differences(current, action.after_state or {})
    if differing:
        described = "; ".join(
            f"{name} is now {now_value!r} (the action left {left!r})"
            for name, (left, now_value) in differing.items()
        )
        raise RollbackConflict(
            f"Ticket #{action.ticket_id} changed after action {short_id(action.id)}, so "
            f"rolling it back would overwrite someone's work: {described}. Nothing was changed.",
            differing,
        )


def _changes(current: dict[str, Any], target: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        name: (current.get(name), target.get(name))
        for name in snapshots.SNAPSHOT_FIELDS
        if current.get(name) != target.get(name)
    }
