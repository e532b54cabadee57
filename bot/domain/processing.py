"""Deciding on a ticket in three steps, so no transaction is open while the agent answers.

1. `claim_ticket` (a short transaction of the caller's): one conditional UPDATE marks
   the ticket as being decided by this worker until an expiry. It is atomic on both
   backends without FOR UPDATE, so two workers handed the same ticket never both get
   it; a worker that dies leaves a claim that expires, and the sweep takes over.
2. `decide` (no session at all): ask the agent, check its answer and the plan, and
   only then take a unit of the autonomy caps, so a failure before acting spends none.
3. `act` (a second short transaction): if the claim is still this worker's, write the
   agent's calls, the action and what it owes, and clear the claim.

A decision that fails unexpectedly is recorded by `record_failure`; a ticket whose
decision failed MAX_ATTEMPTS times goes to human triage with the reason. The caller
(bot.workflows.decision) owns the transactions; everything here only flushes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, exists, or_, select, update
from sqlalchemy.orm import Session

from bot.agent.answer import Agent, AgentAnswer, AgentUnavailable, MalformedAnswer, TicketInput, clean_text
from bot.core import clock
from bot.core.errors import NotFound
from bot.core.settings import Settings
from bot.domain import actions, audit, autonomy, conversation, experiments, policy
from bot.domain.actions import PlannedAction
from bot.domain.ratelimit import AutonomyBudget, CapCheck
from models import ActionHistory, ActionType, AgentCall, Ticket, TicketMessage, TicketStatus, rowcount
from models.ticket import DECISION_ERROR_LENGTH

log = logging.getLogger(__name__)

# Failed attempts after which a ticket goes to people instead of the agent again.
MAX_ATTEMPTS = 3
# What a ticket is decided from at intake. A re-decision (the requester added detail)
# passes its own statuses to `claim_ticket`.
NEW_ONLY = frozenset({TicketStatus.NEW})
DIED = "the worker deciding on it stopped before it finished"
# Triage causes (bot.domain.triage_causes) the clarification loop names in its params:
# the policy working as set, not a failure.

ROUNDS_CAUSE = "clarification_rounds"
NO_REPLY_CAUSE = "clarification_timeout"


@dataclass(frozen=True)
class Outcome:
    """What happened to a ticket."""

    ticket: Ticket
    action: ActionHistory | None
    answer: AgentAnswer | None
    plan: PlannedAction | None
    # Set when the bot did not act alone, with the reason people are shown.
    triage_reason: str | None = None
    # True when this call did not decide on the ticket: it had been decided on before,
    # or another worker holds its claim.
    already_processed: bool = False


@dataclass(frozen=True)
class Claim:
    """This worker's claim on one ticket, and what the agent is told about it."""

    ticket_id: int
    token: str
    until: datetime
    # This attempt's number (1 for the first claim ever taken on the ticket).
    attempt: int
    # Why the attempt before this one failed ("" when none did).
    last_error: str
    ticket: TicketInput
    # The requester's replies this decision takes into account (bot.domain.conversation),
    # and the rounds of replies so far, this one included.
    replies: tuple[int, ...] = ()
    rounds: int = 0

    @property
    def failed_before(self) -> int:
        """Attempts before this one: each ended without deciding, or it would not be claimable."""
        return self.attempt - 1


@dataclass(frozen=True)
class Decision:
    """What the bot will do with a claimed ticket, decided with no transaction open."""

    plan: PlannedAction
    answer: AgentAnswer | None = None
    triage_reason: str | None = None
    # What the bot would have done when the caps refused it (kept for the humans).
    suggestion: PlannedAction | None = None
    # The cap check that refused autonomy (audited with the act).
    refusal: CapCheck | None = None
    # Shadow mode: `suggestion` is recorded as what the bot would have done.
    shadow: bool = False


@dataclass
class CallLog:
    """The agent's calls for one decision, kept in memory until a transaction writes them.

    Passed to the agent as its `record` callback; `act` and `record_failure` write them,
    so a decision that fails still leaves them for the agent-error alert.
    """

    calls: list[dict] = field(default_factory=list)

    def __call__(self, *, agent: str, ok: bool, latency_ms: float, attempts: int, error: str) -> None:
        self.calls.append({"called_at": clock.now(), "agent": agent[:20], "ok": ok,
                           "latency_ms": latency_ms, "attempts": attempts,
                           "error": clean_text(error, 2000)})

    def write(self, session: Session, ticket_id: int) -> None:
        """Add the calls to the caller's transaction. Kept in memory: if that transaction
        rolls back, the failure record writes them again."""
        session.add_all(AgentCall(ticket_id=ticket_id, **call) for call in self.calls)


