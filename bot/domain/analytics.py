"""How well the bot is doing: resolution outcomes, per action type and per team; and,
on their own records, how people's resolutions from the team channels are doing.

The bot's figures come from `ticket_resolution` (its auto-resolutions) alone: a
ticket the bot resolved, the requester said No to, and a person then resolved counts
one "No" for the bot and, separately, the person's verdict in `people`.

Everything is aggregated in the database (conditional counts and averages with
GROUP BY), so the cost of `/resolution-stats` and the App Home tab stays a few
queries however many tickets there are. The SQL is plain enough to run on both
PostgreSQL and SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.errors import InvalidInput
from bot.domain.success import SuccessStats, success_stats
from models import (
    AGENT_ACTIONS,
    PEOPLE_ACTIONS,
    ActionHistory,
    ActionType,
    PersonResolution,
    Ticket,
    TicketResolution,
)

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


# An admin's rollback withdraws the resolution. Resolutions are outer-joined to their
# action only when it was rolled back (`_ROLLED_BACK_ACTION`): the join then reads the
# few rolled-back ids, not every action in the window, and a resolution whose action
# row is gone (action_id set NULL) still counts as kept.
_ROLLED_BACK_ACTION = and_(
    ActionHistory.id == TicketResolution.action_id, ActionHistory.rolled_back.is_(True)
)
_WITHDRAWN = ActionHistory.id.is_not(None)
_KEPT = ActionHistory.id.is_(None)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    # COUNT skips NULLs and a CASE without ELSE yields NULL: a conditional count that
    # is 0 (not NULL, as SUM would be) on an empty set, on every backend.
    return func.count(case((condition, 1)))


def _kept(condition: ColumnElement[bool] | None = None) -> ColumnElement[bool]:
    return _KEPT if condition is None else and_(_KEPT, condition)


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


def _outcome_columns(model=TicketResolution) -> list[ColumnElement]:
    """Aggregates over resolutions outer-joined to their action, withdrawn excluded."""
    confirmed = model.resolution_confirmed
    return [
        _count_if(_KEPT).label("resolutions"),
        _count_if(_kept(confirmed.is_(True))).label("confirmed"),
        _count_if(_kept(confirmed.is_(False))).label("failed"),
        _count_if(_kept(confirmed.is_(None))).label("pending"),
        _count_if(_kept(model.reopened.is_(True))).label("reopened"),
        # The CASE hides withdrawn scores; AVG and COUNT ignore the NULLs.
        func.avg(case((_KEPT, model.satisfaction_score))).label("avg_rating"),
        func.count(case((_KEPT, model.satisfaction_score))).label("ratings"),
    ]


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

    resolutions = (
        select(*_outcome_columns(), _count_if(_WITHDRAWN).label("withdrawn"))
        .select_from(TicketResolution)
        .outerjoin(ActionHistory, _ROLLED_BACK_ACTION)
        .where(TicketResolution.created_at >= since)
    )
    totals = session.execute(resolutions).one()
    by_action_type, taken = _by_action_type(session, since)
    people_by_team, people = _people(session, since, taken=taken)

    return ResolutionStats(
        days=days,
        since=since,
        resolutions=totals.resolutions,
        confirmed=totals.confirmed,
        failed=totals.failed,
        pending=totals.pending,
        reopened=totals.reopened,
        success_rate=_rate(totals.confirmed, totals.failed),
        average_rating=_rounded(totals.avg_rating, 2),
        ratings=totals.ratings,
        withdrawn=totals.withdrawn,
        by_action_type=by_action_type,
        by_team=_by_team(session, since),
        people=people,
        people_by_team=people_by_team,
        success=success_stats(session, since=since, now=now),
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


def _by_action_type(session: Session, since: datetime) -> tuple[tuple[ActionTypeStats, ...], int]:
    """The bot's actions by type, and how many tickets people took (one query)."""
    # Only the bot's own actions: ROLLBACK/REOPEN/CONFIRM rows are people's records,
    # and TAKE/RESOLVE people's work (TAKE is counted for `people`; RESOLVE is read
    # from person_resolution). A rolled-back AUTO_RESOLVE still counts here: it
    # happened, and was undone.
    query = (
        select(
            ActionHistory.action_type,
            func.count().label("actions"),
            _count_if(ActionHistory.autonomous.is_(True)).label("autonomous"),
            func.avg(ActionHistory.confidence_score).label("avg_confidence"),
            _count_if(ActionHistory.rolled_back.is_(True)).label("rolled_back"),
        )
        .where(ActionHistory.action_type.in_(AGENT_ACTIONS + PEOPLE_ACTIONS),
               ActionHistory.executed_at >= since)
        .group_by(ActionHistory.action_type)
        .order_by(ActionHistory.action_type)
    )
    rows = session.execute(query).all()
    bots = tuple(
        ActionTypeStats(
            action_type=row.action_type,
            actions=row.actions,
            autonomous=row.autonomous,
            average_confidence=_rounded(row.avg_confidence, 3),
            rolled_back=row.rolled_back,
        )
        for row in rows if row.action_type in AGENT_ACTIONS
    )
    taken = sum(row.actions - row.rolled_back for row in rows if row.action_type == ActionType.TAKE)
    return bots, taken


