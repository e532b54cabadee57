"""A/B experiments on AUTONOMY_THRESHOLD (THRESHOLD_EXPERIMENT=0.75,0.85).

An experiment is a `threshold_experiments` row. A process that finds the variable set
and no experiment running with those arms starts one, at startup or at its next
decision; one that finds it unset (or set to other arms) stops the running one, with
the cause recorded and audited. An admin stops one with `/autonomy experiment stop`;
the same arms are then not started again by the same setting (change or unset it to
run another). Every process should therefore share the setting, as they share the
other thresholds.

A ticket's arm is `arms[sha256("<experiment id>:<ticket id>") % len(arms)]`: the same in
every process and after every restart (Python's `hash()` is salted per process), about
evenly spread, and independent between experiments. The arm is the ticket's
AUTONOMY_THRESHOLD for every decision on it while the experiment runs, and each of
those decisions records the experiment and the arm (`action_history.experiment_id`,
`threshold_arm`). Everything here only flushes; the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.core.settings import Settings
from bot.domain import audit
from models import ExperimentStop, ThresholdExperiment, as_utc, rowcount

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Experiment:
    """An experiment as stored (a plain value: safe to keep past its session)."""

    id: int
    arms: tuple[float, ...]
    started_at: datetime
    stopped_at: datetime | None = None
    # The admin who stopped it; None when a process did (or it runs).
    stopped_by: str | None = None
    stop_cause: str | None = None  # an ExperimentStop
    stop_reason: str = ""

    @property
    def running(self) -> bool:
        return self.stopped_at is None


@dataclass(frozen=True)
class Arm:
    """The arm a ticket's decision uses: its experiment and threshold."""

    experiment_id: int
    threshold: float


def encode_arms(arms: Sequence[float]) -> str:
    """The arms as stored: `0.75,0.85` (each `repr(float)`, so equal arms compare equal)."""
    return ",".join(repr(float(arm)) for arm in arms)


def decode_arms(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(","))


def arm_index(ticket_id: int, experiment_id: int, arms: int) -> int:
    """Which of `arms` arms a ticket is in: stable across processes and restarts."""
    digest = hashlib.sha256(f"{experiment_id}:{ticket_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % arms


def arm_of(experiment: Experiment, ticket_id: int) -> Arm:
    """The ticket's arm in `experiment`."""
    return Arm(experiment.id, experiment.arms[arm_index(ticket_id, experiment.id, len(experiment.arms))])


def running(session: Session) -> Experiment | None:
    """The experiment running now, if any (one indexed row, read afresh)."""
    row = session.scalars(
        select(ThresholdExperiment).where(ThresholdExperiment.running.is_(True))
        .execution_options(populate_existing=True)
    ).one_or_none()
    return _experiment(row) if row is not None else None


def latest(session: Session) -> Experiment | None:
    """The newest experiment, running or stopped (what `/autonomy experiment` shows)."""
    row = session.scalars(
        select(ThresholdExperiment).order_by(ThresholdExperiment.id.desc()).limit(1)
        .execution_options(populate_existing=True)
    ).first()
    return _experiment(row) if row is not None else None


def reconcile(session: Session, settings: Settings, *, now: datetime) -> Experiment | None:
    """Make the stored experiment agree with THRESHOLD_EXPERIMENT (flushed, not committed).

    Nothing is written when they agree (the usual case: one indexed read). Unset, or
    set to other arms: the running experiment is stopped (audited, cause recorded). Set
    and none running with those arms: one is started, unless the newest experiment had
    the same arms and an admin stopped it.

    Returns:
        The experiment decisions should use now, or None.
    """
    wanted = settings.threshold_experiment
    current = running(session)
    if current is not None and current.arms == wanted:
        return current
    if current is not None:
        cause = ExperimentStop.CHANGED if wanted else ExperimentStop.UNSET
        reason = (f"THRESHOLD_EXPERIMENT is now {encode_arms(wanted)}" if wanted
                  else "THRESHOLD_EXPERIMENT is unset")
        _stop(session, current, cause=cause, actor_id=None, reason=reason, now=now)
    if not wanted:
        return None
    last = latest(session)
    if last is not None and last.arms == wanted and last.stop_cause == ExperimentStop.ADMIN:
        return None
    return _start(session, wanted, now=now)


def arm_for_decision(session: Session, settings: Settings, ticket_id: int, *, now: datetime) -> Arm | None:
    """The ticket's arm for the decision about to be taken, after `reconcile`; None
    when no experiment runs (the decision uses AUTONOMY_THRESHOLD)."""
    experiment = reconcile(session, settings, now=now)
    return arm_of(experiment, ticket_id) if experiment is not None else None


def stop(session: Session, *, actor_id: str, reason: str = "", now: datetime) -> Experiment | None:
    """An admin's stop of the running experiment, audited (flushed, not committed).

    Returns:
        The experiment as stopped, or None when none was running.
    """
    current = running(session)
    if current is None:
        return None
    return _stop(session, current, cause=ExperimentStop.ADMIN, actor_id=actor_id, reason=reason, now=now)


def _start(session: Session, arms: tuple[float, ...], *, now: datetime) -> Experiment | None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # At most one runs (`running` is unique): a process that loses the race reads the winner's.
    created = rowcount(session.execute(
        insert(ThresholdExperiment)
        .values(arms=encode_arms(arms), started_at=now, running=True, stop_reason="")
        .on_conflict_do_nothing(index_elements=["running"])
    ))
    started = running(session)
    if created and started is not None:
        log.info("threshold experiment %s started: arms %s", started.id, encode_arms(arms))
        audit.record(session, audit.EXPERIMENT_STARTED, actor_id=None, now=now,
                     detail={"experiment": started.id, "arms": list(arms)})
    if started is None or started.arms != arms:
        return None
    return started


def _stop(session: Session, experiment: Experiment, *, cause: ExperimentStop, actor_id: str | None,
          reason: str, now: datetime) -> Experiment | None:
    stopped = rowcount(session.execute(
        update(ThresholdExperiment)
        .where(ThresholdExperiment.id == experiment.id, ThresholdExperiment.running.is_(True))
        .values(running=None, stopped_at=now, stopped_by=actor_id, stop_cause=cause, stop_reason=reason)
        .execution_options(synchronize_session=False)
    ))
    if not stopped:  # another process or admin stopped it first
        return None
    log.info("threshold experiment %s stopped (%s)", experiment.id, cause)
    audit.record(session, audit.EXPERIMENT_STOPPED, actor_id=actor_id, now=now,
                 detail={"experiment": experiment.id, "arms": list(experiment.arms), "cause": str(cause),
                         "reason": reason})
    return Experiment(experiment.id, experiment.arms, experiment.started_at, now, actor_id, cause, reason)


def _experiment(row: ThresholdExperiment) -> Experiment:
    return Experiment(row.id, decode_arms(row.arms), as_utc(row.started_at), as_utc(row.stopped_at),
                      row.stopped_by, row.stop_cause, row.stop_reason or "")
