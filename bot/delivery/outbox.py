"""Slack messages owed to people: written with what they announce, delivered after it.

`enqueue` adds a post in the caller's transaction, so the post exists if and only if
the action does; a follow-up DM is written the same way by `bot.domain.followups`,
due a day later. `deliver` sends given rows right after their commit, or (the
delivery job) whatever is due: follow-ups, retries, and what a dead process never sent.
One engine for every row:

- claim: `FOR UPDATE SKIP LOCKED` and an expiring claim token, so any number of
  processes deliver each row once, and one killed mid-send loses nothing;
- backoff: 15 s doubling up to an hour, then `failed` after MAX_ATTEMPTS;
- hold: Slack refusing the bot's token or grants (a rotation, a reinstall, a revoked
  app) fails no row: the row is `held`, keeps its due time, and spends no attempt;
  `release_held` (the delivery job, once a pass) asks `auth.test` whether the token
  works again, retries the oldest held row, and once that one gets through makes every
  held row pending again;
- reconcile: Slack has no idempotency key, and a timeout does not say a post did not
  land, so every message names its row in message metadata and a retry looks for it
  before posting again;
- a follow-up is drawn from its resolution when it is sent, with the resolution row
  locked until it is recorded: an answer or a rollback either cancelled it before
  (the row ends `cancelled`, never `failed`) or waits for it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from slack_sdk import WebClient
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot import views
from bot.core import clock
from bot.delivery.claims import send_each
from bot.delivery.slack_client import SlackTokenRefused, SlackUnavailable, safe_call
from bot.domain import followups, tickets
from bot.domain.surveys import Surveys
from models import (
    OutboxPurpose,
    OutboxStatus,
    SlackOutbox,
    Ticket,
    TicketSource,
    rowcount,
    transaction,
)

log = logging.getLogger(__name__)

# Message metadata event types: what a reconcile looks for (and what the tests and
# the bench read to tell follow-ups from posts).
METADATA_EVENT = "resolvemeq_outbox"
FOLLOWUP_EVENT = "resolvemeq_followup"
# How far back a retry looks for a message an earlier attempt may have posted.
RECONCILE_LOOKBACK = 100
TICKET_OUTCOME = OutboxPurpose.TICKET_OUTCOME
NOTICE = OutboxPurpose.NOTICE
# One policy for every purpose: a follow-up is no more urgent than a post, and no less
# worth delivering. About two hours of retries in all.
MAX_ATTEMPTS = 10
FIRST_BACKOFF = timedelta(seconds=15)
MAX_BACKOFF = timedelta(hours=1)


def enqueue(
    session: Session,
    *,
    purpose: str,
    channel: str | None = None,
    text: str,
    blocks: list | None = None,
    thread_ts: str | None = None,
    ticket_id: int | None = None,
    fallback_user: str | None = None,
    recipient: str | None = None,
    now: datetime | None = None,
    claim_ttl: timedelta | None = None,
) -> SlackOutbox:
    """Add a post to the outbox (flushed, not committed).

    With `claim_ttl`, the row is written already claimed by the caller, who sends it
    right after the commit (`claims_of`, `send_claimed`) with no claim transaction of
    its own; if the caller dies first, the claim expires and `deliver` sends it.

    Args:
        session: the caller's session (the transaction of what the post announces).
        purpose: an OutboxPurpose other than FOLLOWUP (bot.domain.followups writes those).
        channel: where to post (or `recipient`).
        text: the message's text (its notification and fallback).
        blocks: its Block Kit blocks.
        thread_ts: the thread to post in.
        ticket_id: the ticket the post is about.
        fallback_user: DM this user if the bot may not post in `channel`.
        recipient: DM this person instead of posting in a channel.
        now: the clock reading; the post is due at once.
        claim_ttl: write the row claimed by the caller for this long.

    Returns:
        The new row.
    """
    if not channel and not recipient:
        raise ValueError("an outbox post needs a channel or a recipient")
    now = now or clock.now()
    row = SlackOutbox(
        purpose=OutboxPurpose(purpose), channel=channel or None, recipient=recipient,
        text=text, blocks=blocks, thread_ts=thread_ts or None, ticket_id=ticket_id,
        fallback_user=fallback_user,
        status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, created_at=now,
        last_error="",
    )
    if claim_ttl is not None:
        _claim_row(row, now, claim_ttl)
    session.add(row)
    session.flush()
    return row


class Destination(TypedDict, total=False):
    """Where a post goes, as `enqueue` arguments: a channel (and thread), or a DM."""

    channel: str
    thread_ts: str | None
    fallback_user: str | None
    recipient: str


# Tickets whose channel the bot may not be in (a slash command, a message shortcut): an
# answer the channel refuses goes to the requester's DM instead.
_DM_WHEN_REFUSED = frozenset({TicketSource.SLASH_COMMAND, TicketSource.SHORTCUT})


def to_requester(ticket: Ticket) -> Destination:
    """Where a post to a ticket's requester goes, as `enqueue` arguments.

    The ticket's conversation (the thread of the bot's answer, or where it was asked);
    for a private /ticket whose answer is not posted yet (it has no channel: see
    `bot.domain.intake.open_ticket`), the requester's DM. Never a channel the ticket
    does not name.
    """
    if ticket.slack_channel_id:
        return {"channel": ticket.slack_channel_id, "thread_ts": ticket.slack_thread_ts or None,
                "fallback_user": ticket.user_id if ticket.source in _DM_WHEN_REFUSED else None}
    return {"recipient": ticket.user_id}


@dataclass(frozen=True)
class _Claim:
    id: int
    token: str
    purpose: str
    channel: str | None
    recipient: str | None
    thread_ts: str | None
    text: str
    blocks: list | None
    fallback_user: str | None
    ticket_id: int | None
    resolution_id: int | None
    person_resolution_id: int | None
    attempts: int
    created_at: datetime
    until: datetime  # when the claim expires, unless renewed


@dataclass(frozen=True)
class _Posted:
    channel: str
    ts: str
    thread_ts: str | None  # the thread it is in (None when it went to a DM instead)


def claim_due(
    session: Session, *, now: datetime, ttl: timedelta, ids: list[int] | None = None,
    limit: int = 100,
) -> list[_Claim]:
    """Claim up to `limit` due rows no one else holds (flushed; the caller commits).

    Args:
        session: the caller's session.
        now: the clock reading; rows due at or before it are taken.
        ttl: how long the claim lasts before another process may take a row over.
        ids: only these rows (None: any).
        limit: the batch size.

    Returns:
        The claims, in row order, for `send_claimed` after the commit.
    """
    query = (
        select(SlackOutbox)
        .where(
            SlackOutbox.status == OutboxStatus.PENDING,
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
    if not rows:
        return []
    # One statement claims the batch, with one token: the token says which claim holds
    # a row, the row's id which row it is.
    token, until = uuid.uuid4().hex, now + ttl
    session.execute(
        update(SlackOutbox).where(SlackOutbox.id.in_([row.id for row in rows]))
        .values(attempts=SlackOutbox.attempts + 1, claimed_until=until, claim_token=token)
        .execution_options(synchronize_session=False)
    )
    return [_Claim(row.id, token, row.purpose, row.channel, row.recipient, row.thread_ts, row.text,
                   row.blocks, row.fallback_user, row.ticket_id, row.resolution_id,
                   row.person_resolution_id, row.attempts + 1, row.created_at, until)
            for row in rows]


def _claim_row(row: SlackOutbox, now: datetime, ttl: timedelta) -> _Claim:
    row.attempts += 1
    row.claimed_until = now + ttl
    row.claim_token = uuid.uuid4().hex
    return _claim_of(row)


def _claim_of(row: SlackOutbox) -> _Claim:
    if row.claim_token is None or row.claimed_until is None:
        raise ValueError(f"outbox {row.id} is not claimed")
    return _Claim(row.id, row.claim_token, row.purpose, row.channel, row.recipient, row.thread_ts,
                  row.text, row.blocks, row.fallback_user, row.ticket_id, row.resolution_id,
                  row.person_resolution_id, row.attempts, row.created_at, row.claimed_until)


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
    surveys: Surveys | None = None,
) -> int:
    """Deliver the given pending rows (or any due ones: posts and follow-ups alike).

    Args:
        sessions: the session factory; each step is a transaction of its own.
        client: the Slack client.
        ids: the rows to deliver (those just committed); None for whatever is due.
        ttl: how long a claim lasts before another process may take the row over.
        limit: the batch size.
        now: the clock reading to count from (the tests move it).
        surveys: SURVEY_COOLDOWN and NPS_INTERVAL for follow-up DMs (None: both off).

    Returns:
        How many were sent.
    """
    if ids is not None and not ids:
        return 0
    now = now or clock.now()
    with transaction(sessions) as session:
        claimed = claim_due(session, now=now, ttl=ttl, ids=ids, limit=limit)
    return send_claimed(sessions, client, claimed, ttl=ttl, now=now, surveys=surveys)


def send_claimed(
    sessions, client: WebClient, claimed: list[_Claim], *, ttl: timedelta,
    now: datetime | None = None, surveys: Surveys | None = None,
) -> int:
    """Send rows claimed by `deliver` or enqueued with `claim_ttl`; returns how many were
    sent. `now` is the clock reading to count from (the tests move it).

    Posts go one by one, each in a transaction of its own; follow-up DMs go in groups,
    a transaction per group (bot.delivery.followup_batches), folded per person and
    asking NPS as `surveys` says (None: one DM per follow-up, no NPS).
    """
    from bot.delivery.followup_batches import send_followups  # it builds on this module

    now = now or clock.now()
    posts = [claim for claim in claimed if claim.purpose != OutboxPurpose.FOLLOWUP]
    dms = [claim for claim in claimed if claim.purpose == OutboxPurpose.FOLLOWUP]
    sent = send_each(
        posts, now=now, ttl=ttl,
        renew=lambda claim, until: _renew(sessions, claim, until),
        send=lambda claim, at: _send(sessions, client, claim, at),
    ) if posts else 0
    return sent + (send_followups(sessions, client, dms, ttl=ttl, now=now, surveys=surveys)
                   if dms else 0)


def _renew(sessions, claim: _Claim, until: datetime) -> bool:
    with transaction(sessions) as session:
        renewed = rowcount(session.execute(
            update(SlackOutbox)
            .where(SlackOutbox.id == claim.id, SlackOutbox.claim_token == claim.token,
                   SlackOutbox.status == OutboxStatus.PENDING)
            .values(claimed_until=until)
        ))
    if not renewed:
        log.info("outbox %s: claim taken over before posting; leaving it", claim.id)
    return bool(renewed)


def _send(sessions, client: WebClient, claim: _Claim, at: Callable[[], datetime]) -> bool:
    try:
        # One transaction from the draw to the record. For a post it holds no
        # connection until the record; for a follow-up it holds the resolution's lock
        # throughout.
        with transaction(sessions) as session:
            drawn = _draw(session, claim, at())
            if drawn is None:
                return False
            try:
                posted = _post(client, claim, *drawn)
            except SlackTokenRefused as error:
                _hold(session, claim, f"{error.method}: {error.error}")
                return False
            except SlackUnavailable as error:
                _retry_later(session, claim, f"{error.method}: {error.error}", at())
                return False
            return _record(session, claim, posted, at())
    except Exception as error:
        # An answer we did not expect, a row that cannot be drawn: retry it later (it
        # fails after MAX_ATTEMPTS), never hold the claim, never stop the batch.
        log.exception("outbox %s: unexpected failure", claim.id)
        with transaction(sessions) as session:
            _retry_later(session, claim, f"unexpected: {type(error).__name__}", at())
        return False


def _draw(session: Session, claim: _Claim, now: datetime) -> tuple[str, list | None] | None:
    """What to post: the row's own text, or a follow-up drawn from its resolution now.

    None when there is nothing to send: the follow-up is no longer wanted (the row is
    cancelled, with the reason) or no longer this process's to send.
    """
    if claim.purpose != OutboxPurpose.FOLLOWUP:
        return claim.text, claim.blocks
    person, resolution_id = _followup_of(claim)
    owed = followups.lock_owed(session, resolution_id, person=person)  # first: the lock order
    mine = session.execute(
        select(SlackOutbox.id)
        .where(SlackOutbox.id == claim.id, SlackOutbox.claim_token == claim.token,
               SlackOutbox.status == OutboxStatus.PENDING)
        .with_for_update()
    ).first()
    if mine is None:
        log.info("outbox %s: follow-up cancelled or taken over before sending; leaving it", claim.id)
        return None
    if isinstance(owed, str):
        log.info("outbox %s: follow-up not sent: %s", claim.id, owed)
        session.execute(
            update(SlackOutbox).where(SlackOutbox.id == claim.id)
            .values(status=OutboxStatus.CANCELLED, cancel_reason=owed, claimed_until=None)
        )
        return None
    if person:
        return views.person_followup_dm(owed.ticket, owed.resolution, now=now)
    return views.followup_dm(owed.ticket, owed.action, now=now)


def _followup_of(claim: _Claim) -> tuple[bool, int]:
    """Whose resolution a follow-up asks about: (a person's?, its id)."""
    if claim.person_resolution_id is not None:
        return True, claim.person_resolution_id
    if claim.resolution_id is None:
        raise ValueError(f"outbox {claim.id} is a follow-up of no resolution")
    return False, claim.resolution_id


def _post(client: WebClient, claim: _Claim, text: str, blocks: list | None,
          metadata: dict | None = None) -> _Posted | str:
    """Post the row (or find that an earlier attempt did); returns the post, or why
    Slack will not take it (a refusal that trying again cannot fix)."""
    # A DM goes to the user's id: Slack posts it in the app's DM with them (opening it
    # if need be) and answers with that DM's channel id. No conversations.open per DM;
    # only a retry, which must read the DM to look for an earlier attempt's post, asks
    # for the DM's id.
    channel = claim.recipient or claim.channel
    thread_ts = None if claim.recipient else claim.thread_ts
    if channel is None:
        return "the row names neither a channel nor a recipient"
    if claim.attempts > 1:
        where = _dm(client, channel) if claim.recipient else channel
        found = _find_post(client, where, thread_ts, claim) if where else None
        if found is None and claim.fallback_user:
            fallback_dm = _dm(client, claim.fallback_user)
            found = _find_post(client, fallback_dm, None, claim) if fallback_dm else None
        if found:
            log.info("outbox %s was already posted; recording it", claim.id)
            return found
    metadata = metadata or _metadata(claim)
    posted = safe_call(client, "chat.postMessage", raise_transient=True, channel=channel,
                       text=text, blocks=blocks, thread_ts=thread_ts, metadata=metadata,
                       unfurl_links=False, unfurl_media=False)
    if posted is not None:
        return _Posted(posted["channel"], posted["ts"], thread_ts)
    if not claim.fallback_user:
        return "Slack refused the DM" if claim.recipient else "Slack refused the post"
    # The bot may not post there (a slash command in a channel it is not in): answer
    # the requester privately instead (by user id, as any DM).
    posted = safe_call(client, "chat.postMessage", raise_transient=True, channel=claim.fallback_user,
                       text=text, blocks=blocks, metadata=metadata)
    return _Posted(posted["channel"], posted["ts"], None) if posted else "Slack refused the post"


def _metadata(claim: _Claim, carried: list[int] | None = None) -> dict:
    """The message's metadata: the row that posts it (and, for a follow-up DM that
    carries several, every follow-up row it carries: `outbox_ids`)."""
    if claim.purpose == OutboxPurpose.FOLLOWUP:
        payload: dict = {"outbox_id": claim.id, "resolution_id": claim.resolution_id}
        if claim.person_resolution_id is not None:
            payload["person_resolution_id"] = claim.person_resolution_id
        if carried and carried != [claim.id]:
            payload["outbox_ids"] = carried
        return {"event_type": FOLLOWUP_EVENT, "event_payload": payload}
    return {"event_type": METADATA_EVENT, "event_payload": {"outbox_id": claim.id}}


def _dm(client: WebClient, user: str) -> str | None:
    opened = safe_call(client, "conversations.open", raise_transient=True, users=user)
    return opened["channel"]["id"] if opened is not None else None


def _find_post(client: WebClient, channel: str, thread_ts: str | None, claim: _Claim) -> _Posted | None:
    if thread_ts:
        found = safe_call(client, "conversations.replies", raise_transient=True, channel=channel,
                          ts=thread_ts, include_all_metadata=True, limit=RECONCILE_LOOKBACK)
    else:
        found = safe_call(client, "conversations.history", raise_transient=True, channel=channel,
                          include_all_metadata=True, limit=RECONCILE_LOOKBACK)
    messages: list[dict] = found.get("messages", []) if found is not None else []
    for message in messages:
        if _names(message, claim):
            return _Posted(channel, message["ts"], thread_ts)
    return None


def _names(message: dict, claim: _Claim) -> bool:
    """Whether a message is this row's, by its metadata."""
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    if metadata.get("event_type") not in (METADATA_EVENT, FOLLOWUP_EVENT):
        return False
    if isinstance(payload.get("outbox_ids"), list) and claim.id in payload["outbox_ids"]:
        return True  # a follow-up DM carrying several (SURVEY_COOLDOWN)
    if "outbox_id" in payload:
        return payload["outbox_id"] == claim.id
    # A follow-up sent before follow-ups moved into the outbox (migration 0005) names
    # only its resolution; one sent before this row was written (for an earlier,
    # rolled-back resolution of the ticket) is not this row's.
    return (claim.resolution_id is not None and payload.get("resolution_id") == claim.resolution_id
            and float(message.get("ts") or 0) >= claim.created_at.timestamp())


def _record(session: Session, claim: _Claim, posted: _Posted | str, now: datetime) -> bool:
    if isinstance(posted, str):
        log.warning("outbox %s not sent: %s", claim.id, posted)
        values: dict = {"status": OutboxStatus.FAILED, "claimed_until": None, "last_error": posted}
    else:
        values = {"status": OutboxStatus.SENT, "claimed_until": None, "sent_at": now,
                  "sent_channel": posted.channel, "message_ts": posted.ts, "last_error": ""}
    done = rowcount(session.execute(
        update(SlackOutbox)
        .where(SlackOutbox.id == claim.id, SlackOutbox.claim_token == claim.token)
        .values(**values)
    ))
    if not done:
        log.warning("outbox %s: claim lost before recording", claim.id)
        return False
    if isinstance(posted, str):
        _given_up(session, claim)
        return False
    if claim.purpose == OutboxPurpose.TICKET_OUTCOME and claim.ticket_id:
        tickets.attach_message(session, claim.ticket_id, channel_id=posted.channel,
                               message_ts=posted.ts, thread_ts=posted.thread_ts or posted.ts)
    elif claim.purpose == OutboxPurpose.FOLLOWUP:
        person, resolution_id = _followup_of(claim)
        followups.record_sent(session, resolution_id, now=now, person=person)
    return True


def _retry_later(session: Session, claim: _Claim, error: str, now: datetime) -> None:
    attempts = claim.attempts
    if attempts >= MAX_ATTEMPTS and claim.purpose == OutboxPurpose.FOLLOWUP:
        person, resolution_id = _followup_of(claim)
        followups.lock(session, resolution_id, person=person)  # giving up writes it: the lock order
    if attempts >= MAX_ATTEMPTS:
        log.error("outbox %s: giving up after %d attempts (%s)", claim.id, attempts, error)
        values = {"status": OutboxStatus.FAILED, "claimed_until": None, "last_error": error[:500]}
    else:
        backoff = min(FIRST_BACKOFF * 2 ** (attempts - 1), MAX_BACKOFF)
        values = {"claimed_until": None, "next_attempt_at": now + backoff, "last_error": error[:500]}
    done = rowcount(session.execute(
        update(SlackOutbox)
        .where(SlackOutbox.id == claim.id, SlackOutbox.claim_token == claim.token)
        .values(**values)
    ))
    if done and attempts >= MAX_ATTEMPTS:
        _given_up(session, claim)


def _given_up(session: Session, claim: _Claim) -> None:
    if claim.purpose == OutboxPurpose.FOLLOWUP:
        person, resolution_id = _followup_of(claim)
        followups.record_given_up(session, resolution_id, person=person)


def _hold(session: Session, claim: _Claim, reason: str) -> None:
    """Keep the row owed until the token works: no attempt spent (Slack refused the
    call, so nothing was posted; earlier attempts still count for the reconcile), the
    due time kept, the reason kept."""
    log.warning("outbox %s held: Slack refused the token (%s)", claim.id, reason)
    session.execute(
        update(SlackOutbox)
        .where(SlackOutbox.id == claim.id, SlackOutbox.claim_token == claim.token)
        .values(status=OutboxStatus.HELD, claimed_until=None, attempts=claim.attempts - 1,
                last_error=reason[:500])
    )


def release_held(
    sessions: sessionmaker[Session], client: WebClient, *, ttl: timedelta = timedelta(minutes=2),
    now: datetime | None = None, surveys: Surveys | None = None,
) -> int:
    """While rows are held, find out whether Slack takes the token again; if it does,
    make them pending again (due at their old due time).

    At most one `auth.test` and one post per call, however many rows are held: the
    oldest held row is retried first, and only once it gets through (or fails for a
    reason of its own) are the others released. `auth.test` needs no scope, so it
    cannot tell a missing scope was granted; the trial row can.

    Args:
        sessions: the session factory; each step is a transaction of its own.
        client: the Slack client.
        ttl: the trial row's claim.
        now: the clock reading to count from (the tests move it).

    Returns:
        How many were sent: the trial row, if it went out.
    """
    with transaction(sessions) as session:
        held = session.execute(
            select(SlackOutbox.id, SlackOutbox.last_error).where(SlackOutbox.status == OutboxStatus.HELD)
            .order_by(SlackOutbox.id).limit(1)
        ).first()
    if held is None:
        return 0
    try:
        works, why = safe_call(client, "auth.test", raise_transient=True) is not None, "refused"
    except SlackUnavailable as error:
        works, why = False, error.error
    if not works:
        log.error("Slack messages held: auth.test says the bot token still does not work (%s; "
                  "held for %s); fix SLACK_BOT_TOKEN or reinstall the app", why, held.last_error)
        return 0
    trial = held.id
    _release(sessions, [trial])
    sent = deliver(sessions, client, [trial], ttl=ttl, now=now, surveys=surveys)
    with transaction(sessions) as session:
        if session.scalar(select(SlackOutbox.status).where(SlackOutbox.id == trial)) == OutboxStatus.HELD:
            log.error("Slack messages held: the token works but Slack still refuses outbox %s "
                      "(%s); fix the app's scopes or reinstall it", trial, held.last_error)
            return sent
    released = _release(sessions, None)
    log.warning("Slack takes the bot token again: %d held messages are owed again", released + 1)
    return sent


def _release(sessions: sessionmaker[Session], ids: list[int] | None) -> int:
    with transaction(sessions) as session:
        query = update(SlackOutbox).where(SlackOutbox.status == OutboxStatus.HELD)
        if ids is not None:
            query = query.where(SlackOutbox.id.in_(ids))
        return rowcount(session.execute(query.values(status=OutboxStatus.PENDING)))
