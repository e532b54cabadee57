"""Security-relevant events: denied rollbacks, feedback from the wrong person, caps hit."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_event_type_occurred_at", "event_type", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now())
    event_type: Mapped[str] = mapped_column(String(50))
    actor_id: Mapped[str | None] = mapped_column(String(32))
    # Plain references, no foreign keys: an audit row outlives what it points at.
    ticket_id: Mapped[int | None] = mapped_column()
    action_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    detail: Mapped[dict] = mapped_column(default=dict)
