"""One call to the agent: the agent-error alert counts these."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class AgentCall(Base):
    __tablename__ = "agent_calls"
    __table_args__ = (Index("ix_agent_calls_called_at_ok", "called_at", "ok"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    called_at: Mapped[datetime] = mapped_column(server_default=func.now())
    agent: Mapped[str] = mapped_column(String(20))  # "knowledge_base" or "http"
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.ticket_id", ondelete="SET NULL")
    )
    ok: Mapped[bool] = mapped_column()
    latency_ms: Mapped[float] = mapped_column()
    attempts: Mapped[int] = mapped_column(default=1)
    error: Mapped[str] = mapped_column(Text, default="")
