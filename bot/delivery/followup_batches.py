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
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_sdk import WebClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot import views
from bot.delivery import outbox
from bot.delivery.slack_client import SlackTokenRefused, SlackUnavailable, safe_call
from bot.domain import followups
from bot.domain import surveys as surveys_domain
from bot.domain.surveys import Surveys
from models import OutboxStatus, SlackOutbox, transaction

log = logging.getLogger(__name__)

GROUP_FIRST = 10
GROUP_MAX = 100
GROUP_BUDGET = 0.5  # seconds a group may spend posting before it commits


def send_followups(sessions: sessionmaker[Session], client: WebClient, claims: Sequence[outbox._Claim],
                   *, ttl: timedelta, now: datetime, surveys: Surveys | None = None) -> int:
    """Send claimed follow-ups in groups; returns how many were sent.

    Args:
        sessions: the session factory; each group is a transaction of its own.
        client: the Slack client.
        claims: follow-up rows claimed by this sender.
        ttl: how long a claim lasts (a claim past half of it is renewed before its group).
        now: the clock reading the batch counts from (the tests move it).
        surveys: SURVEY_COOLDOWN (fold a person's follow-ups into one DM) and
            NPS_INTERVAL; None: one DM per follow-up, no NPS question.
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
        done, left, folded = _send_group(sessions, client, group, at, surveys)
        for dm in folded:
            _redraw_folded(sessions, client, dm, at())
        sent += done
        pending = left + pending
        size = max(1, len(group) - len(left)) if left else min(GROUP_MAX, size * 2)
    return sent


# A new DM carries at most this many follow-ups (7 blocks each, with the NPS question
# well within Slack's 50); more in one pass go out as another DM.
BUNDLE_MAX = 5

_Sent = tuple[outbox._Claim, outbox._Posted, int | None]  # (claim, the DM, the row it folded into)


def _send_group(sessions: sessionmaker[Session], client: WebClient, group: list[outbox._Claim],
                at: Callable[[], datetime], surveys: Surveys | None,
                ) -> tuple[int, list[outbox._Claim], list[surveys_domain.OpenDm]]:
    """One group's transaction; returns (sent, the claims it had no time for, the DMs it
    folded follow-ups into)."""
    began = time.monotonic()
    handled: list[outbox._Claim] = []
    left: list[outbox._Claim] = []
    posted: list[_Sent] = []
    asked: list[tuple[int, str]] = []
    folded: list[surveys_domain.OpenDm] = []
    fold = surveys is not None and surveys.cooldown is not None
    try:
        with transaction(sessions) as session:
            owed = _lock_owed(session, group)  # first: the lock order
            mine = _still_mine(session, group)
            cancelled: list[tuple[outbox._Claim, str]] = []
            sent_for: set[tuple[bool, int]] = set()
            bundles: dict[object, list[tuple[outbox._Claim, followups.Owed]]] = {}
            for claim in group:
                if claim.id not in mine:
                    handled.append(claim)
                    log.info("outbox %s: follow-up cancelled or taken over before sending; leaving it",
                             claim.id)
                    continue
                wanted = owed[claim.id]
                if outbox._followup_of(claim) in sent_for:  # two rows owed for one resolution
                    wanted = followups.ALREADY_SENT
                if isinstance(wanted, str):
                    handled.append(claim)
                    log.info("outbox %s: follow-up not sent: %s", claim.id, wanted)
                    cancelled.append((claim, wanted))
                    continue
                sent_for.add(outbox._followup_of(claim))
                bundles.setdefault(_bundle_key(claim, bundles, fold), []).append((claim, wanted))
            recipients = [c.recipient for b in bundles.values() for c, _ in b if c.recipient]
            if fold:
                # Last in the lock order: two senders never fold or post for one person at once.
                surveys_domain.lock_people(session, recipients)
            people = _People.read(session, recipients, surveys, at())
            for bundle in bundles.values():
                if posted and time.monotonic() - began > GROUP_BUDGET:
                    left += [claim for claim, _ in bundle]
                    continue
                handled += [claim for claim, _ in bundle]
                done, into = _send_bundle(session, client, bundle, at, surveys, people, asked)
                posted += done
                if into is not None:
                    folded.append(into)
            _record(session, posted, cancelled, at(), asked)
    except Exception as error:
        # The group's transaction is lost. DMs it posted stay claimed: whoever takes them
        # over once the claim expires finds them in the DM. The others are retried later.
        log.exception("outbox: a group of %d follow-ups failed", len(group))
        done_ids = {claim.id for claim, _, _ in posted}
        for claim in handled:
            if claim.id not in done_ids:
                with transaction(sessions) as session:
                    outbox._retry_later(session, claim, f"unexpected: {type(error).__name__}", at())
        return 0, [], []
    return len(posted), left, folded


@dataclass(frozen=True)
class _People:
    """What the group's DMs need to know of their people, read once for the group (after
    their locks): each one's DM of the cooldown, and who may be asked NPS."""

    open_dms: dict[str, surveys_domain.OpenDm]
    nps_due: set[str]

    @classmethod
    def read(cls, session: Session, recipients: list[str], surveys: Surveys | None,
             now: datetime) -> _People:
        if surveys is None or not recipients:
            return cls({}, set())
        open_dms = (surveys_domain.open_dms(session, recipients, now=now, cooldown=surveys.cooldown)
                    if surveys.cooldown is not None else {})
        return cls(open_dms, surveys_domain.nps_due_many(session, recipients, now=now,
                                                         interval=surveys.nps_interval))


