"""A decision on one ticket, with no transaction open while the agent answers.

Three transactions at most, each short: the claim; the act (with what it owes Slack,
written by the caller's `owe`); or, when the decision fails, the failure record. The
agent is asked between the first two with no connection held, so a slow agent (an
HTTP service with retries, an LLM) keeps neither a pooled connection idle in a
transaction nor, on SQLite, the write lock every other request needs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session, sessionmaker

from bot.agent import Agent
from bot.core import clock
from bot.core.settings import Settings
from bot.domain import autonomy, experiments, processing
from bot.domain.processing import Claim, Decision, Outcome
from bot.domain.ratelimit import AutonomyBudget
from models import transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decided:
    """A decision's outcome and what `owe` returned in the act's transaction."""

    outcome: Outcome
    owed: list[Any] = field(default_factory=list)


def decide_ticket(
    sessions: sessionmaker[Session],
    ticket_id: int,
    *,
    agent: Agent,
    budget: AutonomyBudget,
    settings: Settings,
    owe: Callable[[Session, Outcome], list[Any]] | None = None,
    statuses: Collection[str] = processing.NEW_ONLY,
    when: ColumnElement[bool] | None = None,
    decide: Callable[[Claim], Decision] | None = None,
) -> Decided:
    """Claim, decide and act on one ticket.

    Args:
        sessions: the session factory; each step is a transaction of its own.
        ticket_id: the ticket.
        agent: who analyses it.
        budget: the autonomy caps.
        settings: thresholds, teams, the claim's lifetime (CLAIM_TTL).
        owe: called in the act's transaction with its outcome, to write what the act
            owes (the outbox rows announcing it); its result is returned as `owed`.
        statuses: the statuses the ticket may be decided from.
        when: a further condition for the claim (a reply waits for a decision, say).
        decide: what decides in place of the agent and the policy (a clarification that
            timed out goes to people without asking the agent again).

    Returns:
        The outcome (`already_processed` when another worker decided or is deciding).

    Raises:
        NotFound: no such ticket.
        Exception: the decision failed; the failure is recorded and the ticket left for
            the sweep to try again. The attempt that fails for the MAX_ATTEMPTS-th time
            sends the ticket to human triage instead and returns normally.
    """
    with transaction(sessions) as session:
        claim = processing.claim_ticket(session, ticket_id, now=clock.now(), ttl=settings.claim_ttl,
                                        statuses=statuses, when=when)
        if claim is None:
            return Decided(processing.unclaimed(session, ticket_id))
        # The autonomy switch as stored now, in every process (act reads it again).
        switch = autonomy.current(session)
        # The ticket's THRESHOLD_EXPERIMENT arm (starting or stopping the experiment when
        # the setting and the stored one disagree).
        arm = experiments.arm_for_decision(session, settings, ticket_id, now=clock.now())
    calls = processing.CallLog()
    try:
        if decide is not None:
            decision = decide(claim)
        else:
            decision = processing.decide(claim, agent=agent, budget=budget, settings=settings, calls=calls,
                                         switch=switch, arm=arm)
        with transaction(sessions) as session:
            outcome = processing.act(session, claim, decision, calls=calls, settings=settings,
                                     now=clock.now(), arm=arm)
            return Decided(outcome, _owed(session, outcome, owe))
    except Exception as error:
        # The per-ticket failure boundary: one ticket's failure is recorded, never
        # lost, and never stops the caller (the sweep) from deciding on the next.
        with transaction(sessions) as session:
            if claim.attempt < processing.MAX_ATTEMPTS:
                processing.record_failure(session, claim, error, calls=calls)
                gave_up = None
            else:
                log.error("deciding on ticket %s failed %d times; sending it to people",
                          ticket_id, claim.attempt, exc_info=error)
                outcome = processing.give_up(session, claim, error, calls=calls, settings=settings,
                                             now=clock.now(), arm=arm)
                gave_up = Decided(outcome, _owed(session, outcome, owe))
        if gave_up is None:
            raise
        return gave_up


def _owed(session: Session, outcome: Outcome, owe: Callable[[Session, Outcome], list[Any]] | None) -> list:
    return owe(session, outcome) if owe is not None and not outcome.already_processed else []
