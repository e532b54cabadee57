"""Service levels: how long a ticket waited for its first response and its resolution,
against SLA_TARGETS, in business time (BUSINESS_HOURS).

The priority is the agent's: critical (its critical flag, or a critical escalation),
high (severity high), else normal (low, medium, or not decided on yet). The clocks
start at intake; the first response is the bot's autonomous answer (AUTO_RESOLVE) or a
person's Take it or resolution, whichever came first; the resolution clock stops when
the ticket is resolved. Both stop while the ticket waits on its requester (from the
bot's question to the next action on the ticket, and from a resolution to a reopen),
and count only BUSINESS_HOURS,
except for critical tickets, which run around the clock.

Everything is measured from the ticket and its action history by the `check_sla` job
(bot.workflows.sla), which keeps one `ticket_sla` row per ticket: nothing on the
request path changes. The job warns the team's channel at 80% of a target and tells it
of a breach at 100%, each once: the flag is set by a conditional UPDATE, and only the
run whose UPDATE changed the row is owed the notice (written to the outbox by
bot.workflows.sla in the same transaction). Everything here only flushes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.settings import BusinessHours, Settings
from bot.domain import rollup, sla_rollup, teamwork
from bot.domain.policy import CRITICAL_CATEGORIES
from models import (
    ActionHistory,
    ActionType,
    EscalationPriority,
    SlaPriority,
    Ticket,
    TicketSla,
    TicketStatus,
    as_utc,
    rowcount,
)

WARN_AT = 0.8
# Resolved tickets the job still measures if it never saw them open (it was off, or the
# bot answered within one JOB_INTERVAL).
LOOKBACK = timedelta(days=7)
BATCH = 500
BACKLOG = timedelta(days=1)
_ACTIVE = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.AWAITING_USER,
           TicketStatus.ESCALATED)
_DONE = (TicketStatus.RESOLVED, TicketStatus.CLOSED)
# The clocks stop while the requester has the next move: the bot asked them for detail,
# or the ticket was resolved (until they reopen it).
_PAUSED = frozenset({TicketStatus.AWAITING_USER, TicketStatus.RESOLVED})


class Target(StrEnum):
    """Which of a ticket's two targets."""

    RESPONSE = "response"
    RESOLUTION = "resolution"


class Stage(StrEnum):
    """What a notice says about a target."""

    WARNING = "warning"  # 80% of the target is used
    BREACH = "breach"  # the target is missed


@dataclass(frozen=True)
class Owed:
    """A notice the team's channel is owed now (bot.workflows.sla writes it)."""

    ticket_id: int
    team: str
    channel: str
    target: Target
    stage: Stage
    priority: SlaPriority
    elapsed_s: int
    target_s: int
    # Whether the clock counts only BUSINESS_HOURS (not for critical tickets).
    business_hours: bool


@dataclass(frozen=True)
class Clock:
    """A ticket's clocks at one moment (business seconds, requester's waits left out)."""

    priority: SlaPriority
    first_response_at: datetime | None
    response_s: int  # to the first response, or so far
    resolution_s: int  # to the resolution, or so far
    responded: bool
    resolved: bool


def priority_of(ticket: Ticket) -> SlaPriority:
    """The ticket's SLA priority, from the agent's answer stored on it."""
    response = ticket.agent_response if isinstance(ticket.agent_response, dict) else {}
    analysis = response.get("analysis") or {}
    severity = str(analysis.get("severity") or "").lower()
    category = str(analysis.get("category") or ticket.category or "").lower()
    if (ticket.escalation_priority == EscalationPriority.CRITICAL or severity == "critical"
            or category in CRITICAL_CATEGORIES):
        return SlaPriority.CRITICAL
    if severity == "high":
        return SlaPriority.HIGH
    return SlaPriority.NORMAL


def business_seconds(start: datetime, end: datetime, hours: BusinessHours | None) -> float:
    """Seconds from `start` to `end` that fall in business hours (all of them without).

    Args:
        start: tz-aware.
        end: tz-aware; before `start` counts nothing.
        hours: BUSINESS_HOURS, or None for around the clock.
    """
    if end <= start:
        return 0.0
    if hours is None:
        return (end - start).total_seconds()
    zone = ZoneInfo(hours.zone)
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    total = 0.0
    while day <= last:
        if day.weekday() in hours.days:
            midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
            # Wall-clock times of the day, each resolved in the zone (DST-safe).
            opens = (midnight + timedelta(minutes=hours.opens)).replace(tzinfo=zone)
            closes = (midnight + timedelta(minutes=hours.closes)).replace(tzinfo=zone)
            low, high = max(start, opens), min(end, closes)
            if high > low:
                total += (high - low).total_seconds()
        day += timedelta(days=1)
    return total


