"""Security-relevant events, written in the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from bot.core import clock
from bot.domain import audit_chain
from models import AuditEvent

# Event types, one place so alerts and reports agree on the names.
ROLLBACK_DENIED = "rollback_denied"
ROLLBACK_THROTTLED = "rollback_throttled"
FEEDBACK_WRONG_USER = "feedback_wrong_user"
FEEDBACK_CHANGED = "feedback_changed"
# The requester answered (Yes, No, stars, what didn't work) on a ticket they had withdrawn:
# refused, nothing else written (detail: what was clicked).
FEEDBACK_ON_WITHDRAWN = "feedback_on_withdrawn"
AUTONOMY_CAP_REACHED = "autonomy_cap_reached"
AUTONOMY_LIMITER_DOWN = "autonomy_limiter_unavailable"
# A ticket was taken without the per-person limit (TICKET_RATE_LIMIT): its store was down.
TICKET_LIMITER_DOWN = "ticket_limiter_unavailable"
# An admin changed the autonomy switch (/autonomy; detail: mode, previous, reason).
AUTONOMY_CHANGED = "autonomy_changed"
# Someone who is not an admin tried /autonomy (detail: the subcommand).
AUTONOMY_DENIED = "autonomy_denied"
# THRESHOLD_EXPERIMENT: an experiment started (by a process that found it set) or
# stopped (by an admin, or by a process that found it unset or changed).
EXPERIMENT_STARTED = "threshold_experiment_started"
EXPERIMENT_STOPPED = "threshold_experiment_stopped"
# Two-person rollback: a request, its approval (the rollback ran), rejection or expiry,
# and a refused approval or rejection (not an admin or approver, or their own request).
ROLLBACK_REQUESTED = "rollback_requested"
ROLLBACK_APPROVED = "rollback_approved"
ROLLBACK_REJECTED = "rollback_rejected"
ROLLBACK_REQUEST_EXPIRED = "rollback_request_expired"
ROLLBACK_APPROVAL_DENIED = "rollback_approval_denied"
# Someone outside a team's channel (and not an admin) tried to take or resolve its ticket.
TEAM_ACTION_DENIED = "team_action_denied"
# Free text older than RETENTION_DAYS was blanked (detail: the cutoff, rows per table).
TEXT_REDACTED = "text_redacted"
# A scheduled backup was made and verified, or failed to be (detail: file, problems).
BACKUP_VERIFIED = "backup_verified"
BACKUP_FAILED = "backup_failed"
# A ticket opened from someone's message (a :ticket: reaction or the message shortcut;
# actor: who asked for it), and the requester's own changes from App Home.
TICKET_FROM_MESSAGE = "ticket_from_message"
TICKET_DETAIL_ADDED = "ticket_detail_added"
TICKET_WITHDRAWN = "ticket_withdrawn"
# Someone other than the requester tried to add detail to or withdraw a ticket.
TICKET_CHANGE_DENIED = "ticket_change_denied"


def record(
    session: Session,
    event_type: str,
    *,
    actor_id: str | None,
    ticket_id: int | None = None,
    action_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
    reservation: audit_chain.Reservation | None = None,
) -> AuditEvent:
    """Write an audit event in the session's transaction (not committed).

    One round trip: the row is inserted and comes back as the database holds it, which
    is what the audit chain hashes (`audit_chain.note_written`), so the chain need not
    read it again before the commit. With a reservation (`audit_chain.reserving`), no
    round trip here: the row takes the reserved id and is inserted with its chain entry
    at the commit, hashed from the values given here, which the database keeps as they
    are (a detail of strings, booleans and small integers; any other detail is inserted
    now).

    Returns:
        The new event (with a reservation, not in the session: it is inserted at the
        commit).
    """
    values = {
        "occurred_at": now or clock.now(),
        "event_type": event_type,
        "actor_id": actor_id,
        "ticket_id": ticket_id,
        "action_id": action_id,
        "detail": detail or {},
    }
    event_id = (audit_chain.use_reservation(session, reservation)
                if _kept_as_given(values["detail"]) else None)
    if event_id is not None:
        audit_chain.note_reserved(session, audit_chain.EVENTS, {"id": event_id, **values})
        return AuditEvent(id=event_id, **values)
    event = session.scalars(insert(AuditEvent).returning(AuditEvent), [values]).one()
    audit_chain.note_written(session, audit_chain.EVENTS, event)
    return event


def _kept_as_given(value: Any) -> bool:
    """Whether JSON `value` reads back from the database as it was given: a float may
    not (JSONB keeps 1e20 as the integer 100000000000000000000), a tuple comes back a
    list, a key that is not a string comes back a string."""
    if value is None or isinstance(value, (bool, str)):
        return True
    if isinstance(value, int):
        return abs(value) <= 2**53 - 1
    if isinstance(value, list):
        return all(_kept_as_given(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _kept_as_given(item) for key, item in value.items())
    return False
