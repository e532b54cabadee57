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

The counting is bot.domain.stats_facts (conditional counts and GROUP BY, plain SQL for
PostgreSQL and SQLite), read from the rollup by UTC day and hour where it is fresh and
live elsewhere (bot.domain.rollup); this module turns those facts into the figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from bot.domain import rollup
from bot.domain.stats_facts import (
    BINS,
    CONFIRMED,
    CSAT_MIN_STARS,
    PEOPLE,
    REOPENED,
    RESOLUTION,
    ROLLED_BACK,
    SUCCESS,
    UNANSWERED,
    UNASSIGNED,
    WIDTH,
    Facts,
    Family,
)
from bot.domain.surveys import NPS_DETRACTOR, NPS_PROMOTER, Nps
from models import NpsAnswer

TREND_DAYS = 14
__all__ = ["BINS", "CONFIRMED", "CSAT_MIN_STARS", "REOPENED", "ROLLED_BACK", "UNANSWERED",
           "UNASSIGNED", "TREND_DAYS"]


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


def success_stats(session: Session, *, since: datetime, now: datetime) -> SuccessStats:
    """Outcomes of the bot's actions since `since`, the trend up to `now`, and CSAT.

    Read from the stats rollup where it is fresh and counted live elsewhere
    (bot.domain.rollup); the same figures as counting everything live.

    Args:
        session: a session to read with; nothing is written.
        since: the window's start (tz-aware).
        now: the window's end, where the trend's last day ends (tz-aware).

    Returns:
        The figures as a frozen `SuccessStats`.
    """
    trend_since = now - timedelta(days=TREND_DAYS)
    with rollup.without_parallel_workers(session):
        fresh = rollup.freshness(session, min(since, trend_since))
        return success_from(rollup.window_facts(session, since, now, fresh), since=since,
                            trend=trend(session, now, fresh), nps=nps(session, since))


def trend(session: Session, now: datetime, fresh: rollup.Freshness) -> tuple[TrendDay, ...]:
    """Confirmed and answered per 24-hour slot over the last TREND_DAYS × 24 hours."""
    since = now - timedelta(days=TREND_DAYS)
    counts = rollup.trend_counts(session, since, now, TREND_DAYS, fresh)
    return tuple(TrendDay(start=since + timedelta(days=d), confirmed=c, answered=a)
                 for d, (c, a) in enumerate(counts))


@dataclass(frozen=True)
class _Row:
    """One (action type, team, bin) group of the success facts."""

    action_type: str
    team: str
    bin: int | None
    actions: int
    confirmed: int
    reopened: int
    rolled_back: int
    unanswered: int
    stated_sum: float


def success_from(facts: Facts, *, since: datetime, trend: tuple[TrendDay, ...],
                 nps: Nps) -> SuccessStats:
    """`SuccessStats` from a window's facts (bot.domain.stats_facts) and its trend."""
    rows = [
        _Row(action_type=key[1], team=key[2], bin=int(key[3]) if key[3] else None,
             actions=int(v[0]), confirmed=int(v[1]), reopened=int(v[2]), rolled_back=int(v[3]),
             unanswered=int(v[4]), stated_sum=float(v[WIDTH - 1]))
        for key, v in facts.items() if key[0] == SUCCESS.name
    ]
    return SuccessStats(
        since=since,
        total=_sum("All", rows),
        by_action_type=_grouped(rows, lambda r: r.action_type),
        by_team=_grouped(rows, lambda r: r.team),
        calibration=_calibration(rows),
        trend=trend,
        csat=_csat(facts, RESOLUTION),
        people_csat=_csat(facts, PEOPLE),
        nps=nps,
    )


def _sum(name: str, rows: list[_Row]) -> Outcomes:
    return Outcomes(
        name=name,
        actions=sum(r.actions for r in rows),
        confirmed=sum(r.confirmed for r in rows),
        reopened=sum(r.reopened for r in rows),
        rolled_back=sum(r.rolled_back for r in rows),
        unanswered=sum(r.unanswered for r in rows),
    )


def _grouped(rows: list[_Row], key: Callable[[_Row], str]) -> tuple[Outcomes, ...]:
    groups: dict[str, list[_Row]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return tuple(_sum(name, groups[name]) for name in sorted(groups))


def _calibration(rows: list[_Row]) -> tuple[ConfidenceBin, ...]:
    bins = []
    for k in range(BINS):
        mine = [r for r in rows if r.bin == k]
        if not mine:
            continue
        answered = sum(r.confirmed + r.reopened for r in mine)
        stated = sum(r.stated_sum for r in mine)
        bins.append(ConfidenceBin(
            low=k / BINS, acts=sum(r.actions for r in mine), answered=answered,
            confirmed=sum(r.confirmed for r in mine),
            stated=round(stated / answered, 3) if answered else None,
        ))
    return tuple(bins)


def _csat(facts: Facts, family: Family) -> Csat:
    """The share of 4 and 5 stars among the kept ratings (withdrawn resolutions aside)."""
    satisfied, ratings = family.index("satisfied"), family.index("ratings")
    rows = [v for key, v in facts.items() if key[0] == family.name]
    return Csat(satisfied=int(sum(v[satisfied] for v in rows)), ratings=int(sum(v[ratings] for v in rows)))


def nps(session: Session, since: datetime) -> Nps:
    """NPS of the answers given in the window: counted live, from `nps_answers` by its
    `answered_at` index (a few rows a day; not worth a rollup)."""
    score = NpsAnswer.score
    row = session.execute(
        select(func.count(case((score >= NPS_PROMOTER, 1))), func.count(score),
               func.count(case((score <= NPS_DETRACTOR, 1))))
        .where(NpsAnswer.answered_at >= since)
    ).one()
    return Nps(answered=row[1], promoters=row[0], detractors=row[2])