def claim_ticket(
    session: Session,
    ticket_id: int,
    *,
    now: datetime,
    ttl: timedelta,
    statuses: Collection[str] = NEW_ONLY,
    when: ColumnElement[bool] | None = None,
) -> Claim | None:
    """Claim a ticket for deciding on it, if it is claimable (flushed; commit it at once).

    Claimable: its status is one of `statuses`, `when` holds, and no live claim is held
    on it. A `new` ticket is also never decided on before (an admin's rollback back to
    `new` leaves it for a person). An expired claim is taken over: its worker died.

    Args:
        session: the caller's session; its transaction should end right after.
        ticket_id: the ticket.
        now: the clock reading.
        ttl: how long the claim holds; longer than the agent's slowest answer.
        statuses: the statuses a ticket may be decided from.
        when: a further condition on the ticket (a reply waits for a decision, say).

    Returns:
        The claim, or None when the ticket is not claimable.

    Raises:
        NotFound: no such ticket.
    """
    never_decided = and_(
        Ticket.agent_processed.is_(False),
        ~exists().where(ActionHistory.ticket_id == Ticket.ticket_id),
    )
    token, until = uuid.uuid4().hex, now + ttl
    claimed = rowcount(session.execute(
        update(Ticket)
        .where(
            Ticket.ticket_id == ticket_id,
            Ticket.status.in_([str(s) for s in statuses]),
            or_(Ticket.status != TicketStatus.NEW, never_decided),
            or_(Ticket.claimed_until.is_(None), Ticket.claimed_until <= now),
            *([when] if when is not None else []),
        )
        .values(
            claim_token=token,
            claimed_until=until,
            decision_attempts=Ticket.decision_attempts + 1,
            # A claim still on the row was never released: its worker died mid-decision.
            decision_error=case((Ticket.claim_token.is_not(None), DIED), else_=Ticket.decision_error),
        )
        .execution_options(synchronize_session=False)
    ))
    ticket = session.scalars(
        select(Ticket).where(Ticket.ticket_id == ticket_id).execution_options(populate_existing=True)
    ).one_or_none()
    if ticket is None:
        raise NotFound(f"Ticket #{ticket_id} does not exist.")
    if not claimed:
        return None
    replies = conversation.replies(session, ticket_id)
    return Claim(ticket_id=ticket_id, token=token, until=until,
                 attempt=ticket.decision_attempts, last_error=ticket.decision_error,
                 ticket=_input(ticket, replies), replies=conversation.waiting(replies),
                 rounds=conversation.rounds(replies))


