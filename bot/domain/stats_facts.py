"""The stats' figures as additive facts over time ranges: what the rollup stores per
bucket and what is computed live for the rest (bot.domain.rollup).

Every figure of `/resolution-stats` and the App Home is a sum of per-row facts, each
row filed under one time: an action under `executed_at`, a resolution (the bot's or a
person's) under `created_at`, a ticket's count in its team under its *latest* bot
action (a ticket is in a window when any of its bot actions is; that is, its latest
one). So the figures of a window are the sum of the facts of any partition of it into
ranges, and averages are kept as sums and counts. Each family below is one GROUP BY of
plain SQL for PostgreSQL and SQLite, over a list of [lo, hi) ranges (hi None: open),
optionally split into buckets by a CASE over the bucket starts.

A row's outcome depends on other rows of its ticket (a later Yes, a rollback, a
person's resolution, the ticket's team): it is whatever they say at the time of the
count; the rollup learns of a change through `stats_dirty` (bot.domain.rollup).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, bindparam, case, exists, false, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from models import (
    AGENT_ACTIONS,
    PEOPLE_ACTIONS,
    ActionHistory,
    ActionType,
    PersonResolution,
    Ticket,
    TicketResolution,
)

UNASSIGNED = "Unassigned"
CSAT_MIN_STARS = 4
BINS = 10

CONFIRMED = "confirmed"
REOPENED = "reopened"
ROLLED_BACK = "rolled_back"
UNANSWERED = "unanswered"

Range = tuple[datetime, datetime | None]
# (family, key_a, key_b, key_c) -> counts..., then the float sum (x0).
Key = tuple[str, str, str, str]
Facts = dict[Key, list[float]]


@dataclass(frozen=True)
class Family:
    """One kind of fact: its name, and what its value columns mean (n0.., then x0)."""

    name: str
    counts: tuple[str, ...]
    total: str | None = None  # the one float sum, if any

    def index(self, name: str) -> int:
        names = (*self.counts, self.total)
        return names.index(name)


_OUTCOMES = ("resolutions", "confirmed", "failed", "pending", "reopened", "rating_sum", "ratings",
             "withdrawn", "satisfied")
RESOLUTION = Family("resolution", _OUTCOMES)  # keyed by the ticket's team
PEOPLE = Family("people", _OUTCOMES)  # keyed by the person's team
ACTION = Family("action", ("actions", "autonomous", "confidence_count", "rolled_back"),
                "confidence_sum")  # keyed by action type
TICKETS = Family("tickets", ("tickets",))  # keyed by team
SUCCESS = Family("success", ("actions", CONFIRMED, REOPENED, ROLLED_BACK, UNANSWERED),
                 "stated_sum")  # keyed by action type, team, confidence bin ('' none)
TREND = Family("trend", (CONFIRMED, "answered"))  # minutes and hours, of recent days only
FAMILIES = {f.name: f for f in (RESOLUTION, PEOPLE, ACTION, TICKETS, SUCCESS, TREND)}
WIDTH = 10  # n0..n8 and x0


def within(column, ranges: Sequence[Range]) -> ColumnElement[bool]:
    """`column` in any of the [lo, hi) ranges."""
    parts = [column >= lo if hi is None else and_(column >= lo, column < hi) for lo, hi in ranges]
    return or_(*parts) if parts else false()


def bucket_of(column, starts: Sequence | None) -> ColumnElement:
    """The index of the bucket (by its start, ascending) `column` falls in; 0 without buckets."""
    if not starts:
        return literal(0)
    return case(*[(column >= start, literal(i)) for i, start in reversed(list(enumerate(starts)))],
                else_=literal(-1))


def _by(bucket, starts) -> list:
    # Without buckets the bucket is a constant: grouping by it would read as a position.
    return [bucket] if starts else []


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    # COUNT skips the NULL a CASE without ELSE yields: 0, not NULL, on an empty set.
    return func.count(case((condition, 1)))


def _said_no(model) -> ColumnElement[bool]:
    # A "Yes" after a "No" leaves reopened set: the later Yes is the answer.
    return or_(model.resolution_confirmed.is_(False),
               and_(model.reopened.is_(True), model.resolution_confirmed.is_(None)))


def _add(facts: Facts, family: Family, keys: tuple[str, ...], values: Sequence) -> None:
    key = (family.name, *(keys + ("", "", ""))[:3])
    row = facts.setdefault(key, [0] * WIDTH)  # type: ignore[arg-type]
    for i, value in enumerate(values[:len(family.counts)]):
        row[i] += int(value or 0)
    if family.total is not None:
        row[WIDTH - 1] += float(values[len(family.counts)] or 0)


def compute(session: Session, ranges: Sequence[Range], *,
            starts: Sequence[datetime] | None = None) -> dict[int, Facts]:
    """Every family's facts over `ranges`, per bucket (index into `starts`; 0 without).

    Args:
        session: a session to read with; nothing is written.
        ranges: [lo, hi) ranges of time (hi None: no end); empty: nothing.
        starts: bucket starts, ascending, to split by; rows before the first go nowhere.

    Returns:
        Facts per bucket index.
    """
    out: dict[int, Facts] = {}
    if not ranges:
        return out
    params = params_of(ranges, starts)
    for family, query in _statements(shape_of(ranges), len(starts or ())):
        for row in session.execute(query, params):
            bucket, keys, values = row[0], row[1:1 + _keys(family)], row[1 + _keys(family):]
            if bucket < 0:
                continue
            _add(out.setdefault(bucket, {}), family, tuple(str(k) for k in keys),
                 _success_values(values) if family is SUCCESS else values)
    return out


# The statements are built once per shape of the ranges (how many, which open-ended)
# and number of buckets, with the times as named parameters: building them costs more
# CPU than PostgreSQL takes to run them on a window's live edges.
Shape = tuple[bool, ...]


def shape_of(ranges: Sequence[Range]) -> Shape:
    return tuple(hi is None for _, hi in ranges)


def placeholders(shape: Shape, prefix: str = "") -> list:
    return [(bindparam(f"{prefix}lo_{i}"), None if open_ended else bindparam(f"{prefix}hi_{i}"))
            for i, open_ended in enumerate(shape)]


def params_of(ranges: Sequence[Range], starts: Sequence[datetime] | None = None, prefix: str = ""
              ) -> dict[str, datetime]:
    params = {f"{prefix}earliest": min(lo for lo, _ in ranges)}
    for i, (lo, hi) in enumerate(ranges):
        params[f"{prefix}lo_{i}"] = lo
        if hi is not None:
            params[f"{prefix}hi_{i}"] = hi
    for i, start in enumerate(starts or ()):
        params[f"{prefix}start_{i}"] = start
    return params


@functools.lru_cache(maxsize=256)
def _statements(shape: Shape, buckets: int) -> tuple:
    starts: list | None = [bindparam(f"start_{i}") for i in range(buckets)] or None
    return tuple(_queries(placeholders(shape), starts, bindparam("earliest")))


def _keys(family: Family) -> int:
    return {"resolution": 1, "people": 1, "action": 1, "tickets": 1, "success": 3}[family.name]


def _queries(ranges: Sequence, starts, earliest):
    team = func.coalesce(Ticket.assigned_team, literal(UNASSIGNED))
    yield RESOLUTION, _resolutions(TicketResolution, team, ranges, starts, join_ticket=True)
    yield PEOPLE, _resolutions(PersonResolution, func.coalesce(PersonResolution.team, literal(UNASSIGNED)),
                               ranges, starts)
    yield ACTION, _actions(ranges, starts)
    yield TICKETS, _tickets(team, ranges, starts)
    yield SUCCESS, _success(team, ranges, starts, earliest)


def _resolutions(model, team, ranges, starts, *, join_ticket: bool = False):
    undone = aliased(ActionHistory, name="undone")
    kept = undone.id.is_(None)
    confirmed, score = model.resolution_confirmed, model.satisfaction_score
    bucket = bucket_of(model.created_at, starts).label("bucket")
    query = select(
        bucket, team.label("team"),
        _count_if(kept), _count_if(and_(kept, confirmed.is_(True))),
        _count_if(and_(kept, confirmed.is_(False))), _count_if(and_(kept, confirmed.is_(None))),
        _count_if(and_(kept, model.reopened.is_(True))),
        func.sum(case((kept, score))), func.count(case((kept, score))),
        _count_if(undone.id.is_not(None)), _count_if(and_(kept, score >= CSAT_MIN_STARS)),
    ).select_from(model)
    if join_ticket:
        query = query.join(Ticket, Ticket.ticket_id == model.ticket_id)
    return (query.outerjoin(undone, and_(undone.id == model.action_id, undone.rolled_back.is_(True)))
            .where(within(model.created_at, ranges)).group_by(*_by(bucket, starts), team))


def _actions(ranges, starts):
    # The bot's own actions and people's (TAKE counts people's tickets taken); a
    # rolled-back action still counts: it happened, and was undone.
    bucket = bucket_of(ActionHistory.executed_at, starts).label("bucket")
    return (
        select(bucket, ActionHistory.action_type, func.count(),
               _count_if(ActionHistory.autonomous.is_(True)), func.count(ActionHistory.confidence_score),
               _count_if(ActionHistory.rolled_back.is_(True)), func.sum(ActionHistory.confidence_score))
        .where(ActionHistory.action_type.in_(AGENT_ACTIONS + PEOPLE_ACTIONS),
               within(ActionHistory.executed_at, ranges))
        .group_by(*_by(bucket, starts), ActionHistory.action_type)
    )


def _tickets(team, ranges, starts):
    # A ticket is filed under its latest bot action: counted once in any window that
    # holds one of its bot actions, whatever the ranges the window is cut into.
    later = aliased(ActionHistory, name="later")
    latest = (
        select(ActionHistory.ticket_id, ActionHistory.executed_at)
        .where(ActionHistory.action_type.in_(AGENT_ACTIONS), within(ActionHistory.executed_at, ranges),
               ~exists().where(later.ticket_id == ActionHistory.ticket_id,
                               later.action_type.in_(AGENT_ACTIONS),
                               later.executed_at > ActionHistory.executed_at))
        .subquery("latest")
    )
    bucket = bucket_of(latest.c.executed_at, starts).label("bucket")
    return (select(bucket, team.label("team"), func.count(func.distinct(latest.c.ticket_id)))
            .select_from(latest).join(Ticket, Ticket.ticket_id == latest.c.ticket_id)
            .group_by(*_by(bucket, starts), team))


def outcome_of(ranges: Sequence, earliest=None):
    """The outcome of each bot action as a CASE, and what adds the joins it reads.

    An AUTO_RESOLVE is answered on its own resolution; a routing action by the
    resolutions of its ticket made at or after it, the bot's (unless rolled back) or a
    person's, a Yes on any of them counting before a No; a rolled-back action is
    rolled back whatever was answered.
    """
    action, undone = ActionHistory, aliased(ActionHistory, name="undone")
    if earliest is None:
        earliest = min(lo for lo, _ in ranges)
    # People's latest Yes and No per ticket; whatever answers an action in the ranges
    # was made after the earliest of them (an index range, not every row ever).
    people = (
        select(PersonResolution.ticket_id,
               func.max(case((PersonResolution.resolution_confirmed.is_(True),
                              PersonResolution.created_at))).label("yes_at"),
               func.max(case((_said_no(PersonResolution), PersonResolution.created_at))).label("no_at"))
        .where(PersonResolution.created_at >= earliest)
        .group_by(PersonResolution.ticket_id)
        .subquery("people")
    )
    routing = action.action_type != ActionType.AUTO_RESOLVE
    # The resolution's own time bound as well (it is made with or after the action):
    # without it the planner may scan every resolution ever made to hash them.
    answers_it = and_(TicketResolution.ticket_id == action.ticket_id,
                      TicketResolution.created_at >= earliest,
                      or_(TicketResolution.action_id == action.id,
                          and_(routing, TicketResolution.created_at >= action.executed_at)))
    kept = undone.id.is_(None)
    yes = or_(and_(kept, TicketResolution.resolution_confirmed.is_(True)),
              and_(routing, people.c.yes_at >= action.executed_at))
    no = or_(and_(kept, _said_no(TicketResolution)), and_(routing, people.c.no_at >= action.executed_at))
    outcome = case((action.rolled_back.is_(True), literal(ROLLED_BACK)), (yes, literal(CONFIRMED)),
                   (no, literal(REOPENED)), else_=literal(UNANSWERED))

    def joined(query, *, teams: bool = False):
        query = query.select_from(action)
        if teams:
            query = query.join(Ticket, Ticket.ticket_id == action.ticket_id)
        undone_it = and_(undone.id == TicketResolution.action_id, undone.rolled_back.is_(True))
        return (query.outerjoin(TicketResolution, answers_it)
                .outerjoin(undone, undone_it)
                .outerjoin(people, people.c.ticket_id == action.ticket_id)
                .where(action.action_type.in_(AGENT_ACTIONS), within(action.executed_at, ranges)))

    return outcome, joined


def outcome_per_action(earliest):
    """`outcome_of`'s CASE for a few actions (a window's live edges, an hour being
    rolled): what answers each action is looked up by its ticket, row by row.

    `outcome_of`'s joins let the planner hash every resolution made since `earliest`
    (the window's start: 90 days of them for a 90-day window) when it misjudges how
    many actions the edges hold; a correlated subquery is always an index lookup per
    action. Evaluate it once per row (group by it): each mention runs its lookups.
    """
    action, undone = ActionHistory, aliased(ActionHistory, name="undone")
    routing = action.action_type != ActionType.AUTO_RESOLVE
    resolution = TicketResolution
    # The ticket's resolution that answers the action, unless rolled back: 'y' a Yes,
    # 'n' a No, '' neither (one resolution per ticket: uq_ticket_resolution_ticket_id).
    answer = (
        select(case((resolution.resolution_confirmed.is_(True), literal("y")),
                    (_said_no(resolution), literal("n")), else_=literal("")))
        .where(resolution.ticket_id == action.ticket_id, resolution.created_at >= earliest,
               or_(resolution.action_id == action.id,
                   and_(routing, resolution.created_at >= action.executed_at)),
               ~exists().where(undone.id == resolution.action_id, undone.rolled_back.is_(True)))
        .limit(1)
        .scalar_subquery()
    )

    def people_said(said: ColumnElement[bool]) -> ColumnElement[bool]:
        return and_(routing, exists().where(PersonResolution.ticket_id == action.ticket_id,
                                            PersonResolution.created_at >= earliest,
                                            PersonResolution.created_at >= action.executed_at, said))

    people_yes = people_said(PersonResolution.resolution_confirmed.is_(True))
    people_no = people_said(_said_no(PersonResolution))
    # A Yes anywhere first, then a No: a CASE on the answer, so that it is looked up once.
    by_answer = case(
        {"y": literal(CONFIRMED),
         "n": case((people_yes, literal(CONFIRMED)), else_=literal(REOPENED))},
        value=answer,
        else_=case((people_yes, literal(CONFIRMED)), (people_no, literal(REOPENED)),
                   else_=literal(UNANSWERED)))
    return case((action.rolled_back.is_(True), literal(ROLLED_BACK)), else_=by_answer)


def _per_action(query, ranges, *, teams: bool = False):
    """The bot's actions in `ranges`, for `outcome_per_action`."""
    query = query.select_from(ActionHistory)
    if teams:
        query = query.join(Ticket, Ticket.ticket_id == ActionHistory.ticket_id)
    return query.where(ActionHistory.action_type.in_(AGENT_ACTIONS),
                       within(ActionHistory.executed_at, ranges))


def confidence_bin() -> ColumnElement:
    # Comparisons, not FLOOR or CAST: both backends agree on them (a CAST rounds on
    # PostgreSQL), and 0.7 stated is 0.7 compared. '' : not autonomous, or no confidence.
    conf = ActionHistory.confidence_score
    steps = [(conf >= k / BINS, literal(str(k))) for k in range(BINS - 1, 0, -1)]
    return case((and_(ActionHistory.autonomous.is_(True), conf.is_not(None)),
                 case(*steps, else_=literal("0"))), else_=literal(""))


def _success(team, ranges, starts, earliest):
    # Grouped by the outcome too, so that it is worked out once per action; `compute`
    # folds the outcomes into the family's counts.
    outcome = outcome_per_action(earliest).label("outcome")
    bucket = bucket_of(ActionHistory.executed_at, starts).label("bucket")
    conf_bin = confidence_bin().label("bin")
    return _per_action(select(
        bucket, ActionHistory.action_type, team.label("team"), conf_bin, outcome, func.count(),
        func.sum(ActionHistory.confidence_score),
    ), ranges, teams=True).group_by(*_by(bucket, starts), ActionHistory.action_type, team, conf_bin, outcome)


def _success_values(values: Sequence) -> list:
    """(outcome, count, confidence sum) -> the SUCCESS family's values."""
    outcome, n, stated = values
    answered = outcome in (CONFIRMED, REOPENED)
    return [n, *(n if outcome == name else 0 for name in SUCCESS.counts[1:]), stated if answered else 0]


def outcomes_at(session: Session, ranges: Sequence[Range]) -> list[tuple[datetime, str]]:
    """(executed_at, outcome) of every bot action in `ranges`: the trend's live part and
    its minute buckets, which split a day at any time."""
    if not ranges:
        return []
    found = session.execute(_outcomes_statement(shape_of(ranges)), params_of(ranges))
    return [(row[0], row[1]) for row in found]


@functools.lru_cache(maxsize=256)
def _outcomes_statement(shape: Shape):
    outcome = outcome_per_action(bindparam("earliest"))
    return _per_action(select(ActionHistory.executed_at, outcome), placeholders(shape))


def outcomes_by_bucket(session: Session, ranges: Sequence[Range], starts: Sequence[datetime]
                       ) -> dict[tuple[int, str], int]:
    """How many bot actions in `ranges` ended in each outcome, per bucket (index into
    `starts`, -1 before the first): the trend's live part, counted in SQL."""
    if not ranges:
        return {}
    query = _outcomes_by_bucket_statement(shape_of(ranges), len(starts))
    return {(int(row[0]), row[1]): int(row[2]) for row in session.execute(query, params_of(ranges, starts))}


@functools.lru_cache(maxsize=256)
def _outcomes_by_bucket_statement(shape: Shape, buckets: int):
    starts: list = [bindparam(f"start_{i}") for i in range(buckets)]
    bucket = bucket_of(ActionHistory.executed_at, starts).label("b")
    labelled = outcome_per_action(bindparam("earliest")).label("outcome")
    return _per_action(select(bucket, labelled, func.count()), placeholders(shape)).group_by(bucket, labelled)
