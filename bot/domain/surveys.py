"""Survey fatigue and NPS: what a person's follow-up DM carries.

A person gets at most one follow-up DM per SURVEY_COOLDOWN. A follow-up that falls due
while their last DM is younger than that is folded into it: the DM is redrawn with the
new resolution added (its own Yes/No and stars), so every answer is still checked and
no second DM arrives. The follow-up's outbox row then records that DM
(`sent_channel`/`message_ts`) and the row that posted it (`folded_into`); the DM's rows
are how a click on it redraws all of it. Follow-ups of one person due in the same
pass go out as one DM too.

The NPS question rides on a new follow-up DM when the person was not asked within
NPS_INTERVAL; each ask is an `nps_answers` row keyed by the DM, its score set by the
person's click (a second click changes it).

Two senders never fold or post for one person at the same time: the sender takes a
per-person lock (PostgreSQL advisory, transaction-scoped; SQLite has one writer) after
the resolutions' locks and before it reads the person's last DM.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from bot.core.errors import InvalidInput, NotAuthorized
from models import (
    ActionHistory,
    NpsAnswer,
    OutboxPurpose,
    OutboxStatus,
    PersonResolution,
    SlackOutbox,
    Ticket,
    TicketResolution,
    rowcount,
)

# pg_advisory_xact_lock(int, int) class: the two-key space never meets the one-key
# locks other jobs take.
PERSON_LOCK_CLASS = 18012

# NPS: 9-10 promote, 0-6 detract, 7-8 are passive.
NPS_PROMOTER = 9
NPS_DETRACTOR = 6
NPS_QUESTION = "How likely are you to recommend the helpdesk to a colleague?"
NOT_YOURS = "Only the person this message was sent to can answer it."
NPS_GONE = "That question is not open any more. Nothing was recorded."


@dataclass(frozen=True)
class Surveys:
    """SURVEY_COOLDOWN and NPS_INTERVAL; None is off."""

    cooldown: timedelta | None = None
    nps_interval: timedelta | None = None

    @classmethod
    def of(cls, settings: Any) -> Surveys:
        return cls(cooldown=settings.survey_cooldown, nps_interval=settings.nps_interval)


@dataclass(frozen=True)
class OpenDm:
    """A person's follow-up DM still inside the cooldown."""

    head_id: int  # the outbox row that posted it
    channel: str
    ts: str


@dataclass(frozen=True)
class Item:
    """One resolution a follow-up DM asks about, as it stands."""

    ticket: Ticket
    action: ActionHistory | None
    resolution: TicketResolution | PersonResolution
    person: bool


def lock_people(session: Session, user_ids: list[str]) -> None:
    """Take each person's survey lock until the transaction ends (in key order: no two
    senders wait on each other in a circle). A no-op on SQLite, which has one writer."""
    if session.get_bind().dialect.name != "postgresql" or not user_ids:
        return
    # One statement for the group: unnest yields the sorted keys in order, and the
    # locks are taken one by one in that order (every sender sorts the same way).
    keys = sorted({_key(user) for user in user_ids})
    session.execute(text("SELECT count(pg_advisory_xact_lock(:cls, k)) "
                         "FROM unnest(CAST(:keys AS integer[])) AS k"),
                    {"cls": PERSON_LOCK_CLASS, "keys": keys})


def _key(user: str) -> int:
    return zlib.crc32(user.encode()) - 2**31  # an int4


