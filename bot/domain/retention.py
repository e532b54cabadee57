"""Erasure is redaction: free text older than RETENTION_DAYS is blanked, rows stay.

What people wrote and what the bot wrote back about it goes: a ticket's request
(description, issue_type, and the replies it was given when the bot asked for
detail) and the agent's analysis of it, feedback comments and
people's notes, the text of Slack messages already sent, and in the audit trail the
reasoning, reasons and notes of action_history rows and the text keys of audit_events
details. Everything else stays for reports: who did what, when, with what confidence.

Chained rows keep their place: the chain covers a digest of their text, and the entry
records when the text was redacted (`redacted_at`), so `audit verify` still passes and
would notice the text coming back. Each pass is bounded (`limit` rows per kind) and
audited (`text_redacted`, with the cutoff and the counts).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from bot.domain import audit
from bot.domain.audit_chain import TEXT_DETAIL, TEXT_PARAMS
from models import (
    ActionHistory,
    AuditChainEntry,
    AuditEvent,
    OutboxStatus,
    PersonResolution,
    SlackOutbox,
    Ticket,
    TicketMessage,
    TicketResolution,
)

# What a redacted request or message reads.
REDACTED = "[redacted]"
# Rows changed per kind in one call; the job calls again until nothing is left.
BATCH = 500


def redact(session: Session, *, cutoff: datetime, now: datetime, limit: int = BATCH) -> dict[str, int]:
    """Blank free text written before `cutoff`, at most `limit` rows of each kind.

    Args:
        session: the caller's session; flushed, not committed.
        cutoff: text older than this goes (now - RETENTION_DAYS).
        now: the clock reading, recorded on redacted chain entries.
        limit: rows per kind in this call.

    Returns:
        How many rows of each kind were redacted; all zero when nothing was left.
    """
    counts = {
        "action_history": _redact_actions(session, cutoff, now, limit),
        "audit_events": _redact_events(session, cutoff, now, limit),
        "tickets": _blank(session, Ticket, Ticket.ticket_id, Ticket.created_at < cutoff,
                          Ticket.description != REDACTED, limit,
                          description=REDACTED, issue_type=REDACTED, agent_response=None,
                          suggested_action=None),
        "ticket_resolution": _blank(session, TicketResolution, TicketResolution.id,
                                    TicketResolution.created_at < cutoff,
                                    (TicketResolution.user_feedback_text != "")
                                    | (TicketResolution.reopened_reason != ""), limit,
                                    user_feedback_text="", reopened_reason=""),
        "person_resolution": _blank(session, PersonResolution, PersonResolution.id,
                                    PersonResolution.created_at < cutoff,
                                    (PersonResolution.note != "")
                                    | (PersonResolution.user_feedback_text != "")
                                    | (PersonResolution.reopened_reason != ""), limit,
                                    note="", user_feedback_text="", reopened_reason=""),
        # Only what is settled: a message still owed is sent as written.
        # The requester's replies to the bot's questions (the clarification loop).
        "ticket_messages": _blank(session, TicketMessage, TicketMessage.id,
                                  TicketMessage.created_at < cutoff, TicketMessage.text != REDACTED,
                                  limit, text=REDACTED),
        "slack_outbox": _blank(session, SlackOutbox, SlackOutbox.id, SlackOutbox.created_at < cutoff,
                               SlackOutbox.status.in_([OutboxStatus.SENT, OutboxStatus.FAILED,
                                                       OutboxStatus.CANCELLED])
                               & (SlackOutbox.text != REDACTED), limit,
                               text=REDACTED, blocks=None),
    }
    if any(counts.values()):
        audit.record(session, audit.TEXT_REDACTED, actor_id=None, now=now,
                     detail={"cutoff": cutoff.isoformat(), **counts})
    session.flush()
    return counts


def _unredacted(link: Any, at: Any, cutoff: datetime, limit: int):
    return (select(AuditChainEntry).where(AuditChainEntry.redacted_at.is_(None), link.is_not(None))
            .where(at < cutoff).order_by(AuditChainEntry.seq).limit(limit))


def _redact_actions(session: Session, cutoff: datetime, now: datetime, limit: int) -> int:
    entries = session.scalars(
        _unredacted(AuditChainEntry.action_id, ActionHistory.executed_at, cutoff, limit)
        .join(ActionHistory, ActionHistory.id == AuditChainEntry.action_id)
    ).all()
    rows = {row.id: row for row in session.scalars(
        select(ActionHistory).where(ActionHistory.id.in_([e.action_id for e in entries])))}
    for entry in entries:
        row = rows[entry.action_id]
        row.agent_reasoning = ""
        row.rollback_reason = ""
        row.action_params = {k: v for k, v in (row.action_params or {}).items() if k not in TEXT_PARAMS}
        entry.redacted_at = now
    session.flush()
    return len(entries)


def _redact_events(session: Session, cutoff: datetime, now: datetime, limit: int) -> int:
    entries = session.scalars(
        _unredacted(AuditChainEntry.event_id, AuditEvent.occurred_at, cutoff, limit)
        .join(AuditEvent, AuditEvent.id == AuditChainEntry.event_id)
    ).all()
    rows = {row.id: row for row in session.scalars(
        select(AuditEvent).where(AuditEvent.id.in_([e.event_id for e in entries])))}
    for entry in entries:
        row = rows[entry.event_id]
        row.detail = {k: v for k, v in (row.detail or {}).items() if k not in TEXT_DETAIL}
        entry.redacted_at = now
    session.flush()
    return len(entries)


def _blank(session: Session, model: Any, key: Any, older: ColumnElement[bool],
           unredacted: ColumnElement[bool], limit: int, **values: Any) -> int:
    ids = session.scalars(select(key).where(older, unredacted).order_by(key).limit(limit)).all()
    if ids:
        session.execute(update(model).where(key.in_(ids)).values(**values)
                        .execution_options(synchronize_session=False))
    return len(ids)