def _people(
    session: Session, since: datetime, *, taken: int
) -> tuple[tuple[PeopleTeamStats, ...], PeopleStats]:
    """People's resolutions per team and in all, from one GROUP BY (teams are few)."""
    team = func.coalesce(PersonResolution.team, literal(UNASSIGNED)).label("team")
    rows = session.execute(
        select(team, *_outcome_columns(PersonResolution), _count_if(_WITHDRAWN).label("withdrawn"),
               func.sum(case((_KEPT, PersonResolution.satisfaction_score))).label("rating_sum"))
        .select_from(PersonResolution)
        .outerjoin(ActionHistory, and_(ActionHistory.id == PersonResolution.action_id,
                                       ActionHistory.rolled_back.is_(True)))
        .where(PersonResolution.created_at >= since)
        .group_by(team)
        .order_by(team)
    ).all()
    by_team = tuple(
        PeopleTeamStats(team=row.team, resolutions=row.resolutions, confirmed=row.confirmed,
                        failed=row.failed, success_rate=_rate(row.confirmed, row.failed),
                        average_rating=_rounded(row.avg_rating, 2))
        for row in rows if row.resolutions
    )

    def total(name: str) -> int:
        return sum(getattr(row, name) for row in rows)

    ratings = total("ratings")
    rating_sum = sum(row.rating_sum or 0 for row in rows)
    people = PeopleStats(
        taken=taken, resolutions=total("resolutions"), confirmed=total("confirmed"),
        failed=total("failed"), pending=total("pending"), reopened=total("reopened"),
        success_rate=_rate(total("confirmed"), total("failed")),
        average_rating=_rounded(rating_sum / ratings, 2) if ratings else None,
        ratings=ratings, withdrawn=total("withdrawn"),
    )
    return by_team, people


def _by_team(session: Session, since: datetime) -> tuple[TeamStats, ...]:
    # Grouping on the display name (not the raw column) lets the database merge
    # unassigned tickets under one key, so Python never has to re-aggregate.
    team = func.coalesce(Ticket.assigned_team, literal(UNASSIGNED)).label("team")

    # Tickets with a bot action in the window, as a semi-join: PostgreSQL hashes the
    # window's actions once instead of sorting every (action, team) pair for a
    # DISTINCT (90 days at 1M actions: 1.4 s -> 0.5 s, bench/queries.py).
    acted = (
        select(ActionHistory.id)
        .where(ActionHistory.ticket_id == Ticket.ticket_id,
               ActionHistory.action_type.in_(AGENT_ACTIONS), ActionHistory.executed_at >= since)
        .exists()
    )
    ticket_counts = (
        select(team, func.count().label("tickets")).select_from(Ticket).where(acted).group_by(team)
    )
    tickets = {row.team: row.tickets for row in session.execute(ticket_counts)}

    outcomes_query = (
        select(team, *_outcome_columns())
        .select_from(TicketResolution)
        .join(Ticket, Ticket.ticket_id == TicketResolution.ticket_id)
        .outerjoin(ActionHistory, _ROLLED_BACK_ACTION)
        .where(TicketResolution.created_at >= since)
        .group_by(team)
    )
    outcomes = {row.team: row for row in session.execute(outcomes_query)}

    # A resolution whose action row was deleted has no action in the window, so a
    # team can appear in either result alone.
    stats = []
    for name in sorted(tickets.keys() | outcomes.keys()):
        row = outcomes.get(name)
        confirmed = row.confirmed if row else 0
        failed = row.failed if row else 0
        stats.append(
            TeamStats(
                team=name,
                tickets=tickets.get(name, 0),
                resolutions=row.resolutions if row else 0,
                confirmed=confirmed,
                failed=failed,
                success_rate=_rate(confirmed, failed),
                average_rating=_rounded(row.avg_rating, 2) if row else None,
            )
        )
    return tuple(stats)