def unclaimed(session: Session, ticket_id: int) -> Outcome:
    """The outcome for a ticket this worker could not claim: decided before, or being
    decided by another worker."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"Ticket #{ticket_id} does not exist.")
    return Outcome(ticket, _last_action(session, ticket_id), None, None, already_processed=True)


def decide(
    claim: Claim,
    *,
    agent: Agent,
    budget: AutonomyBudget,
    settings: Settings,
    calls: CallLog,
    switch: autonomy.Switch = autonomy.ON,
    arm: experiments.Arm | None = None,
) -> Decision:
    """Ask the agent and plan what to do; call with no transaction open.

    The autonomy unit is taken last, once the answer and the plan are known to be
    usable, so an answer that cannot be acted on never spends one. (Only an act that
    then fails, or finds its claim taken over, has spent one for nothing: the caps err
    towards less autonomy, never more.)

    Args:
        claim: this worker's claim on the ticket.
        agent: who analyses it.
        budget: the autonomy caps.
        settings: thresholds and team names.
        calls: collects the agent's calls, for the transaction that follows.
        switch: the autonomy switch as read in the claim's transaction.
        arm: the ticket's THRESHOLD_EXPERIMENT arm, its AUTONOMY_THRESHOLD here.

    Returns:
        The decision; human triage when the agent is unavailable, its answer is
        malformed, the switch or AUTONOMOUS_ACTIONS do not let it act alone, the caps
        refuse, or the ticket failed MAX_ATTEMPTS times already.
    """
    if claim.failed_before >= MAX_ATTEMPTS:
        return _gave_up(claim.failed_before, claim.last_error, settings)
    try:
        answer = agent.analyse(claim.ticket, record=calls)
    except AgentUnavailable as error:
        log.warning("agent unavailable for ticket %s: %s", claim.ticket_id, error)
        if isinstance(error, MalformedAnswer):
            # It answered, but nothing the bot may act on (off the wire format or
            # schema, or the model refused): people decide.
            reason = f"the agent's answer could not be used ({error})"
        else:
            reason = f"the agent is unavailable ({error})"
        return _triaged(clean_text(reason, 500), settings)

    planned = policy.plan(answer, settings, threshold=arm.threshold if arm is not None else None)
    actions.check(planned)
    asks = planned.action_type == ActionType.REQUEST_CLARIFICATION
    if asks and claim.rounds >= settings.clarification_rounds:
        # The requester has answered the bot's questions as often as it may ask them:
        # people take it from here, with the conversation and the bot's idea.
        reason = (f"no confident answer after {claim.rounds} rounds of questions" if claim.rounds
                  else "the bot is not sure and does not ask for detail (CLARIFICATION_ROUNDS=0)")
        triaged = policy.triage(reason, settings=settings, answer=answer, suggestion=planned)
        triaged.params[policy.CAUSE_PARAM] = ROUNDS_CAUSE
        return Decision(triaged, answer, triage_reason=reason, suggestion=planned)
    if not planned.autonomous:
        return Decision(planned, answer, triage_reason=planned.params["reason"])
    # Before the caps: a paused or shadow bot spends none of them.
    gated = autonomy.gate(planned, switch, settings=settings, answer=answer)
    if gated is not None:
        return _gated(gated, answer)
    cap = budget.try_acquire()
    if not cap.allowed:
        triaged = policy.triage(cap.reason, settings=settings, answer=answer, suggestion=planned)
        return Decision(triaged, answer, triage_reason=cap.reason, suggestion=planned, refusal=cap)
    return Decision(planned, answer)


def act(
    session: Session,
    claim: Claim,
    decision: Decision,
    *,
    calls: CallLog,
    settings: Settings,
    now: datetime,
    arm: experiments.Arm | None = None,
) -> Outcome:
    """Carry out the decision if the claim is still this worker's (flushed, not committed).

    Args:
        session: the caller's session: a transaction that starts here.
        claim: this worker's claim.
        decision: from `decide`.
        calls: the agent's calls; written whether or not the claim still holds.
        settings: for the follow-up delay.
        now: the clock reading for everything written.
        arm: the ticket's THRESHOLD_EXPERIMENT arm, recorded on the action.

    Returns:
        The outcome; `already_processed` when another worker took the claim over meanwhile
        (it acts instead, and this decision is dropped).
    """
    # Locked (SQLite: the transaction's write lock) and checked in one step: a worker
    # taking an expired claim over changes the token, and then waits for this one.
    ticket = session.scalars(
        select(Ticket)
        .where(Ticket.ticket_id == claim.ticket_id, Ticket.claim_token == claim.token)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    calls.write(session, claim.ticket_id)
    if ticket is None:
        log.info("ticket %s: claim taken over before acting; leaving it", claim.ticket_id)
        return unclaimed(session, claim.ticket_id)

    if decision.plan.autonomous:
        # The switch again, with the ticket locked: a pause committed while the agent
        # was answering holds for this decision too (its cap unit is spent for nothing,
        # erring towards less autonomy).
        gated = autonomy.gate(decision.plan, autonomy.current(session), settings=settings,
                              answer=decision.answer)
        if gated is not None:
            decision = _gated(gated, decision.answer)
    answer = decision.answer
    if answer is not None:
        ticket.agent_response = answer.to_dict()
        ticket.category = answer.category
    if decision.suggestion is not None:
        ticket.suggested_action = decision.suggestion.to_dict()
    if decision.refusal is not None:
        cap = decision.refusal
        event = audit.AUTONOMY_CAP_REACHED if cap.cap else audit.AUTONOMY_LIMITER_DOWN
        audit.record(session, event, actor_id=None, ticket_id=claim.ticket_id,
                     detail={"reason": cap.reason, "cap": cap.cap}, now=now)
    ticket.agent_processed = True
    ticket.claim_token = None
    ticket.claimed_until = None
    # Attempts count towards MAX_ATTEMPTS until the ticket is decided on; a re-decision
    # starts afresh.
    ticket.decision_attempts = 0
    row = actions.execute(session, ticket, decision.plan, now=now, followup_delay=settings.followup_delay,
                          arm=(arm.experiment_id, arm.threshold) if arm is not None else None)
    conversation.mark_decided(session, claim.replies, row.id)
    if decision.shadow and decision.suggestion is not None:
        autonomy.record_shadow(session, row, decision.suggestion, now=now)
    return Outcome(ticket, row, answer, decision.plan, triage_reason=decision.triage_reason)


def record_failure(session: Session, claim: Claim, error: BaseException, *, calls: CallLog) -> bool:
    """Record that this attempt failed and release the claim (flushed, not committed).

    The agent's calls are written, so the agent-error alert still counts them; the
    ticket stays claimable, for the sweep to try again.

    Returns:
        False when the claim was no longer this worker's (nothing is released).
    """
    calls.write(session, claim.ticket_id)
    released = rowcount(session.execute(
        update(Ticket)
        .where(Ticket.ticket_id == claim.ticket_id, Ticket.claim_token == claim.token)
        .values(claim_token=None, claimed_until=None, decision_error=describe(error))
        .execution_options(synchronize_session=False)
    ))
    return bool(released)


def describe(error: BaseException) -> str:
    """A failure as people may read it: its kind and the first line of its message
    (a database error's statement and parameters follow on later lines)."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return clean_text(f"{type(error).__name__}: {first}" if first else type(error).__name__,
                      DECISION_ERROR_LENGTH, one_line=True)