def _bundle_key(claim: outbox._Claim, bundles: dict, fold: bool) -> object:
    """Which DM a follow-up goes out in: its own (no cooldown), else its person's (a new
    one past BUNDLE_MAX)."""
    if not fold or not claim.recipient:
        return claim.id
    n = 0
    while len(bundles.get((claim.recipient, n), ())) >= BUNDLE_MAX:
        n += 1
    return (claim.recipient, n)


def _send_bundle(session: Session, client: WebClient, bundle: list[tuple[outbox._Claim, followups.Owed]],
                 at: Callable[[], datetime], surveys: Surveys | None, people: _People,
                 asked: list[tuple[int, str]],
                 ) -> tuple[list[_Sent], surveys_domain.OpenDm | None]:
    """One person's follow-ups of this group: folded into the DM they got within the
    cooldown, else one new DM. Returns what was sent, and the DM folded into (if so)."""
    claims = [claim for claim, _ in bundle]
    items = [surveys_domain.Item(owed.ticket, owed.action, owed.resolution,
                                 person=claim.person_resolution_id is not None)
             for claim, owed in bundle]
    now = at()
    try:
        if surveys is not None and surveys.cooldown is not None and claims[0].recipient:
            target = _fold(session, client, claims, items, people, now)
            if target is not None:
                where = outbox._Posted(target.channel, target.ts, None)
                return [(c, where, None if c.id == target.head_id else target.head_id)
                        for c in claims], target
        return _post_new(session, client, claims, items, people, now, asked), None
    except SlackTokenRefused as error:
        for claim in claims:
            outbox._hold(session, claim, f"{error.method}: {error.error}")
    except SlackUnavailable as error:
        for claim in claims:
            outbox._retry_later(session, claim, f"{error.method}: {error.error}", at())
    except Exception as error:
        # A DM that cannot be drawn, an answer we did not expect: these are retried
        # later (they fail after MAX_ATTEMPTS); the group goes on.
        log.exception("outbox %s: unexpected failure", [c.id for c in claims])
        for claim in claims:
            outbox._retry_later(session, claim, f"unexpected: {type(error).__name__}", at())
    return [], None


def _post_new(session: Session, client: WebClient, claims: list[outbox._Claim],
              items: list[surveys_domain.Item], people: _People, now: datetime,
              asked: list[tuple[int, str]]) -> list[_Sent]:
    """A new DM with the follow-ups (and the NPS question when it is the person's turn)."""
    head = claims[0]
    ask = head.recipient is not None and head.recipient in people.nps_due
    nps_dm = head.id if ask else None
    text, blocks = _draw(items, nps_dm, now)
    result = outbox._post(client, head, text, blocks, outbox._metadata(head, [c.id for c in claims]))
    if isinstance(result, str):  # Slack will not take it: failed, given up
        for claim in claims:
            outbox._record(session, claim, result, now)
        return []
    if nps_dm is not None and head.recipient:
        asked.append((nps_dm, head.recipient))
    return [(head, result, None)] + [(claim, result, head.id) for claim in claims[1:]]


def _draw(items: list[surveys_domain.Item], nps_dm: int | None, now: datetime) -> tuple[str, list]:
    """A new DM: one follow-up alone is today's DM, drawn as before."""
    if len(items) == 1 and nps_dm is None:
        item = items[0]
        if item.person:
            return views.person_followup_dm(item.ticket, item.resolution, now=now)
        return views.followup_dm(item.ticket, item.action, now=now)
    return views.followup_digest(items, nps_dm=nps_dm, now=now)


