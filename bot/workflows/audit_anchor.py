"""Posting the audit chain's head to AUDIT_CHANNEL once a day: an anchor outside the
database, so a rewrite of the whole chain (or of its newest entries) shows.

The periodic job runs every JOB_INTERVAL and owes a post only when the last one is a
day old; the post is an outbox row (purpose `audit_anchor`) written in the
transaction that read the head, and sent after the commit like every other post.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from slack_sdk import WebClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot.core import clock
from bot.core.settings import Settings
from bot.delivery import outbox
from bot.domain import audit_chain
from bot.views.audit import anchor_text
from models import OutboxPurpose, SlackOutbox, as_utc, transaction

ANCHOR_INTERVAL = timedelta(hours=24)
ANCHOR_LOCK_KEY = 7_268_710_361_003
"""pg_try_advisory_xact_lock key: one process decides whether an anchor is owed."""
ANCHORS_OFF = ("audit anchors are off: AUDIT_CHANNEL is not set. Set it to a channel the bot "
               "is in, so the chain's head is posted there daily")


def off_reason(settings: Settings) -> str | None:
    """Why no anchor is posted with these settings, or None."""
    return None if settings.audit_channel else ANCHORS_OFF


def owe_anchor(session: Session, settings: Settings, *, now: datetime,
               claim_ttl: timedelta | None = None) -> SlackOutbox | None:
    """Owe a post of the chain's head, if the last one is ANCHOR_INTERVAL old.

    Args:
        session: the caller's session; flushed, not committed.
        settings: AUDIT_CHANNEL.
        now: the clock reading.
        claim_ttl: write the post claimed by the caller, who sends it after the commit.

    Returns:
        The outbox row, or None: no channel, an empty chain, a recent anchor, or
        another process deciding now.
    """
    if not settings.audit_channel:
        return None
    if session.get_bind().dialect.name == "postgresql" and not session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ANCHOR_LOCK_KEY}):
        return None
    last = session.scalar(select(func.max(SlackOutbox.created_at))
                          .where(SlackOutbox.purpose == OutboxPurpose.AUDIT_ANCHOR))
    if last is not None and now - as_utc(last) < ANCHOR_INTERVAL:
        return None
    head = audit_chain.head(session)
    if head is None:
        return None
    return outbox.enqueue(session, purpose=OutboxPurpose.AUDIT_ANCHOR, channel=settings.audit_channel,
                          text=anchor_text(head.seq, head.hash, head.signature, now), now=now,
                          claim_ttl=claim_ttl)


def post_anchor(sessions: sessionmaker[Session], client: WebClient, settings: Settings, *,
                now: datetime | None = None) -> int:
    """Owe the daily anchor if it is due and send it; returns 1 when one was owed."""
    now = now or clock.now()
    with transaction(sessions) as session:
        row = owe_anchor(session, settings, now=now, claim_ttl=settings.claim_ttl)
        claims = outbox.claims_of([row] if row is not None else [])
    if not claims:
        return 0
    outbox.send_claimed(sessions, client, claims, ttl=settings.claim_ttl, now=now)
    return 1
