"""The audit chain: one entry per `action_history` and `audit_events` row, each bound
to the one before it, so a row changed, removed or inserted behind the app's back shows.

An entry keeps digests, not content: `content_digest` is SHA-256 over the row's
canonical content (free text only as `text_digest`), `hash` is SHA-256 over the
sequence number, that digest and the previous entry's hash, and `signature` an
HMAC-SHA256 of `hash` under AUDIT_SIGNING_KEY when one is set. Rows stay as they are
(reports and compliance queries read them); the chain is beside them, keyed by the row
(see bot.domain.audit_chain for the content and bot.domain.audit_verify for the check).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

# The previous hash of the first entry.
GENESIS_HASH = "0" * 64


class AuditChainEntry(Base):
    __tablename__ = "audit_chain"
    __table_args__ = (
        CheckConstraint("(action_id IS NULL) <> (event_id IS NULL)", name="one_row"),
    )

    # 1, 2, 3, ... with no gaps: taken under the chain's lock, so a gap is a removal.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # The row: an action_history id or an audit_events id. Plain references, no foreign
    # keys, so a deleted row leaves its entry behind to say so.
    action_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)
    event_id: Mapped[int | None] = mapped_column(unique=True)
    text_digest: Mapped[str] = mapped_column(String(64))
    content_digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(String(64))
    # When the retention job blanked the row's free text (RETENTION_DAYS); from then on
    # `text_digest` stands for the text. Not hashed: it records an erasure, not content.
    redacted_at: Mapped[datetime | None] = mapped_column()