def _fold(session: Session, client: WebClient, claims: list[outbox._Claim],
          items: list[surveys_domain.Item], people: _People, now: datetime,
          ) -> surveys_domain.OpenDm | None:
    """Redraw the person's DM of the cooldown with these follow-ups added; the DM, or
    None when there is none to fold into (none within the cooldown, full, or gone)."""
    recipient = claims[0].recipient or ""
    target, carried = None, [c.id for c in claims]
    if any(claim.attempts > 1 for claim in claims):
        # An earlier attempt may have posted or folded these and died before recording it.
        target, earlier = _find_earlier(client, recipient, claims)
        carried = sorted(set(carried) | set(earlier))
    if target is None:
        target = people.open_dms.get(recipient)
    if target is None:
        return None
    ids = {claim.id for claim in claims}
    rows = [row for row in surveys_domain.dm_rows(session, channel=target.channel, ts=target.ts)
            if row.id not in ids]
    everything = surveys_domain.items_of(session, rows) + items
    nps = surveys_domain.nps_of(session, target.head_id)
    nps_dm = target.head_id if nps is not None else None
    if not views.fits(everything, nps_dm=nps_dm, now=now):
        return None
    text, blocks = views.followup_digest(everything, nps_dm=nps_dm,
                                         nps_score=nps.score if nps else None, now=now)
    head = next((c for c in claims if c.id == target.head_id), claims[0])
    metadata = outbox._metadata(head, sorted({row.id for row in rows} | set(carried)))
    metadata["event_payload"]["outbox_id"] = target.head_id
    updated = safe_call(client, "chat.update", raise_transient=True, channel=target.channel,
                        ts=target.ts, text=text, blocks=blocks, metadata=metadata)
    return target if updated is not None else None  # gone (deleted): a new DM instead


def _find_earlier(client: WebClient, recipient: str, claims: list[outbox._Claim],
                  ) -> tuple[surveys_domain.OpenDm | None, list[int]]:
    """A DM an earlier attempt posted (or folded) these follow-ups into, found by its
    metadata; and every row that DM names."""
    channel = outbox._dm(client, recipient)
    if channel is None:
        return None, []
    found = safe_call(client, "conversations.history", raise_transient=True, channel=channel,
                      include_all_metadata=True, limit=outbox.RECONCILE_LOOKBACK)
    ids = {claim.id for claim in claims}
    messages: list[dict] = found.get("messages", []) if found is not None else []
    for message in messages:
        metadata = message.get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        head = payload.get("outbox_id")
        if metadata.get("event_type") != outbox.FOLLOWUP_EVENT or not isinstance(head, int):
            continue
        named = [i for i in payload.get("outbox_ids") or [payload["outbox_id"]] if isinstance(i, int)]
        if ids & set(named):
            return surveys_domain.OpenDm(payload["outbox_id"], channel, message["ts"]), named
    return None, []


def _redraw_folded(sessions: sessionmaker[Session], client: WebClient, dm: surveys_domain.OpenDm,
                   now: datetime) -> None:
    """Draw a DM folded into once more from what is committed: a click's redraw that
    read the DM's rows before the fold was recorded would have left the new follow-up
    out."""
    try:
        with transaction(sessions) as session:
            drawn = redraw(session, channel=dm.channel, ts=dm.ts, now=now)
        if drawn is not None:
            safe_call(client, "chat.update", channel=dm.channel, ts=dm.ts, text=drawn[0], blocks=drawn[1])
    except Exception:
        log.exception("outbox: redrawing the follow-up DM %s failed", dm.ts)


def redraw(session: Session, *, channel: str, ts: str, now: datetime) -> tuple[str, list] | None:
    """A follow-up DM as it stands (every follow-up it carries, the NPS question), or
    None when the message is no follow-up DM we recorded."""
    rows = surveys_domain.dm_rows(session, channel=channel, ts=ts)
    items = surveys_domain.items_of(session, rows)
    if not items:
        return None
    head = next((row.id for row in rows if row.folded_into is None), rows[0].folded_into)
    nps = surveys_domain.nps_of(session, head) if head is not None else None
    return views.followup_digest(items, nps_dm=head if nps is not None else None,
                                 nps_score=nps.score if nps else None, now=now)


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


def _record(session: Session, posted: list[_Sent], cancelled: list[tuple[outbox._Claim, str]],
            now: datetime, asked: list[tuple[int, str]]) -> None:
    """Every DM sent (or follow-up folded) and every follow-up no longer wanted, a
    statement each (the rows are locked by this transaction and checked to be this
    sender's), and the NPS questions asked."""
    if posted:
        session.execute(update(SlackOutbox), [
            {"id": claim.id, "status": OutboxStatus.SENT, "claimed_until": None, "sent_at": now,
             "sent_channel": sent.channel, "message_ts": sent.ts, "last_error": "",
             "folded_into": into}
            for claim, sent, into in posted])
        for person in (False, True):
            ids = [rid for claim, _, _ in posted
                   for is_person, rid in [outbox._followup_of(claim)] if is_person == person]
            followups.record_sent_many(session, ids, now=now, person=person)
    surveys_domain.record_asked_many(session, asked, now=now)
    if cancelled:
        session.execute(update(SlackOutbox), [
            {"id": claim.id, "status": OutboxStatus.CANCELLED, "cancel_reason": reason,
             "claimed_until": None}
            for claim, reason in cancelled])
