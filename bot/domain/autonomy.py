"""The autonomy switch: whether the bot may act alone, and what it would have done.

Three modes (`models.AutonomyMode`), changed by an admin with /autonomy:
- `on`: the bot acts alone within the caps, on the action types AUTONOMOUS_ACTIONS names;
- `paused`: no autonomous act; every ticket goes to human triage with the bot's
  suggestion kept;
- `shadow`: the bot decides as if it were on, records what it would have done
  (`shadow_decisions`), and acts as triage; /resolution-stats compares those decisions
  with what people then did.

The mode lives in the database, so every process that decides obeys the same switch:
a decision reads it in its claim transaction (before a unit of the caps is taken) and
again in its act transaction, with the ticket locked, so a change committed before a
decision acts holds for it in every process, whatever the agent's latency. Each read
is one primary-key row. Everything here only flushes; the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.agent.answer import AgentAnswer
from bot.core import clock
from bot.core.settings import Settings
from bot.domain import audit, policy
from bot.domain.actions import PlannedAction
from models import ActionHistory, AutonomyMode, AutonomyState, PersonResolution, ShadowDecision
from models.autonomy_state import STATE_ID

# TriageCause values (bot.domain.triage_causes) the switch names in a triage's params.
CAUSE_PAUSED = "autonomy_paused"
CAUSE_SHADOW = "shadow_mode"
CAUSE_NOT_AUTONOMOUS = "action_not_autonomous"


@dataclass(frozen=True)
class Switch:
    """The autonomy switch as last set."""

    mode: AutonomyMode = AutonomyMode.ON
    reason: str = ""
    changed_by: str | None = None
    changed_at: datetime | None = None


# A new install, and what a database without the row says.
ON = Switch()


@dataclass(frozen=True)
class Change:
    """An /autonomy change: the switch before and after (equal when nothing changed)."""

    before: Switch
    after: Switch

    @property
    def changed(self) -> bool:
        return self.before.mode != self.after.mode


@dataclass(frozen=True)
class Gated:
    """A plan the switch (or AUTONOMOUS_ACTIONS) sent to triage instead of acting."""

    plan: PlannedAction
    reason: str
    # What the bot would have done alone.
    suggestion: PlannedAction
    # True in shadow mode: the suggestion is recorded as a shadow decision.
    shadow: bool = False


def current(session: Session) -> Switch:
    """The switch as stored now (read afresh, never from the session's identity map)."""
    row = session.scalars(
        select(AutonomyState).where(AutonomyState.id == STATE_ID)
        .execution_options(populate_existing=True)
    ).one_or_none()
    return _switch(row) if row is not None else ON


def change(session: Session, mode: AutonomyMode, *, actor_id: str, reason: str = "",
           now: datetime | None = None) -> Change:
    """Set the switch, audited (flushed, not committed).

    Setting the mode it already has changes nothing and audits nothing.

    Args:
        session: the request's session.
        mode: the new mode.
        actor_id: the admin (a Slack user id); checked by the caller.
        reason: the admin's words, kept with the state and in the audit.
        now: the clock reading.

    Returns:
        The switch before and after.
    """
    now = now or clock.now()
    row = _locked_row(session)
    before = _switch(row)
    if before.mode == mode:
        return Change(before, before)
    row.mode, row.reason, row.changed_by, row.changed_at = mode, reason, actor_id, now
    session.flush()
    audit.record(session, audit.AUTONOMY_CHANGED, actor_id=actor_id, now=now,
                 detail={"mode": str(mode), "previous": str(before.mode), "reason": reason})
    return Change(before, _switch(row))


def gate(planned: PlannedAction, switch: Switch, *, settings: Settings,
         answer: AgentAnswer | None) -> Gated | None:
    """Whether a plan to act alone may go ahead, as far as the switch and AUTONOMOUS_ACTIONS
    say (the caps come after). A plan that is not autonomous passes untouched.

    Returns:
        None when it may go ahead; else the triage to take instead.
    """
    if not planned.autonomous:
        return None
    if planned.action_type not in settings.autonomous_actions:
        reason = f"{planned.action_type} may not act alone here (AUTONOMOUS_ACTIONS)"
        cause = CAUSE_NOT_AUTONOMOUS
    elif switch.mode == AutonomyMode.PAUSED:
        # The admin's own reason stays with the admins (status, App Home, the alerts
        # channel): this sentence reaches the requester.
        reason = "autonomy is paused by an admin"
        cause = CAUSE_PAUSED
    elif switch.mode == AutonomyMode.SHADOW:
        reason = "the bot is in shadow mode: people decide, with its suggestion"
        cause = CAUSE_SHADOW
    else:
        return None
    triaged = policy.triage(reason, settings=settings, answer=answer, suggestion=planned, cause=cause)
    return Gated(triaged, reason, planned, shadow=cause == CAUSE_SHADOW)


def record_shadow(session: Session, action: ActionHistory, suggestion: PlannedAction, *,
                  now: datetime) -> ShadowDecision:
    """Record what the bot would have done, beside the triage `action` it took (flushed)."""
    row = ShadowDecision(ticket_id=action.ticket_id, action_id=action.id,
                         action_type=suggestion.action_type, team=suggestion.params.get("team"),
                         confidence_score=suggestion.confidence, decided_at=now)
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class ShadowRow:
    """Shadow decisions of one action type, and what people then did with those tickets."""

    action_type: str
    decisions: int
    # A person resolved the ticket afterwards; in the team the bot named; and the
    # requester said it worked.
    resolved_by_people: int
    same_team: int
    confirmed: int


@dataclass(frozen=True)
class ShadowComparison:
    """The shadow decisions in a window, per action type the bot would have taken."""

    days: int
    rows: tuple[ShadowRow, ...] = ()

    @property
    def decisions(self) -> int:
        return sum(row.decisions for row in self.rows)


def shadow_comparison(session: Session, *, days: int, now: datetime | None = None) -> ShadowComparison:
    """What the bot would have done in shadow mode in the last `days` days, beside what
    people did with the same tickets (their resolutions after the decision)."""
    since = (now or clock.now()) - timedelta(days=days)
    later = and_(PersonResolution.ticket_id == ShadowDecision.ticket_id,
                 PersonResolution.created_at >= ShadowDecision.decided_at)
    resolved = exists().where(later)
    same_team = exists().where(later, PersonResolution.team == ShadowDecision.team)
    confirmed = exists().where(later, PersonResolution.resolution_confirmed.is_(True))
    counted = session.execute(
        select(
            ShadowDecision.action_type,
            func.count(),
            _count_where(resolved),
            _count_where(same_team),
            _count_where(confirmed),
        )
        .where(ShadowDecision.decided_at >= since)
        .group_by(ShadowDecision.action_type)
        .order_by(ShadowDecision.action_type)
    ).all()
    return ShadowComparison(days, tuple(ShadowRow(*row) for row in counted))


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _locked_row(session: Session) -> AutonomyState:
    """The state's row, written first if missing, locked for this transaction."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(AutonomyState).values(id=STATE_ID, mode=AutonomyMode.ON, reason="")
                    .on_conflict_do_nothing(index_elements=["id"]))
    return session.scalars(
        select(AutonomyState).where(AutonomyState.id == STATE_ID).with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _switch(row: AutonomyState) -> Switch:
    return Switch(AutonomyMode(row.mode), row.reason or "", row.changed_by, row.changed_at)

