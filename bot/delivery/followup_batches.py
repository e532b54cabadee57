"""Follow-up DMs sent in groups: one transaction per group, not one per DM.

The outbox claims follow-ups like any row (`outbox.claim_due`); this sends the claimed
ones. A group's transaction locks its resolutions in one statement (in id order),
checks in one more that the rows are still this sender's, draws and posts each DM (to
the requester's user id: no `conversations.open`), then records every DM sent, every
follow-up no longer wanted and every `followup_sent_at` in a statement each, and commits
once. The exactly-once rules are those of `bot.domain.followups` and the outbox: an
answer or a rollback waits on the resolution's lock until the DM is recorded (or
cancels the row before the group locks it); a sender that dies after posting leaves the
row claimed, and whoever takes it over finds the DM by its metadata before posting.

A group holds its resolutions' locks while it posts, so it is bounded in time as well
as in size: past GROUP_BUDGET it posts no more, commits, and the rest go into the next
group; a group that finished within the budget lets the next one be twice as big (up to
GROUP_MAX). With Slack answering in a few ms a group is GROUP_MAX DMs; with a slow Slack
it is one or two, and a click waits for a DM about as long as it did one DM at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from slack_sdk import WebClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot import views
from bot.delivery import outbox
from bot.delivery.slack_client import SlackTokenRefused, SlackUnavailable
from bot.domain import followups
from models import OutboxStatus, SlackOutbox, transaction

log = logging.getLogger(__name__)

GROUP_FIRST = 10
GROUP_MAX = 100
GROUP_BUDGET = 0.5  # seconds a group may spend posting before it commits


def send_followups(sessions: sessionmaker[Session], client: WebClient, claims: Sequence[outbox._Claim],
                   *, ttl: timedelta, now: datetime) -> int:
    """Send claimed follow-ups in groups; returns how many were sent.

    Args:
        sessions: the session factory; each group is a transaction of its own.
        client: the Slack client.
        claims: follow-up rows claimed by this sender.
        ttl: how long a claim lasts (a claim past half of it is renewed before its group).
        now: the clock reading the batch counts from (the tests move it).
    """
    started = time.monotonic()

    def at() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    pending, sent, size = list(claims), 0, GROUP_FIRST
    while pending:
        group, pending = pending[:size], pending[size:]
        # As in claims.send_each: renewed once half the claim has passed; a row another
        # sender has taken over meanwhile is left to it.
        group = [c for c in group if c.until - at() > ttl / 2 or outbox._renew(sessions, c, at() + ttl)]
        if not group:
            continue
        done, left = _send_group(sessions, client, group, at)
        sent += done
        pending = left + pending
        size = max(1, len(group) - len(left)) if left else min(GROUP_MAX, size * 2)
    return sent


def _send_group(sessions: sessionmaker[Session], client: WebClient, group: list[outbox._Claim],
                at: Callable[[], datetime]) -> tuple[int, list[outbox._Claim]]:
    """One group's transaction; returns (sent, the claims it had no time for)."""
    began = time.monotonic()
    handled: list[outbox._Claim] = []
    posted: list[tuple[outbox._Claim, outbox._Posted]] = []
    try:
        with transaction(sessions) as session:
            owed = _lock_owed(session, group)  # first: the lock order
            mine = _still_mine(session, group)
            cancelled: list[tuple[outbox._Claim, str]] = []
            sent_for: set[tuple[bool, int]] = set()
            for claim in group:
                if handled and time.monotonic() - began > GROUP_BUDGET:
                    break
                handled.append(claim)
                if claim.id not in mine:
                    log.info("outbox %s: follow-up cancelled or taken over before sending; leaving it",
                             claim.id)
                    continue
                wanted = owed[claim.id]
                if outbox._followup_of(claim) in sent_for:  # two rows owed for one resolution
                    wanted = followups.ALREADY_SENT
                if isinstance(wanted, str):
                    log.info("outbox %s: follow-up not sent: %s", claim.id, wanted)
                    cancelled.append((claim, wanted))
                    continue
                result = _post_one(session, client, claim, wanted, at)
                if result is not None:
                    posted.append((claim, result))
                    sent_for.add(outbox._followup_of(claim))
            _record(session, posted, cancelled, at())
    except Exception as error:
        # The group's transaction is lost. DMs it posted stay claimed: whoever takes them
        # over once the claim expires finds them in the DM. The others are retried later.
        log.exception("outbox: a group of %d follow-ups failed", len(group))
        done = {claim.id for claim, _ in posted}
        for claim in handled:
            if claim.id not in done:
                with transaction(sessions) as session:
                    outbox._retry_later(session, claim, f"unexpected: {type(error).__name__}", at())
        return 0, []
    return len(posted), group[len(handled):]


