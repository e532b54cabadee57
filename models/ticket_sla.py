"""A ticket's service-level clock: its priority, targets, times and notices (SLA).

One row per ticket, written by the `check_sla` job (bot.domain.sla) from the ticket and
its action history, so nothing on the request path changes. The times are business
seconds (BUSINESS_HOURS; critical tickets around the clock) with the time the ticket
waited on its requester left out. The `*_warned_at` / `*_breached_at` columns are set by
a conditional UPDATE (`... WHERE x IS NULL`), so two job runs never notify twice.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, known_values


class SlaPriority(enum.StrEnum):
    """A ticket's SLA priority (`ticket_sla.priority`)."""

    CRITICAL = "critical"  # the agent's critical flag: always around the clock
    HIGH = "high"  # severity high
    NORMAL = "normal"  # severity low or medium, or not decided on yet


class TicketSla(Base):
    __tablename__ = "ticket_sla"
    __table_args__ = (
        known_values("priority", SlaPriority),
        # The stats window.
        Index("ix_ticket_sla_started_at", "started_at"),
        # The job reads the rows whose clocks still run.
        Index("ix_ticket_sla_settled", "settled"),
    )

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.ticket_id"), primary_key=True)
    priority: Mapped[str] = mapped_column(String(10))
    team: Mapped[str] = mapped_column(String(100))
    # When the clock started: the ticket's intake.
    started_at: Mapped[datetime] = mapped_column()
    # The targets in effect when measured (seconds), so stats do not move with settings.
    response_target_s: Mapped[int] = mapped_column()
    resolution_target_s: Mapped[int] = mapped_column()
    # First response (the bot's autonomous answer, a person's Take it or resolution).
    first_response_at: Mapped[datetime | None] = mapped_column()
    # Business seconds to first response / resolution; None while the clock runs.
    response_s: Mapped[int | None] = mapped_column()
    resolution_s: Mapped[int | None] = mapped_column()
    # Business seconds the resolution clock had run at the last measure.
    elapsed_s: Mapped[int] = mapped_column(default=0)
    response_warned_at: Mapped[datetime | None] = mapped_column()
    response_breached_at: Mapped[datetime | None] = mapped_column()
    resolution_warned_at: Mapped[datetime | None] = mapped_column()
    resolution_breached_at: Mapped[datetime | None] = mapped_column()
    # True once both clocks stopped (resolved, or withdrawn).
    settled: Mapped[bool] = mapped_column(default=False)
    # When the job next needs to measure the ticket, though nothing happened to it: the
    # earliest a running clock can reach its next unflagged threshold (business time
    # never runs faster than wall time). None: no threshold left. The job also measures
    # a ticket changed since `updated_at` (tickets.updated_at is later).
    next_check_at: Mapped[datetime | None] = mapped_column()
    # When the job last measured the ticket.
    updated_at: Mapped[datetime] = mapped_column()
