"""How well the bot is doing: resolution outcomes, per action type and per team; and,
on their own records, how people's resolutions from the team channels are doing.

The bot's figures come from `ticket_resolution` (its auto-resolutions) alone: a
ticket the bot resolved, the requester said No to, and a person then resolved counts
one "No" for the bot and, separately, the person's verdict in `people`.

The counting is bot.domain.stats_facts (conditional counts and sums with GROUP BY,
plain SQL for PostgreSQL and SQLite); whole UTC days and hours come from the rollup the
jobs keep (bot.domain.rollup), the rest of the window is counted live, so a window of
365 days costs about what one of a day does. Averages are sums over counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.errors import InvalidInput
from bot.domain import rollup
from bot.domain.stats_facts import ACTION, PEOPLE, RESOLUTION, TICKETS, WIDTH, Facts, Family
from bot.domain.success import TREND_DAYS, SuccessStats, nps, success_from, trend
from models import AGENT_ACTIONS, ActionType, PersonResolution, TicketResolution

MAX_DAYS = 365
UNASSIGNED = "Unassigned"


@dataclass(frozen=True)
class ActionTypeStats:
    """What the bot did with one action type in the window."""

    action_type: str
    actions: int
    autonomous: int
    average_confidence: float | None
    rolled_back: int


@dataclass(frozen=True)
class TeamStats:
    """The tickets the bot acted on for one team, and how its resolutions went."""

    team: str
    tickets: int
    resolutions: int
    confirmed: int
    failed: int
    success_rate: float | None
    average_rating: float | None


@dataclass(frozen=True)
class PeopleTeamStats:
    """One team's resolutions by people (from its channel), as their requesters rated them."""

    team: str
    resolutions: int
    confirmed: int
    failed: int
    success_rate: float | None
    average_rating: float | None


@dataclass(frozen=True)
class PeopleStats:
    """People's work from the team channels in the window, rated on its own records."""

    taken: int = 0
    resolutions: int = 0
    confirmed: int = 0
    failed: int = 0
    pending: int = 0
    reopened: int = 0
    success_rate: float | None = None
    average_rating: float | None = None
    ratings: int = 0
    withdrawn: int = 0


@dataclass(frozen=True)
class Comment:
    """What a requester said did not work, after a No."""

    ticket_id: int
    text: str
    at: datetime
    # True when the No was about a person's resolution, not the bot's.
    by_person: bool = False


LATEST_COMMENTS = 5


@dataclass(frozen=True)
class ResolutionStats:
    """Outcomes of auto-resolutions over the last `days` days (since `since`)."""

    days: int
    since: datetime
    resolutions: int
    confirmed: int
    failed: int
    pending: int
    reopened: int
    success_rate: float | None
    average_rating: float | None
    ratings: int
    withdrawn: int
    by_action_type: tuple[ActionTypeStats, ...]
    by_team: tuple[TeamStats, ...]
    # People's resolutions, apart from the bot's.
    people: PeopleStats = PeopleStats()
    people_by_team: tuple[PeopleTeamStats, ...] = ()
    # Success per action type, team and confidence bin, the 14-day trend and CSAT
    # (bot.domain.success); None only when built by hand.
    success: SuccessStats | None = None


def _rate(yes: int, no: int) -> float | None:
    # Nobody answered yet: there is no rate, and 0% would read as "all failed".
    return None if yes + no == 0 else yes / (yes + no)


def _rounded(value: Any, places: int) -> float | None:
    # PostgreSQL averages integers as NUMERIC (Decimal); report plain floats.
    return None if value is None else round(float(value), places)


def _validate_days(days: object) -> int:
    # bool is an int subclass; `days=True` is a bug, not "one day".
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput(
            f"The number of days must be a whole number from 1 to {MAX_DAYS}, not {days!r}."
        )
    return days


def resolution_stats(
    session: Session, *, days: int = 30, now: datetime | None = None
) -> ResolutionStats:
    """Resolution outcomes, per action type and per team, over the last `days` days.

    Args:
        session: a session to read with; nothing is written.
        days: the window length, a whole number from 1 to 365.
        now: the end of the window (tz-aware); defaults to the bot clock.

    Returns:
        The figures as a frozen `ResolutionStats`. Rates and averages are None
        when there is nothing to base them on.

    Raises:
        InvalidInput: `days` is not an int from 1 to 365.
        ValueError: `now` is a naive datetime.
    """
    days = _validate_days(days)
    now = clock.now() if now is None else now
    if now.tzinfo is None:
        raise ValueError("now must be a tz-aware datetime")
    since = now - timedelta(days=days)

    # The rollup where it is fresh, live counting elsewhere (bot.domain.rollup); the
    # trend's 14 days may reach back past a shorter window.
    with rollup.without_parallel_workers(session):
        fresh = rollup.freshness(session, min(since, now - timedelta(days=TREND_DAYS)))
        facts = rollup.window_facts(session, since, now, fresh)
        totals = _outcomes(facts, RESOLUTION)
        by_action_type, taken = _by_action_type(facts)
        people_by_team, people = _people(facts, taken=taken)
        success = success_from(facts, since=since, trend=trend(session, now, fresh),
                               nps=nps(session, since))
    return ResolutionStats(
        days=days,
        since=since,
        resolutions=totals["resolutions"],
        confirmed=totals["confirmed"],
        failed=totals["failed"],
        pending=totals["pending"],
        reopened=totals["reopened"],
        success_rate=_rate(totals["confirmed"], totals["failed"]),
        average_rating=_average(totals["rating_sum"], totals["ratings"], 2),
        ratings=totals["ratings"],
        withdrawn=totals["withdrawn"],
        by_action_type=by_action_type,
        by_team=_by_team(facts),
        people=people,
        people_by_team=people_by_team,
        success=success,
    )


