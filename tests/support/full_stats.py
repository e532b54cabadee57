"""The stats the straightforward way, as they were before the rollup: every figure
counted over the whole window in one pass of SQL (bot/domain/analytics.py and
success.py at 4dab0d4). The reference the rollup is checked against
(tests/integration/test_rollup.py); the dataclasses are the application's own.
"""
# ruff: noqa
# mypy: ignore-errors

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from bot.core import clock
from bot.domain.analytics import (
    MAX_DAYS, ActionTypeStats, PeopleStats, PeopleTeamStats, ResolutionStats, TeamStats,
)
from bot.domain.success import (
    BINS, CONFIRMED, CSAT_MIN_STARS, REOPENED, ROLLED_BACK, TREND_DAYS, UNANSWERED, UNASSIGNED,
    ConfidenceBin, Csat, Outcomes, SuccessStats, TrendDay,
)
from models import (
    AGENT_ACTIONS, PEOPLE_ACTIONS, ActionHistory, ActionType, PersonResolution, Ticket,
    TicketResolution,
)

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


def full_success_stats(session: Session, *, since: datetime, now: datetime) -> SuccessStats:
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


def _csat(session: Session, since: datetime) -> dict[str, Csat]:
    """CSAT of the bot's resolutions (withdrawn ones aside) and of people's, one statement."""
    undone = aliased(ActionHistory, name="undone")

    def part(model, who: str):
        score = model.satisfaction_score
        kept = undone.id.is_(None)
        return (
            select(literal(who).label("who"),
                   _count_if(and_(kept, score >= CSAT_MIN_STARS)).label("satisfied"),
                   _count_if(and_(kept, score.is_not(None))).label("ratings"))
            .select_from(model)
            .outerjoin(undone, and_(undone.id == model.action_id, undone.rolled_back.is_(True)))
            .where(model.created_at >= since)
        )

    rows = session.execute(union_all(part(TicketResolution, "csat"),
                                     part(PersonResolution, "people_csat"))).all()
    return {row.who: Csat(satisfied=row.satisfied, ratings=row.ratings) for row in rows}


# An admin's rollback withdraws the resolution. Resolutions are outer-joined to their
# action only when it was rolled back (`_ROLLED_BACK_ACTION`): the join then reads the
# few rolled-back ids, not every action in the window, and a resolution whose action
# row is gone (action_id set NULL) still counts as kept.
_ROLLED_BACK_ACTION = and_(
    ActionHistory.id == TicketResolution.action_id, ActionHistory.rolled_back.is_(True)
)
_WITHDRAWN = ActionHistory.id.is_not(None)
_KEPT = ActionHistory.id.is_(None)


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


def full_resolution_stats(
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
        success=full_success_stats(session, since=since, now=now),
    )


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
