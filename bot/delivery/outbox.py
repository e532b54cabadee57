"""Slack posts owed to people: written with what they announce, delivered after it.

`enqueue` adds a row in the caller's transaction, so the post exists if and only if
the action does. `deliver` sends one row right after the commit; `deliver_due` (a
periodic job) retries what failed, with backoff, and what a dead process never sent.
Rows are claimed with `FOR UPDATE SKIP LOCKED` and an expiring claim, so any number of
processes deliver each row once.
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

from bot.core import clock
from bot.delivery.claims import send_each
from bot.delivery.slack_client import SlackUnavailable, safe_call
from bot.domain import tickets
from models import SlackOutbox, transaction

log = logging.getLogger(__name__)

METADATA_EVENT = "resolvemeq_outbox"
# How far back a retry looks for a post an earlier attempt may have made.
RECONCILE_LOOKBACK = 100
TICKET_OUTCOME = "ticket_outcome"
NOTICE = "notice"
MAX_ATTEMPTS = 10
MAX_BACKOFF = timedelta(hours=1)


def enqueue(
    session: Session,
    *,
    purpose: str,
    channel: str,
    text: str,
    blocks: list | None = None,
    thread_ts: str | None = None,
    ticket_id: int | None = None,
    fallback_user: str | None = None,
    now: datetime | None = None,
    claim_ttl: timedelta | None = None,
) -> SlackOutbox:
    """Add a post to the outbox (flushed, not committed).

    With `claim_ttl`, the row is written already claimed by the caller, who sends it
    right after the commit (`claims_of`, `send_claimed`) with no claim transaction of
    its own; if the caller dies first, the claim expires and `deliver` sends it.
    """
    now = now or clock.now()
    row = SlackOutbox(
        purpose=purpose, channel=channel, text=text, blocks=blocks, thread_ts=thread_ts or None,
        ticket_id=ticket_id, fallback_user=fallback_user, status="pending", attempts=0,
        next_attempt_at=now, created_at=now, last_error="",
    )
    if claim_ttl is not None:
        _claim_row(row, now, claim_ttl)
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class _Claim:
    id: int
    token: str
    purpose: str
    channel: str
    thread_ts: str | None
    text: str
    blocks: list | None
    fallback_user: str | None
    ticket_id: int | None
    attempts: int
    until: datetime  # when the claim expires, unless renewed


def _claim(session: Session, *, now: datetime, ttl: timedelta, ids: list[int] | None, limit: int):
    query = (
        select(SlackOutbox)
        .where(
            SlackOutbox.status == "pending",
            SlackOutbox.next_attempt_at <= now,
            or_(SlackOutbox.claimed_until.is_(None), SlackOutbox.claimed_until < now),
        )
        .order_by(SlackOutbox.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if ids is not None:
        query = query.where(SlackOutbox.id.in_(ids))
    rows = session.scalars(query).all()
    claimed = [_claim_row(row, now, ttl) for row in rows]
    session.flush()
    return claimed


def _claim_row(row: SlackOutbox, now: datetime, ttl: timedelta) -> _Claim:
    row.attempts += 1
    row.claimed_until = now + ttl
    row.claim_token = uuid.uuid4().hex
    return _claim_of(row)


def _claim_of(row: SlackOutbox) -> _Claim:
    return _Claim(row.id, row.claim_token, row.purpose, row.channel, row.thread_ts, row.text,
                  row.blocks, row.fallback_user, row.ticket_id, row.attempts, row.claimed_until)


def claims_of(rows: list[SlackOutbox]) -> list[_Claim]:
    """The claims of rows enqueued with `claim_ttl`, for `send_claimed` after the commit."""
    return [_claim_of(row) for row in rows]


def deliver(
    sessions: sessionmaker[Session],
    client: WebClient,
    ids: list[int] | None = None,
    *,
    ttl: timedelta = timedelta(minutes=2),
    limit: int = 100,
    now: datetime | None = None,
) -> int:
    """Deliver the given pending rows (or any due ones); returns how many were sent."""
    if ids is not None and not ids:
        return 0
    now = now or clock.now()
    with transaction(sessions) as session:
        claimed = _claim(session, now=now, ttl=ttl, ids=ids, limit=limit)
    return send_claimed(sessions, client, claimed, ttl=ttl, now=now)


def send_claimed(
    sessions, client: WebClient, claimed: list[_Claim], *, ttl: timedelta,
    now: datetime | None = None,
) -> int:
    """Send rows claimed by `deliver` or enqueued with `claim_ttl`; returns how many were
    sent. `now` is the clock reading to count from (the tests move it)."""
    return send_each(
        claimed, now=now or clock.now(), ttl=ttl,
        renew=lambda claim, until: _renew(sessions, claim, until),
        send=lambda claim, at: _send(sessions, client, claim, at),
    )


def _renew(sessions, claim: _Claim, until: datetime) -> bool:
    with transaction(sessions) as session:
        renewed = session.execute(
            update(SlackOutbox)
            .where(SlackOutbox.id == claim.id, SlackOutbox.claim_token == claim.token,
                   SlackOutbox.status == "pending")
            .values(claimed_until=until)
        ).rowcount
    if not renewed:
        log.info("outbox %s: claim taken over before posting; leaving it", claim.id)
    return bool(renewed)


def _send(sessions, client: WebClient, claim: _Claim, at: Callable[[], datetime]) -> bool:
    try:
        posted, thread_ts = _post(client, claim)
    except SlackUnavailable as error:
        _retry_later(sessions, claim, f"{error.method}: {error.error}", at())
        return False
    except Exception as error:  # an answer we did not expect: retry, never hold the claim
        log.exception("outbox %s: unexpected failure", claim.id)
        _retry_later(sessions, claim, f"unexpected: {type(error).__name__}", at())
        return False
    now = at()
    with transaction(sessions) as session:
        values: dict = {"claimed_until": None}
        if posted is None:
            values.update(status="failed", last_error="Slack refused the post")
        else:
            values.update(status="sent", sent_at=now, sent_channel=posted["channel"],
                          message_ts=posted["ts"], last_error="")
        done = session.execute(
            update(SlackOutbox)
            .where(SlackOutbox.id == claim.id, SlackOutbox.claim_token == claim.token)
            .values(**values)
        ).rowcount
        if done and posted is not None and claim.purpose == TICKET_OUTCOME and claim.ticket_id:
            tickets.attach_message(session, claim.ticket_id, channel_id=posted["channel"],
                                   message_ts=posted["ts"], thread_ts=thread_ts or posted["ts"])
    return bool(done) and posted is not None


def _post(client: WebClient, claim: _Claim) -> tuple[dict | None, str | None]:
    """Post the row (or find that an earlier attempt did); returns (post, thread root).

    Slack has no idempotency key, and a timeout does not say the post did not land:
    every post names its row in message metadata, and a retry looks for it first.
    """
    metadata = {"event_type": METADATA_EVENT, "event_payload": {"outbox_id": claim.id}}
    dm_channel = None
    if claim.attempts > 1:
        found = _find_post(client, claim.channel, claim.thread_ts, claim.id)
        if found is None and claim.fallback_user:
            dm_channel = _dm(client, claim.fallback_user)
            found = dm_channel and _find_post(client, dm_channel, None, claim.id)
        if found:
            log.info("outbox %s was already posted; recording it", claim.id)
            return found, None if found["channel"] == dm_channel else claim.thread_ts
    posted = safe_call(client, "chat.postMessage", raise_transient=True, channel=claim.channel,
                       text=claim.text, blocks=claim.blocks, thread_ts=claim.thread_ts,
                       metadata=metadata, unfurl_links=False, unfurl_media=False)
    if posted is not None or not claim.fallback_user:
        return posted, claim.thread_ts
    # The bot may not post there (a slash command in a channel it is not in): answer
    # the requester privately instead.
    dm_channel = dm_channel or _dm(client, claim.fallback_user)
    if dm_channel is None:
        return None, None
    posted = safe_call(client, "chat.postMessage", raise_transient=True, channel=dm_channel,
                       text=claim.text, blocks=claim.blocks, metadata=metadata)
    return posted, None


def _dm(client: WebClient, user: str) -> str | None:
    opened = safe_call(client, "conversations.open", raise_transient=True, users=user)
    return opened["channel"]["id"] if opened is not None else None


def _find_post(client: WebClient, channel: str, thread_ts: str | None, row_id: int) -> dict | None:
    if thread_ts:
        found = safe_call(client, "conversations.replies", raise_transient=True, channel=channel,
                          ts=thread_ts, include_all_metadata=True, limit=RECONCILE_LOOKBACK)
    else:
        found = safe_call(client, "conversations.history", raise_transient=True, channel=channel,
                          include_all_metadata=True, limit=RECONCILE_LOOKBACK)
    for message in (found or {}).get("messages", []):
        metadata = message.get("metadata") or {}
        if (metadata.get("event_type") == METADATA_EVENT
                and (metadata.get("event_payload") or {}).get("outbox_id") == row_id):
            return {"channel": channel, "ts": message["ts"]}
    return None


def _retry_later(sessions, claim: _Claim, error: str, now: datetime) -> None:
    attempts = claim.attempts
    if attempts >= MAX_ATTEMPTS:
        log.error("outbox %s: giving up after %d attempts (%s)", claim.id, attempts, error)
        values = {"status": "failed", "claimed_until": None, "last_error": error[:500]}
    else:
        backoff = min(timedelta(seconds=15 * 2 ** (attempts - 1)), MAX_BACKOFF)
        values = {"claimed_until": None, "next_attempt_at": now + backoff, "last_error": error[:500]}
    with transaction(sessions) as session:
        session.execute(
            update(SlackOutbox)
            .where(SlackOutbox.id == claim.id, SlackOutbox.claim_token == claim.token)
            .values(**values)
        )