def give_up(
    session: Session, claim: Claim, error: BaseException, *, calls: CallLog, settings: Settings,
    now: datetime, arm: experiments.Arm | None = None,
) -> Outcome:
    """After the MAX_ATTEMPTS-th failure: human triage with the reason, in place of
    `record_failure` (flushed, not committed)."""
    failure = describe(error)
    outcome = act(session, claim, _gave_up(claim.attempt, failure, settings), calls=calls,
                  settings=settings, now=now, arm=arm)
    if not outcome.already_processed:
        outcome.ticket.decision_error = failure
    return outcome


def _gave_up(failures: int, last_error: str, settings: Settings) -> Decision:
    reason = f"the bot failed to decide on it {failures} times (last: {last_error or 'unknown'})"
    return _triaged(reason, settings)


def _triaged(reason: str, settings: Settings) -> Decision:
    return Decision(policy.triage(reason, settings=settings), triage_reason=reason)


def _gated(gated: autonomy.Gated, answer: AgentAnswer | None) -> Decision:
    return Decision(gated.plan, answer, triage_reason=gated.reason, suggestion=gated.suggestion,
                    shadow=gated.shadow)


def timed_out(claim: Claim, settings: Settings) -> Decision:
    """The decision on a ticket whose requester did not answer the bot's questions within
    CLARIFICATION_TIMEOUT: human triage, without asking the agent again."""
    decision = _triaged(f"no reply to the bot's questions within {_duration(settings.clarification_timeout)}",
                        settings)
    decision.plan.params[policy.CAUSE_PARAM] = NO_REPLY_CAUSE
    return decision


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        # 24 hours reads as set (CLARIFICATION_TIMEOUT=24h); two days and more in days.
        if seconds % size == 0 and seconds >= (2 * size if unit == "day" else size):
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _input(ticket: Ticket, replies: Sequence[TicketMessage] = ()) -> TicketInput:
    return TicketInput(
        ticket_id=ticket.ticket_id,
        description=conversation.conversation_text(ticket.description, replies),
        issue_type=ticket.issue_type,
        category=ticket.category,
        tags=tuple(ticket.tags or ()),
        user_id=ticket.user_id,
        user_name=ticket.user_name or "",
        department=ticket.department or "",
    )


def _last_action(session: Session, ticket_id: int) -> ActionHistory | None:
    return session.scalars(
        select(ActionHistory)
        .where(ActionHistory.ticket_id == ticket_id)
        .order_by(ActionHistory.executed_at.desc())
        .limit(1)
    ).first()