def latest_comments(session: Session, since: datetime, *, limit: int = LATEST_COMMENTS
                    ) -> tuple[Comment, ...]:
    """The latest "What didn't work?" texts written since `since`, newest first, from the
    bot's resolutions and people's alike (the time is when the text was last written).

    Apart from `resolution_stats`: `/resolution-stats` shows them, the App Home does not.
    """
    found: list[Comment] = []
    for model, by_person in ((TicketResolution, False), (PersonResolution, True)):
        rows = session.execute(
            select(model.ticket_id, model.user_feedback_text, model.updated_at)
            .where(model.user_feedback_text != "", model.updated_at >= since)
            .order_by(model.updated_at.desc(), model.id.desc()).limit(limit)
        ).all()
        found += [Comment(row.ticket_id, row.user_feedback_text, row.updated_at, by_person) for row in rows]
    return tuple(sorted(found, key=lambda c: c.at, reverse=True)[:limit])


def _average(total: float, count: int, places: int) -> float | None:
    return round(total / count, places) if count else None


def _outcomes(facts: Facts, family: Family, key: str | None = None) -> dict[str, int]:
    """The outcome counts of a resolution family, in all or for one key (a team)."""
    out = dict.fromkeys(family.counts, 0)
    for (name, key_a, _, _), values in facts.items():
        if name == family.name and (key is None or key_a == key):
            for i, count in enumerate(family.counts):
                out[count] += int(values[i])
    return out


def _keys(facts: Facts, family: Family) -> set[str]:
    return {key_a for (name, key_a, _, _) in facts if name == family.name}


def _by_action_type(facts: Facts) -> tuple[tuple[ActionTypeStats, ...], int]:
    """The bot's actions by type, and how many tickets people took."""
    # Only the bot's own actions: ROLLBACK/REOPEN/CONFIRM rows are people's records,
    # and TAKE/RESOLVE people's work (TAKE is counted for `people`; RESOLVE is read
    # from person_resolution). A rolled-back AUTO_RESOLVE still counts here: it
    # happened, and was undone.
    rows = {key[1]: values for key, values in facts.items() if key[0] == ACTION.name}
    n = {name: ACTION.index(name) for name in ACTION.counts}
    bots = tuple(
        ActionTypeStats(
            action_type=kind,
            actions=int(v[n["actions"]]),
            autonomous=int(v[n["autonomous"]]),
            average_confidence=_average(float(v[WIDTH - 1]), int(v[n["confidence_count"]]), 3),
            rolled_back=int(v[n["rolled_back"]]),
        )
        for kind, v in sorted(rows.items()) if kind in AGENT_ACTIONS
    )
    took = rows.get(ActionType.TAKE)
    taken = int(took[n["actions"]] - took[n["rolled_back"]]) if took else 0
    return bots, taken


def _people(facts: Facts, *, taken: int) -> tuple[tuple[PeopleTeamStats, ...], PeopleStats]:
    """People's resolutions per team and in all."""
    by_team = []
    for team in sorted(_keys(facts, PEOPLE)):
        row = _outcomes(facts, PEOPLE, team)
        if row["resolutions"]:
            by_team.append(PeopleTeamStats(
                team=team, resolutions=row["resolutions"], confirmed=row["confirmed"],
                failed=row["failed"], success_rate=_rate(row["confirmed"], row["failed"]),
                average_rating=_average(row["rating_sum"], row["ratings"], 2)))
    total = _outcomes(facts, PEOPLE)
    people = PeopleStats(
        taken=taken, resolutions=total["resolutions"], confirmed=total["confirmed"],
        failed=total["failed"], pending=total["pending"], reopened=total["reopened"],
        success_rate=_rate(total["confirmed"], total["failed"]),
        average_rating=_average(total["rating_sum"], total["ratings"], 2),
        ratings=total["ratings"], withdrawn=total["withdrawn"],
    )
    return tuple(by_team), people


def _by_team(facts: Facts) -> tuple[TeamStats, ...]:
    """Per team: the tickets with a bot action in the window, and the bot's resolutions."""
    tickets = {key[1]: int(v[0]) for key, v in facts.items() if key[0] == TICKETS.name}
    stats = []
    # A resolution whose action row was deleted has no action in the window, so a
    # team can have resolutions and no tickets, or tickets and no resolutions.
    for name in sorted(tickets.keys() | _keys(facts, RESOLUTION)):
        row = _outcomes(facts, RESOLUTION, name)
        stats.append(TeamStats(
            team=name, tickets=tickets.get(name, 0), resolutions=row["resolutions"],
            confirmed=row["confirmed"], failed=row["failed"],
            success_rate=_rate(row["confirmed"], row["failed"]),
            average_rating=_average(row["rating_sum"], row["ratings"], 2),
        ))
    return tuple(stats)
