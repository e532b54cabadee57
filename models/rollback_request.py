"""A rollback waiting for a second person (ROLLBACK_APPROVAL=two-person).

An admin asks; another admin or an approver approves (the rollback runs then) or
rejects it; or nobody does and it expires. The row keeps who asked, why, what the
rollback would change as they saw it, and who decided what and when: with the
ROLLBACK row it leads to, it is the record that two people agreed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, known_values


class RequestStatus(StrEnum):
    """Where a rollback request is. Only `pending` ones can be approved or rejected."""

    PENDING = "pending"
    APPROVED = "approved"  # and rolled back: `rollback_id` is the ROLLBACK row
    REJECTED = "rejected"
    EXPIRED = "expired"


class RollbackRequest(Base):
    __tablename__ = "rollback_requests"
    __table_args__ = (
        known_values("status", RequestStatus),
        known_values("shown_status", RequestStatus),
        # The expiry job: pending requests by when they expire.
        Index("ix_rollback_requests_status_expires_at", "status", "expires_at"),
        # One request at a time per action: a second would ask people to approve twice.
        Index(
            "uq_rollback_requests_pending_action_id",
            "action_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    # The action to roll back, and its ticket (kept for the message and the log).
    action_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("action_history.id", ondelete="CASCADE")
    )
    ticket_id: Mapped[int] = mapped_column()
    # Who asked (a Slack user id) and why; what the rollback would change, as they saw
    # it: {field: [value then, value after the rollback]}.
    requested_by: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    diff: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()

    status: Mapped[str] = mapped_column(String(10), default=RequestStatus.PENDING)  # a RequestStatus
    # Who approved or rejected it (a Slack user id), when, and a rejection's reason.
    # An expired request has decided_at (when it was found expired) and no decider.
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None] = mapped_column()
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    # The ROLLBACK row an approval wrote.
    rollback_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("action_history.id", ondelete="SET NULL")
    )

    # The message in the approvals channel (its outbox row: where it was posted), and
    # the status it shows; a request whose message lags its status is redrawn.
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("slack_outbox.id", ondelete="SET NULL"))
    shown_status: Mapped[str] = mapped_column(String(10), default=RequestStatus.PENDING)