def measure(ticket: Ticket, actions: Sequence[ActionHistory], settings: Settings, now: datetime) -> Clock:
    """The ticket's clocks at `now`, from its actions (oldest first).

    Args:
        ticket: the ticket.
        actions: its action_history rows, in the order they were taken.
        settings: BUSINESS_HOURS.
        now: the clock reading.
    """
    priority = priority_of(ticket)
    hours = None if priority == SlaPriority.CRITICAL else settings.business_hours
    start = as_utc(ticket.created_at)
    first = None
    pauses: list[tuple[datetime, datetime]] = []
    waiting_since: datetime | None = None
    for action in actions:
        at = as_utc(action.executed_at)
        if waiting_since is not None:
            pauses.append((waiting_since, at))
            waiting_since = None
        if first is None and (action.action_type in (ActionType.TAKE, ActionType.RESOLVE)
                              or (action.action_type == ActionType.AUTO_RESOLVE and action.autonomous)):
            first = at
        if (action.after_state or {}).get("status") in _PAUSED:
            waiting_since = at
    if waiting_since is not None and ticket.status == TicketStatus.AWAITING_USER:
        pauses.append((waiting_since, now))
    resolved = ticket.status in _DONE
    end = as_utc(ticket.resolved_at) if ticket.status == TicketStatus.RESOLVED and ticket.resolved_at else now
    if ticket.status == TicketStatus.CLOSED:
        end = min(now, as_utc(ticket.updated_at))

    def running(until: datetime) -> int:
        paused = sum(business_seconds(max(a, start), min(b, until), hours) for a, b in pauses)
        return int(business_seconds(start, until, hours) - paused)

    return Clock(priority=priority, first_response_at=first,
                 response_s=running(first if first is not None else end),
                 resolution_s=running(end), responded=first is not None, resolved=resolved)


def due_tickets(session: Session, *, now: datetime, limit: int = BATCH) -> list[int]:
    """The tickets the job measures now, lowest id first: open ones never measured,
    changed since they were measured (an action sets tickets.updated_at), or whose clock
    may have reached its next threshold (`next_check_at`); and resolved or withdrawn ones
    (within LOOKBACK) not measured since they stopped."""
    query = (
        select(Ticket.ticket_id)
        .outerjoin(TicketSla, TicketSla.ticket_id == Ticket.ticket_id)
        .where(or_(Ticket.status.in_([str(s) for s in _ACTIVE]),
                   and_(Ticket.status.in_([str(s) for s in _DONE]), Ticket.created_at >= now - LOOKBACK)),
               or_(TicketSla.ticket_id.is_(None), Ticket.updated_at > TicketSla.updated_at,
                   and_(TicketSla.settled.is_(False), TicketSla.next_check_at <= now)))
        .order_by(Ticket.ticket_id)
        .limit(limit)
    )
    return list(session.scalars(query))


def check(session: Session, ticket_id: int, *, settings: Settings, now: datetime) -> list[Owed]:
    """Measure one ticket, store its clocks, and say which notices it owes now.

    Args:
        session: the job's transaction for this ticket (flushed, not committed).
        ticket_id: the ticket.
        settings: SLA_TARGETS, BUSINESS_HOURS, the teams' channels.
        now: the clock reading.

    Returns:
        The warnings and breaches owed to the team's channel: their flags are set in
        this transaction, so the caller writes them in it too.
    """
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return []
    actions = session.scalars(
        select(ActionHistory).where(ActionHistory.ticket_id == ticket_id)
        .order_by(ActionHistory.executed_at, ActionHistory.id)
    ).all()
    clock_ = measure(ticket, actions, settings, now)
    response_target, resolution_target = settings.sla_targets[clock_.priority]
    # A ticket met for the first time more than BACKLOG after intake (the backlog when
    # the job first runs) is measured and flagged in silence: no flood of old breaches.
    announce = (session.get(TicketSla, ticket_id) is not None
                or as_utc(ticket.created_at) >= now - BACKLOG)
    row = _row(session, ticket, clock_, settings, now)
    row.priority = clock_.priority
    row.team = teamwork.team_of(ticket, settings)[:100]
    row.response_target_s = int(response_target.total_seconds())
    row.resolution_target_s = int(resolution_target.total_seconds())
    row.first_response_at = clock_.first_response_at
    row.response_s = clock_.response_s if clock_.responded else None
    fixed = ticket.status == TicketStatus.RESOLVED
    row.resolution_s = clock_.resolution_s if fixed else None
    row.elapsed_s = clock_.resolution_s
    row.settled = clock_.resolved
    row.next_check_at = None
    row.updated_at = now
    session.flush()
    owed: list[Owed] = []
    if ticket.status == TicketStatus.CLOSED:
        return owed  # withdrawn: nobody is to hurry
    for target, seconds, limit, stopped in (
        (Target.RESPONSE, clock_.response_s, row.response_target_s, clock_.responded),
        (Target.RESOLUTION, clock_.resolution_s, row.resolution_target_s, clock_.resolved),
    ):
        stage = _stage(seconds, limit)
        if stage is None:
            continue
        # A clock that stopped late is marked, not announced: the work is done.
        if _mark(session, ticket_id, target, stage, now) and not stopped and announce:
            channel = teamwork.channel_of(ticket, settings)
            if channel is not None:
                owed.append(Owed(ticket_id=ticket_id, team=row.team, channel=channel, target=target,
                                 stage=stage, priority=clock_.priority, elapsed_s=seconds, target_s=limit,
                                 business_hours=settings.business_hours is not None
                                 and clock_.priority != SlaPriority.CRITICAL))
    if not clock_.resolved:
        session.expire(row, list(_FLAGS.values()))  # as the conditional UPDATEs left them
        row.next_check_at = _next_check(row, clock_, now)
        session.flush()
    return owed


