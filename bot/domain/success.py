"""Whether the bot's actions worked: per action type, per team, per confidence bin, a
14-day trend, and CSAT.

Each of the bot's actions (AGENT_ACTIONS) in the window ends in exactly one outcome:

- rolled back: an admin rolled the action back (whatever the requester answered);
- confirmed: the requester answered Yes;
- reopened: the requester answered No (or the resolution was reopened);
- unanswered: none of those yet.

An AUTO_RESOLVE is answered on its own resolution (`ticket_resolution.action_id`). An
ESCALATE, ASSIGN_TO_TEAM or REQUEST_CLARIFICATION resolves nothing itself: it is
answered by the resolutions of its ticket made at or after it, the bot's (unless rolled
back) or a person's, a Yes on any of them counting before a No. The team is the
ticket's assigned team. The calibration bins (0.1 wide) take the stated confidence of
autonomous acts; the confirmed share of a bin is confirmed / (confirmed + reopened).

Everything is counted in the database with conditional counts and GROUP BY, in three
statements (outcomes, trend, CSAT) of plain SQL for PostgreSQL and SQLite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from bot.domain.surveys import NPS_DETRACTOR, NPS_PROMOTER, Nps
from models import (
    AGENT_ACTIONS,
    ActionHistory,
    ActionType,
    NpsAnswer,
    PersonResolution,
    Ticket,
    TicketResolution,
)

UNASSIGNED = "Unassigned"
TREND_DAYS = 14
# Stars counted as satisfied for CSAT.
CSAT_MIN_STARS = 4
BINS = 10

CONFIRMED = "confirmed"
REOPENED = "reopened"
ROLLED_BACK = "rolled_back"
UNANSWERED = "unanswered"


@dataclass(frozen=True)
class Outcomes:
    """How one group of the bot's actions ended."""

    name: str
    actions: int = 0
    confirmed: int = 0
    reopened: int = 0
    rolled_back: int = 0
    unanswered: int = 0

    @property
    def answered(self) -> int:
        """Actions the requester said Yes or No to (rolled-back ones aside)."""
        return self.confirmed + self.reopened

    @property
    def success_rate(self) -> float | None:
        """Confirmed / answered; None when nobody answered (0% would read as "all failed")."""
        return None if not self.answered else self.confirmed / self.answered


@dataclass(frozen=True)
class ConfidenceBin:
    """Autonomous acts whose stated confidence was in [low, low + 0.1) (the last bin
    includes 1.0), against how often the requester confirmed them."""

    low: float
    acts: int
    answered: int
    confirmed: int
    # The mean stated confidence of the answered acts, beside the confirmed share.
    stated: float | None

    @property
    def confirmed_share(self) -> float | None:
        """Confirmed / answered, None when none was answered."""
        return None if not self.answered else self.confirmed / self.answered


@dataclass(frozen=True)
class TrendDay:
    """One 24-hour slot of the trend, by when the actions were taken."""

    start: datetime
    confirmed: int
    answered: int

    @property
    def success_rate(self) -> float | None:
        """Confirmed / answered; None for a day without answers."""
        return None if not self.answered else self.confirmed / self.answered


@dataclass(frozen=True)
class Csat:
    """The share of 4 and 5 star ratings, and how many ratings it is based on."""

    satisfied: int = 0
    ratings: int = 0

    @property
    def share(self) -> float | None:
        """Satisfied / ratings; None without ratings."""
        return None if not self.ratings else self.satisfied / self.ratings


@dataclass(frozen=True)
class SuccessStats:
    """Success of the bot's actions since `since`, the trend and CSAT."""

    since: datetime
    total: Outcomes
    by_action_type: tuple[Outcomes, ...]
    by_team: tuple[Outcomes, ...]
    calibration: tuple[ConfidenceBin, ...]
    # The last TREND_DAYS × 24 hours, oldest first, whatever the window.
    trend: tuple[TrendDay, ...]
    csat: Csat = Csat()
    people_csat: Csat = Csat()
    # NPS of the answers given in the window (the question rides on follow-up DMs).
    nps: Nps = Nps()


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    # COUNT skips the NULL a CASE without ELSE yields: 0, not NULL, on an empty set.
    return func.count(case((condition, 1)))


