"""/autonomy after the admin check: the status as the admin sees it, and a change with
the announcement it owes ALERTS_CHANNEL (an outbox row written in the change's
transaction, sent after the acknowledgement commits it); the same for
`/autonomy experiment [status|stop]` (THRESHOLD_EXPERIMENT).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk import WebClient
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot import views
from bot.agent.answer import clean_text
from bot.core import clock
from bot.delivery import outbox
from bot.domain import autonomy, experiment_stats, experiments
from bot.domain.experiment_stats import ExperimentResults
from bot.views.autonomy import REASON_LIMIT
from bot.workflows.runtime import Runtime
from models import AutonomyMode, transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Switched:
    """A change and the outbox rows announcing it (none when nothing changed)."""

    change: autonomy.Change
    owed: list[int]


def status(session: Session, runtime: Runtime) -> tuple[str, list]:
    """`/autonomy status`: the mode, each cap's use, and which types may act alone."""
    return views.autonomy_status(autonomy.current(session), runtime.budget.windows(),
                                 runtime.settings.autonomous_actions)


def switch(session: Session, runtime: Runtime, mode: AutonomyMode, *, actor_id: str,
           reason: str = "") -> Switched:
    """Set the mode (audited) and write its announcement to ALERTS_CHANNEL, in the
    caller's transaction (flushed, not committed)."""
    now = clock.now()
    change = autonomy.change(session, mode, actor_id=actor_id,
                             reason=clean_text(reason, REASON_LIMIT, one_line=True), now=now)
    channel = runtime.settings.alerts_channel
    if not change.changed or not channel:
        return Switched(change, [])
    text, blocks = views.autonomy_announcement(change)
    row = outbox.enqueue(session, purpose=outbox.NOTICE, channel=channel, text=text, blocks=blocks, now=now)
    return Switched(change, [row.id])


def announce(runtime: Runtime, client: WebClient, owed: list[int]) -> None:
    """Send the announcement right after the commit (the delivery job retries it)."""
    outbox.deliver(runtime.sessions, client, owed, ttl=runtime.settings.claim_ttl)


@dataclass(frozen=True)
class ExperimentStopped:
    """An admin's stop: the stopped experiment's results (None when none was running)
    and the outbox rows announcing it."""

    results: ExperimentResults | None
    owed: list[int]


def experiment_status(session: Session) -> tuple[str, list]:
    """`/autonomy experiment`: the latest experiment's results, running or stopped."""
    latest = experiments.latest(session)
    return views.experiment_status(experiment_stats.results(session, latest) if latest else None)


def stop_experiment(session: Session, runtime: Runtime, *, actor_id: str,
                    reason: str = "") -> ExperimentStopped:
    """Stop the running experiment (audited) and write its announcement to
    ALERTS_CHANNEL, in the caller's transaction (flushed, not committed)."""
    now = clock.now()
    stopped = experiments.stop(session, actor_id=actor_id, now=now,
                               reason=clean_text(reason, REASON_LIMIT, one_line=True))
    if stopped is None:
        return ExperimentStopped(None, [])
    results = experiment_stats.results(session, stopped)
    channel = runtime.settings.alerts_channel
    if not channel:
        return ExperimentStopped(results, [])
    text, blocks = views.experiment_announcement(stopped)
    row = outbox.enqueue(session, purpose=outbox.NOTICE, channel=channel, text=text, blocks=blocks, now=now)
    return ExperimentStopped(results, [row.id])


def reconcile_experiment(runtime: Runtime) -> None:
    """At startup: start or stop the experiment as THRESHOLD_EXPERIMENT says (else the
    next decision does). A database that cannot be read yet is logged, not fatal."""
    try:
        with transaction(runtime.sessions) as session:
            experiments.reconcile(session, runtime.settings, now=clock.now())
    except SQLAlchemyError as error:
        log.warning("THRESHOLD_EXPERIMENT not checked at startup (%s); the next decision checks it",
                    type(error).__name__)
