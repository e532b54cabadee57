"""The one follow-up DM for an auto-resolution nobody answered: exactly once.

The due time lives in the database (ticket_resolution.followup_due_at), never in a
broker ETA (a Redis broker redelivers long ETA tasks after its visibility timeout).
Any number of workers claim due rows with `FOR UPDATE SKIP LOCKED`; a claim expires,
so a worker killed mid-send loses nothing. Slack has no idempotency key, so the DM
carries message metadata naming the resolution: whoever takes over a claim that may
have sent (an earlier attempt exists) first looks for that DM in the conversation and
records it instead of sending again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_sdk import WebClient
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot import views
from bot.core import clock
from bot.delivery.claims import send_each
from bot.delivery.slack_client import SlackUnavailable, safe_call
from models import ActionHistory, Ticket, TicketResolution, transaction

log = logging.getLogger(__name__)

METADATA_EVENT = "resolvemeq_followup"
MAX_ATTEMPTS = 8
# How far back a takeover looks for a DM an earlier attempt may have sent.
RECONCILE_LOOKBACK = 50


@dataclass(frozen=True)
class Claim:
    """One follow-up this worker may send, with everything needed to send it."""

    resolution_id: int
    token: str
    user_id: str
    # More than one attempt: an earlier one may have reached Slack.
    reconcile: bool
    until: datetime  # when the claim expires, unless renewed
    text: str
    blocks: list


def claim_due(session: Session, *, now: datetime, ttl: timedelta, limit: int = 100) -> list[Claim]:
    """Claim up to `limit` due, unanswered follow-ups (flushed; the caller commits).

    Args:
        session: the caller's session.
        now: the clock reading; rows due at or before it are taken.
        ttl: how long the claim lasts before another worker may take over.
        limit: the batch size.
    """
    rows = session.execute(
        select(TicketResolution, Ticket, ActionHistory)
        .join(Ticket, Ticket.ticket_id == TicketResolution.ticket_id)
        .join(ActionHistory, ActionHistory.id == TicketResolution.action_id)
        .where(
            TicketResolution.followup_due_at <= now,
            TicketResolution.followup_sent_at.is_(None),
            # Answered in any way: no follow-up (the reference system's gap).
            TicketResolution.response_received_at.is_(None),
            TicketResolution.resolution_confirmed.is_(None),
            TicketResolution.satisfaction_score.is_(None),
            ActionHistory.rolled_back.is_(False),
            or_(
                TicketResolution.followup_claimed_until.is_(None),
                TicketResolution.followup_claimed_until < now,
            ),
        )
        .order_by(TicketResolution.followup_due_at)
        .limit(limit)
        .with_for_update(of=TicketResolution, skip_locked=True)
    ).all()
    claims = []
    for resolution, ticket, action in rows:
        resolution.followup_attempts = (resolution.followup_attempts or 0) + 1
        resolution.followup_claimed_until = now + ttl
        resolution.followup_claim_token = uuid.uuid4().hex
        text, blocks = views.followup_dm(ticket, action, now=now)
        claims.append(
            Claim(
                resolution_id=resolution.id,
                token=resolution.followup_claim_token,
                user_id=ticket.user_id,
                reconcile=resolution.followup_attempts > 1,
                until=resolution.followup_claimed_until,
                text=text,
                blocks=blocks,
            )
        )
    session.flush()
    return claims


def send_due(
    sessions: sessionmaker[Session],
    client: WebClient,
    *,
    ttl: timedelta,
    limit: int = 100,
    now: datetime | None = None,
) -> int:
    """Claim a batch of due follow-ups and send each; returns how many were recorded sent."""
    now = now or clock.now()
    with transaction(sessions) as session:
        claims = claim_due(session, now=now, ttl=ttl, limit=limit)
    return send_each(
        claims, now=now, ttl=ttl, renew=lambda claim, until: _renew(sessions, claim, until),
        send=lambda claim, at: _send(sessions, client, claim, at),
    )


def _renew(sessions: sessionmaker[Session], claim: Claim, until: datetime) -> bool:
    with transaction(sessions) as session:
        renewed = session.execute(
            update(TicketResolution)
            .where(_mine(claim), TicketResolution.followup_sent_at.is_(None))
            .values(followup_claimed_until=until)
        ).rowcount
    if not renewed:
        log.info("follow-up %s: claim taken over before sending; leaving it", claim.resolution_id)
    return bool(renewed)


def _send(
    sessions: sessionmaker[Session], client: WebClient, claim: Claim, at: Callable[[], datetime]
) -> bool:
    try:
        opened = safe_call(client, "conversations.open", raise_transient=True, users=claim.user_id)
        if opened is None:
            return _give_up(sessions, claim, "cannot open a DM with the requester")
        channel = opened["channel"]["id"]
        if claim.reconcile:
            ts = _already_sent(client, channel, claim.resolution_id)
            if ts is not None:
                log.info("follow-up %s was already sent; recording it", claim.resolution_id)
                return _record(sessions, claim, channel=channel, ts=ts, now=at())
        posted = safe_call(
            client, "chat.postMessage", raise_transient=True, channel=channel, text=claim.text,
            blocks=claim.blocks,
            metadata={"event_type": METADATA_EVENT,
                      "event_payload": {"resolution_id": claim.resolution_id}},
        )
    except SlackUnavailable as error:
        return _retry_later(sessions, claim, f"{error.method}: {error.error}", at())
    if posted is None:
        return _give_up(sessions, claim, "Slack refused the DM")
    return _record(sessions, claim, channel=channel, ts=posted["ts"], now=at())


def _already_sent(client: WebClient, channel: str, resolution_id: int) -> str | None:
    history = safe_call(
        client, "conversations.history", raise_transient=True, channel=channel,
        include_all_metadata=True, limit=RECONCILE_LOOKBACK,
    )
    for message in (history or {}).get("messages", []):
        metadata = message.get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        if metadata.get("event_type") == METADATA_EVENT and payload.get("resolution_id") == resolution_id:
            return message.get("ts")
    return None


def _mine(claim: Claim):
    return (TicketResolution.id == claim.resolution_id) & (
        TicketResolution.followup_claim_token == claim.token
    )


def _record(
    sessions: sessionmaker[Session], claim: Claim, *, channel: str, ts: str, now: datetime
) -> bool:
    with transaction(sessions) as session:
        done = session.execute(
            update(TicketResolution)
            .where(_mine(claim))
            .values(followup_sent_at=now, followup_channel=channel,
                    followup_message_ts=ts, followup_claimed_until=None, followup_last_error="")
        ).rowcount
    if not done:
        log.warning("follow-up %s: claim lost before recording", claim.resolution_id)
    return bool(done)


def _retry_later(sessions: sessionmaker[Session], claim: Claim, error: str, now: datetime) -> bool:
    with transaction(sessions) as session:
        resolution = session.get(TicketResolution, claim.resolution_id, with_for_update=True)
        if resolution is None or resolution.followup_claim_token != claim.token:
            return False
        resolution.followup_last_error = error[:500]
        if resolution.followup_attempts >= MAX_ATTEMPTS:
            log.error("follow-up %s: giving up after %d attempts", claim.resolution_id,
                      resolution.followup_attempts)
            resolution.followup_due_at = None
            resolution.followup_claimed_until = None
            return False
        # Keep the token: the next attempt reconciles first, since this one may have
        # reached Slack (a timeout does not say it did not).
        backoff = timedelta(seconds=30 * 2 ** (resolution.followup_attempts - 1))
        resolution.followup_claimed_until = now + min(backoff, timedelta(hours=1))
    return False


def _give_up(sessions: sessionmaker[Session], claim: Claim, error: str) -> bool:
    log.warning("follow-up %s not sent: %s", claim.resolution_id, error)
    with transaction(sessions) as session:
        session.execute(
            update(TicketResolution).where(_mine(claim))
            .values(followup_due_at=None, followup_claimed_until=None, followup_last_error=error)
        )
    return False