def open_dms(session: Session, user_ids: list[str], *, now: datetime,
             cooldown: timedelta) -> dict[str, OpenDm]:
    """Each person's last follow-up DM if it went out less than `cooldown` ago, in one
    statement, by person (people without one are left out)."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(SlackOutbox.recipient, SlackOutbox.id, SlackOutbox.sent_channel, SlackOutbox.message_ts)
        .where(SlackOutbox.recipient.in_(sorted(set(user_ids))),
               SlackOutbox.purpose == OutboxPurpose.FOLLOWUP,
               SlackOutbox.folded_into.is_(None), SlackOutbox.status == OutboxStatus.SENT,
               SlackOutbox.sent_at > now - cooldown)
        .order_by(SlackOutbox.recipient, SlackOutbox.sent_at.desc())
    ).all()
    found: dict[str, OpenDm | None] = {}
    for row in rows:
        if row.recipient not in found:  # the latest; none if it was never posted
            found[row.recipient] = (OpenDm(row.id, row.sent_channel, row.message_ts)
                                    if row.sent_channel and row.message_ts else None)
    return {user: dm for user, dm in found.items() if dm is not None}


def dm_rows(session: Session, *, channel: str, ts: str) -> list[SlackOutbox]:
    """The follow-up rows a DM carries (the one that posted it first), or [] when the
    message is no follow-up DM."""
    return list(session.scalars(
        select(SlackOutbox)
        .where(SlackOutbox.message_ts == ts, SlackOutbox.sent_channel == channel,
               SlackOutbox.purpose == OutboxPurpose.FOLLOWUP, SlackOutbox.status == OutboxStatus.SENT)
        .order_by(SlackOutbox.folded_into.is_not(None), SlackOutbox.id)
    ))


def items_of(session: Session, rows: list[SlackOutbox]) -> list[Item]:
    """What each of a DM's rows asks about, as it stands now (in the rows' order)."""
    items = []
    for row in rows:
        person = row.person_resolution_id is not None
        resolution = (session.get(PersonResolution, row.person_resolution_id) if person
                      else session.get(TicketResolution, row.resolution_id))
        if resolution is None:
            continue
        ticket = session.get(Ticket, resolution.ticket_id)
        action = session.get(ActionHistory, resolution.action_id) if resolution.action_id else None
        if ticket is not None:
            items.append(Item(ticket, action, resolution, person))
    return items


def nps_due_many(session: Session, user_ids: list[str], *, now: datetime,
                 interval: timedelta | None) -> set[str]:
    """Who of these people may be asked NPS now: asked never, or not within `interval`
    (one statement)."""
    if interval is None or not user_ids:
        return set()
    people = sorted(set(user_ids))
    last = dict(session.execute(
        select(NpsAnswer.user_id, func.max(NpsAnswer.asked_at))
        .where(NpsAnswer.user_id.in_(people)).group_by(NpsAnswer.user_id)
    ).all())
    return {user for user in people if last.get(user) is None or last[user] <= now - interval}


def record_asked_many(session: Session, asked: list[tuple[int, str]], *, now: datetime) -> None:
    """The DMs (outbox id of each, its person) asked the person NPS; two statements."""
    if not asked:
        return
    known = set(session.scalars(
        select(NpsAnswer.outbox_id).where(NpsAnswer.outbox_id.in_([outbox_id for outbox_id, _ in asked]))))
    new = [{"outbox_id": outbox_id, "user_id": user, "asked_at": now}
           for outbox_id, user in dict(asked).items() if outbox_id not in known]
    if new:
        session.execute(insert(NpsAnswer), new)


def nps_of(session: Session, outbox_id: int) -> NpsAnswer | None:
    """The NPS question a DM carries (its head row's id), if it asked one."""
    return session.scalars(select(NpsAnswer).where(NpsAnswer.outbox_id == outbox_id)).one_or_none()


def record_nps(session: Session, *, outbox_id: int, user_id: str, score: int, now: datetime) -> NpsAnswer:
    """The person's answer to the NPS question of DM `outbox_id` (flushed); a second
    answer replaces the first.

    Raises:
        InvalidInput: the score is not 0-10, or the DM asked no such question.
        NotAuthorized: the clicker is not the person the DM was sent to.
    """
    if not 0 <= score <= 10:
        raise InvalidInput(NPS_GONE)
    asked = session.scalars(
        select(NpsAnswer).where(NpsAnswer.outbox_id == outbox_id).with_for_update()
    ).one_or_none()
    if asked is None:
        raise InvalidInput(NPS_GONE)
    if asked.user_id != user_id:
        raise NotAuthorized(NOT_YOURS)
    rowcount(session.execute(
        update(NpsAnswer).where(NpsAnswer.id == asked.id)
        .values(score=score, answered_at=now).execution_options(synchronize_session=False)
    ))
    session.refresh(asked)
    return asked


@dataclass(frozen=True)
class Nps:
    """NPS over a window: % promoters (9-10) minus % detractors (0-6), and how many answered."""

    answered: int = 0
    promoters: int = 0
    detractors: int = 0

    @property
    def score(self) -> float | None:
        if not self.answered:
            return None
        return 100.0 * (self.promoters - self.detractors) / self.answered


__all__ = ["Item", "Nps", "OpenDm", "Surveys", "dm_rows", "items_of", "lock_people", "nps_due_many",
           "nps_of", "open_dms", "record_asked_many", "record_nps"]