def _outcome(since: datetime) -> tuple[ColumnElement[str], Callable[..., Select]]:
    """The outcome of each bot action as a CASE, and what adds the joins it reads."""
    action = ActionHistory
    undone = aliased(ActionHistory, name="undone")
    # A person's verdicts per ticket: when the last Yes and the last No were given to a
    # resolution made in the window (anything answering an action in it is younger).
    people = (
        select(
            PersonResolution.ticket_id,
            func.max(case((PersonResolution.resolution_confirmed.is_(True),
                           PersonResolution.created_at))).label("yes_at"),
            func.max(case((_said_no(PersonResolution), PersonResolution.created_at))).label("no_at"),
        )
        .where(PersonResolution.created_at >= since)
        .group_by(PersonResolution.ticket_id)
        .subquery("people")
    )
    routing = action.action_type != ActionType.AUTO_RESOLVE
    answers_it = and_(
        TicketResolution.ticket_id == action.ticket_id,
        # Whatever answers an action in the window was made in it: an index range, not
        # every resolution ever.
        TicketResolution.created_at >= since,
        or_(TicketResolution.action_id == action.id,
            and_(routing, TicketResolution.created_at >= action.executed_at)),
    )
    kept = undone.id.is_(None)
    yes = or_(
        and_(kept, TicketResolution.resolution_confirmed.is_(True)),
        and_(routing, people.c.yes_at >= action.executed_at),
    )
    no = or_(
        and_(kept, _said_no(TicketResolution)),
        and_(routing, people.c.no_at >= action.executed_at),
    )
    outcome = case(
        (action.rolled_back.is_(True), literal(ROLLED_BACK)),
        (yes, literal(CONFIRMED)),
        (no, literal(REOPENED)),
        else_=literal(UNANSWERED),
    )

    def joined(query: Select, *, teams: bool = False) -> Select:
        query = query.select_from(action)
        if teams:
            query = query.join(Ticket, Ticket.ticket_id == action.ticket_id)
        return (
            query.outerjoin(TicketResolution, answers_it)
            .outerjoin(undone, and_(undone.id == TicketResolution.action_id,
                                    undone.rolled_back.is_(True)))
            .outerjoin(people, people.c.ticket_id == action.ticket_id)
        )

    return outcome, joined


def _said_no(model: type[TicketResolution] | type[PersonResolution]) -> ColumnElement[bool]:
    # A "Yes" after a "No" leaves reopened set: the later Yes is the answer.
    return or_(model.resolution_confirmed.is_(False),
               and_(model.reopened.is_(True), model.resolution_confirmed.is_(None)))


def _bin() -> ColumnElement[int | None]:
    # Comparisons, not FLOOR or CAST: both backends agree on them (a CAST rounds on
    # PostgreSQL), and 0.7 stated is 0.7 compared.
    conf = ActionHistory.confidence_score
    steps = [(conf >= k / BINS, literal(k)) for k in range(BINS - 1, 0, -1)]
    return case(
        (and_(ActionHistory.autonomous.is_(True), conf.is_not(None)),
         case(*steps, else_=literal(0))),
    )


def success_stats(session: Session, *, since: datetime, now: datetime) -> SuccessStats:
    """Outcomes of the bot's actions since `since`, the trend up to `now`, and CSAT.

    Args:
        session: a session to read with; nothing is written.
        since: the window's start (tz-aware).
        now: the window's end, where the trend's last day ends (tz-aware).

    Returns:
        The figures as a frozen `SuccessStats`.
    """
    outcome, joined = _outcome(since)
    team = func.coalesce(Ticket.assigned_team, literal(UNASSIGNED)).label("team")
    conf_bin = _bin().label("bin")
    answered = outcome.in_((CONFIRMED, REOPENED))
    query = select(
        ActionHistory.action_type, team, conf_bin,
        func.count().label("actions"),
        _count_if(outcome == CONFIRMED).label(CONFIRMED),
        _count_if(outcome == REOPENED).label(REOPENED),
        _count_if(outcome == ROLLED_BACK).label(ROLLED_BACK),
        _count_if(outcome == UNANSWERED).label(UNANSWERED),
        func.sum(case((answered, ActionHistory.confidence_score))).label("stated_sum"),
    )
    rows = session.execute(
        joined(query, teams=True)
        .where(ActionHistory.action_type.in_(AGENT_ACTIONS), ActionHistory.executed_at >= since)
        .group_by(ActionHistory.action_type, team, conf_bin)
    ).all()

    return SuccessStats(
        since=since,
        total=_sum("All", rows),
        by_action_type=_grouped(rows, lambda r: str(r.action_type)),
        by_team=_grouped(rows, lambda r: r.team),
        calibration=_calibration(rows),
        trend=_trend(session, now),
        **_csat(session, since),
    )