def _next_check(row: TicketSla, clock_: Clock, now: datetime) -> datetime | None:
    """The earliest a running clock can reach a threshold it has not been flagged for."""
    left: list[float] = []
    for seconds, limit, stopped, warned, breached in (
        (clock_.response_s, row.response_target_s, clock_.responded, row.response_warned_at,
         row.response_breached_at),
        (clock_.resolution_s, row.resolution_target_s, clock_.resolved, row.resolution_warned_at,
         row.resolution_breached_at),
    ):
        if stopped:
            continue
        if warned is None:
            left.append(WARN_AT * limit - seconds)
        if breached is None:
            left.append(limit - seconds)
    ahead = [value for value in left if value > 0]
    if not ahead:
        return None if not left else now
    return now + timedelta(seconds=min(ahead))


def _stage(seconds: int, limit: int) -> Stage | None:
    if seconds >= limit:
        return Stage.BREACH
    if seconds >= WARN_AT * limit:
        return Stage.WARNING
    return None


def _row(session: Session, ticket: Ticket, clock_: Clock, settings: Settings, now: datetime) -> TicketSla:
    row = session.get(TicketSla, ticket.ticket_id)
    if row is not None:
        return row
    # Two job runs may both find no row: the second insert fails in its savepoint and
    # that run goes on with the first one's row.
    try:
        with session.begin_nested():
            session.add(TicketSla(ticket_id=ticket.ticket_id, priority=clock_.priority,
                                  team=teamwork.team_of(ticket, settings)[:100],
                                  started_at=as_utc(ticket.created_at), response_target_s=0,
                                  resolution_target_s=0, elapsed_s=0, settled=False, updated_at=now))
    except IntegrityError:
        pass
    row = session.get(TicketSla, ticket.ticket_id, populate_existing=True)
    assert row is not None
    return row


_FLAGS = {
    (Target.RESPONSE, Stage.WARNING): "response_warned_at",
    (Target.RESPONSE, Stage.BREACH): "response_breached_at",
    (Target.RESOLUTION, Stage.WARNING): "resolution_warned_at",
    (Target.RESOLUTION, Stage.BREACH): "resolution_breached_at",
}


def _mark(session: Session, ticket_id: int, target: Target, stage: Stage, now: datetime) -> bool:
    """Set the flag of this stage (and, for a breach, the warning's) if it is unset;
    True when this call set it, so the caller alone owes the notice."""
    flag = getattr(TicketSla, _FLAGS[(target, stage)])
    values: dict[str, Any] = {_FLAGS[(target, stage)]: now}
    if stage == Stage.BREACH:
        # A breach found before its warning was sent (the job was off) says it all.
        warned = _FLAGS[(target, Stage.WARNING)]
        values[warned] = func.coalesce(getattr(TicketSla, warned), now)
    changed = rowcount(session.execute(
        update(TicketSla).where(TicketSla.ticket_id == ticket_id, flag.is_(None)).values(**values)
        .execution_options(synchronize_session=False)
    ))
    return bool(changed)


# Stats ---------------------------------------------------------------------------------


def ticket_sla(session: Session, ticket_id: int) -> TicketSla | None:
    """The ticket's SLA clock as the check_sla job last measured it (None: not yet)."""
    return session.get(TicketSla, ticket_id)


@dataclass(frozen=True)
class SlaRow:
    """One team and priority over the stats window."""

    team: str
    priority: str
    tickets: int
    response_met: int
    response_breached: int
    resolution_met: int
    resolution_breached: int
    median_response_s: float | None
    median_resolution_s: float | None


def sla_stats(session: Session, *, since: datetime) -> tuple[SlaRow, ...]:
    """Met and breached targets per team and priority, and the median times, for the
    tickets opened since `since` (as the `check_sla` job last measured them).

    Met: the clock stopped within its target. Breached: it stopped past its target, or
    it still runs past it. Medians are over the stopped clocks, from histograms: within
    4.4% of the exact median, exact up to 25 s (bot.domain.sla_rollup). Whole UTC days
    come from the rollup the jobs keep, the rest of the window is counted live, so a
    window of 365 days costs about what one of a day does.
    """
    with rollup.without_parallel_workers(session):
        groups = sla_rollup.window_groups(session, since)
    order = {p.value: n for n, p in enumerate(SlaPriority)}
    rows = [SlaRow(team=g.team, priority=g.priority, tickets=g.counts[0], response_met=g.counts[1],
                   response_breached=g.counts[2], resolution_met=g.counts[3], resolution_breached=g.counts[4],
                   median_response_s=g.median(False), median_resolution_s=g.median(True))
            for g in groups]
    return tuple(sorted(rows, key=lambda r: (r.team.casefold(), order.get(r.priority, 9))))