def _lock_owed(session: Session, group: list[outbox._Claim]) -> dict[int, followups.Owed | str]:
    """What each claim's DM is drawn from (or why it is not wanted), by outbox id; the
    resolutions stay locked until the group's transaction ends."""
    by_kind: dict[bool, dict[int, list[int]]] = {False: {}, True: {}}
    for claim in group:
        person, resolution_id = outbox._followup_of(claim)
        by_kind[person].setdefault(resolution_id, []).append(claim.id)
    owed: dict[int, followups.Owed | str] = {}
    for person, ids in by_kind.items():
        if ids:
            found = followups.lock_owed_many(session, sorted(ids), person=person)
            owed.update({row: wanted for rid, wanted in found.items() for row in ids[rid]})
    return owed


def _still_mine(session: Session, group: list[outbox._Claim]) -> set[int]:
    tokens = {claim.id: claim.token for claim in group}
    rows = session.execute(
        select(SlackOutbox.id, SlackOutbox.claim_token)
        .where(SlackOutbox.id.in_(list(tokens)), SlackOutbox.status == OutboxStatus.PENDING)
        .order_by(SlackOutbox.id)
        .with_for_update()
    ).all()
    return {row_id for row_id, token in rows if token == tokens[row_id]}


def _post_one(session: Session, client: WebClient, claim: outbox._Claim, wanted: followups.Owed,
              at: Callable[[], datetime]) -> outbox._Posted | None:
    """Draw and post one DM; None when it was not sent (what happened is written)."""
    try:
        if claim.person_resolution_id is not None:
            text, blocks = views.person_followup_dm(wanted.ticket, wanted.resolution, now=at())
        else:
            text, blocks = views.followup_dm(wanted.ticket, wanted.action, now=at())
        result = outbox._post(client, claim, text, blocks)
    except SlackTokenRefused as error:
        outbox._hold(session, claim, f"{error.method}: {error.error}")
        return None
    except SlackUnavailable as error:
        outbox._retry_later(session, claim, f"{error.method}: {error.error}", at())
        return None
    except Exception as error:
        # A DM that cannot be drawn, an answer we did not expect: this one is retried
        # later (it fails after MAX_ATTEMPTS); the group goes on.
        log.exception("outbox %s: unexpected failure", claim.id)
        outbox._retry_later(session, claim, f"unexpected: {type(error).__name__}", at())
        return None
    if isinstance(result, str):  # Slack will not take it: failed, given up
        outbox._record(session, claim, result, at())
        return None
    return result


def _record(session: Session, posted: list[tuple[outbox._Claim, outbox._Posted]],
            cancelled: list[tuple[outbox._Claim, str]], now: datetime) -> None:
    """Every DM sent and every follow-up no longer wanted, a statement each (the rows
    are locked by this transaction and checked to be this sender's)."""
    if posted:
        session.execute(update(SlackOutbox), [
            {"id": claim.id, "status": OutboxStatus.SENT, "claimed_until": None, "sent_at": now,
             "sent_channel": sent.channel, "message_ts": sent.ts, "last_error": ""}
            for claim, sent in posted])
        for person in (False, True):
            ids = [rid for claim, _ in posted
                   for is_person, rid in [outbox._followup_of(claim)] if is_person == person]
            followups.record_sent_many(session, ids, now=now, person=person)
    if cancelled:
        session.execute(update(SlackOutbox), [
            {"id": claim.id, "status": OutboxStatus.CANCELLED, "cancel_reason": reason,
             "claimed_until": None}
            for claim, reason in cancelled])