def _sum(name: str, rows) -> Outcomes:
    return Outcomes(
        name=name,
        actions=sum(r.actions for r in rows),
        confirmed=sum(r.confirmed for r in rows),
        reopened=sum(r.reopened for r in rows),
        rolled_back=sum(r.rolled_back for r in rows),
        unanswered=sum(r.unanswered for r in rows),
    )


def _grouped(rows, key) -> tuple[Outcomes, ...]:
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return tuple(_sum(name, groups[name]) for name in sorted(groups))


def _calibration(rows) -> tuple[ConfidenceBin, ...]:
    bins = []
    for k in range(BINS):
        mine = [r for r in rows if r.bin == k]
        if not mine:
            continue
        answered = sum(r.confirmed + r.reopened for r in mine)
        stated = sum(float(r.stated_sum or 0) for r in mine)
        bins.append(ConfidenceBin(
            low=k / BINS, acts=sum(r.actions for r in mine), answered=answered,
            confirmed=sum(r.confirmed for r in mine),
            stated=round(stated / answered, 3) if answered else None,
        ))
    return tuple(bins)


def _trend(session: Session, now: datetime) -> tuple[TrendDay, ...]:
    """Confirmed and answered per 24-hour slot over the last TREND_DAYS × 24 hours."""
    since = now - timedelta(days=TREND_DAYS)
    outcome, joined = _outcome(since)
    # Slot 0 is the oldest; bound comparisons, the same on both backends.
    starts = [since + timedelta(days=d) for d in range(TREND_DAYS)]
    slot = case(*[(ActionHistory.executed_at >= start, literal(d))
                  for d, start in reversed(list(enumerate(starts)))]).label("slot")
    rows = session.execute(
        joined(select(slot,
                      _count_if(outcome == CONFIRMED).label(CONFIRMED),
                      _count_if(outcome.in_((CONFIRMED, REOPENED))).label("answered")))
        .where(ActionHistory.action_type.in_(AGENT_ACTIONS), ActionHistory.executed_at >= since,
               ActionHistory.executed_at < now)
        .group_by(slot)
    ).all()
    found = {row.slot: row for row in rows}
    return tuple(
        TrendDay(start=start, confirmed=found[d].confirmed if d in found else 0,
                 answered=found[d].answered if d in found else 0)
        for d, start in enumerate(starts)
    )


def _csat(session: Session, since: datetime) -> dict[str, Any]:
    """CSAT of the bot's resolutions (withdrawn ones aside) and of people's, and NPS of
    the answers given in the window: one statement."""
    undone = aliased(ActionHistory, name="undone")

    def part(model, who: str):
        score = model.satisfaction_score
        kept = undone.id.is_(None)
        return (
            select(literal(who).label("who"),
                   _count_if(and_(kept, score >= CSAT_MIN_STARS)).label("satisfied"),
                   _count_if(and_(kept, score.is_not(None))).label("ratings"),
                   literal(0).label("low"))
            .select_from(model)
            .outerjoin(undone, and_(undone.id == model.action_id, undone.rolled_back.is_(True)))
            .where(model.created_at >= since)
        )

    nps = (select(literal("nps").label("who"), _count_if(NpsAnswer.score >= NPS_PROMOTER),
                  func.count(NpsAnswer.score), _count_if(NpsAnswer.score <= NPS_DETRACTOR))
           .where(NpsAnswer.answered_at >= since))
    rows = session.execute(union_all(part(TicketResolution, "csat"),
                                     part(PersonResolution, "people_csat"), nps)).all()
    return {row.who: (Nps(answered=row.ratings, promoters=row.satisfied, detractors=row.low)
                      if row.who == "nps" else Csat(satisfied=row.satisfied, ratings=row.ratings))
            for row in rows}
