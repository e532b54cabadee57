"""One pass of every periodic job: what beat schedules, `jobs run-once` and the
embedded scheduler run. Each job is idempotent and safe to run in many processes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from slack_sdk import WebClient

from bot.core import clock
from bot.core.settings import Settings
from bot.delivery import outbox
from bot.domain import conversation, retention, rollup, sla_rollup, sweep
from bot.domain.processing import Outcome
from bot.domain.surveys import Surveys
from bot.workflows import alerts, announce, approvals, audit_anchor, backup_schedule, sla
from bot.workflows.runtime import Runtime
from models import read_transaction, transaction

log = logging.getLogger(__name__)

# Bounded work per pass, so one pass never runs for long; the next pass continues.
MAX_BATCHES = 20


def sweep_new_tickets(runtime: Runtime, client: WebClient) -> int:
    """Decide on tickets left `new` by a process that died or a decision that failed, and
    on requesters' replies and added detail left undecided the same way; returns how many were decided.

    One ticket failing never stops the ones behind it: its failure is recorded (after
    three, it goes to people) and the sweep goes on.
    """
    now, grace = clock.now(), runtime.settings.sweep_grace
    with read_transaction(runtime.sessions) as session:
        ids = sweep.stale_new_tickets(session, now=now, grace=grace)
        replied = conversation.stale_replies(session, now=now, grace=grace)
    return (_each(runtime, client, ids, announce.decide_and_announce, "sweep")
            + _each(runtime, client, replied, announce.redecide_waiting, "sweep (a reply or detail)"))


def expire_clarifications(runtime: Runtime, client: WebClient) -> int:
    """Send to human triage the tickets whose requester did not answer the bot's
    questions within CLARIFICATION_TIMEOUT, and tell them; returns how many were sent."""
    with read_transaction(runtime.sessions) as session:
        ids = conversation.timed_out(session, now=clock.now(),
                                     timeout=runtime.settings.clarification_timeout)
    return _each(runtime, client, ids, announce.time_out_and_announce, "clarification timeout")


def _each(runtime: Runtime, client: WebClient, ids: list[int],
          decide: Callable[[Runtime, WebClient, int], Outcome], what: str) -> int:
    # One ticket failing never stops the ones behind it.
    decided = 0
    for ticket_id in ids:
        try:
            if not decide(runtime, client, ticket_id).already_processed:
                decided += 1
        except Exception:
            log.exception("%s: deciding on ticket %s failed; going on with the next", what, ticket_id)
    return decided


# Rows one delivery batch claims (outbox.deliver's default).
DELIVERY_BATCH = 100


def deliver_outbox(runtime: Runtime, client: WebClient, *,
                   on_backlog: Callable[[], None] | None = None) -> int:
    """Send every Slack message that is due: follow-up DMs, posts that failed, posts a
    dead process never sent, and (once Slack takes the token again) held ones; returns
    how many were sent.

    Batch after batch while rows are due, for at most JOB_INTERVAL: a backlog (a
    morning's follow-ups) drains at the speed of the senders, not one batch per tick,
    and the next tick's pass takes over what is left. `on_backlog` is called once when
    the first batch was full (more is due than one batch): the Celery task asks other
    workers to help (jobs/tasks.py).
    """
    ttl, surveys = runtime.settings.claim_ttl, Surveys.of(runtime.settings)
    released = outbox.release_held(runtime.sessions, client, ttl=ttl, surveys=surveys)
    budget = runtime.settings.job_interval.total_seconds()
    started, total, first = time.monotonic(), 0, True
    while True:
        sent = outbox.deliver(runtime.sessions, client, ttl=ttl, limit=DELIVERY_BATCH,
                              surveys=surveys)
        total += sent
        if first and sent >= DELIVERY_BATCH and on_backlog is not None:
            on_backlog()
        first = False
        if not sent or time.monotonic() - started >= budget:
            return released + total


def evaluate_alerts(runtime: Runtime, client: WebClient) -> int:
    """Evaluate every alert rule and post what it owes; returns how many notices were
    owed. Off (0, nothing evaluated) without ALERTS_CHANNEL: `alerts.off_reason`."""
    from bot.core import observability
    from bot.views.alerts import NoticeKind

    if alerts.off_reason(runtime.settings):
        return 0

    def to_sentry(notice) -> None:
        level = "error" if notice.kind != NoticeKind.RESOLVED else "info"
        observability.capture_alert(notice.rule, notice.text, level=level, value=None)

    return len(alerts.run_alerts(runtime.sessions, client, runtime.settings, on_notice=to_sentry))


def expire_rollback_requests(runtime: Runtime, client: WebClient) -> int:
    """Expire rollback requests nobody decided within ROLLBACK_APPROVAL_TTL (their
    messages say so, the askers are told) and redraw approvals messages that lag their
    request; returns how many expired. Runs in every mode: requests made in two-person
    mode still expire after a switch back to `none`."""
    return approvals.expire_requests(runtime, client)


def anchor_audit_chain(runtime: Runtime, client: WebClient) -> int:
    """Post the audit chain's head to AUDIT_CHANNEL if the last post is a day old;
    returns 1 when one was owed."""
    return audit_anchor.post_anchor(runtime.sessions, client, runtime.settings)


def redact_old_text(runtime: Runtime, client: WebClient) -> int:
    """Blank free text older than RETENTION_DAYS (bot.domain.retention); returns how
    many rows were redacted."""
    days = runtime.settings.retention_days
    if days is None:
        return 0
    now = clock.now()

    def step() -> int:
        with transaction(runtime.sessions) as session:
            return sum(retention.redact(session, cutoff=now - timedelta(days=days), now=now).values())

    return _batches(step)


def backup_on_schedule(runtime: Runtime, client: WebClient) -> int:
    """Make, verify and prune a backup in BACKUP_DIR if one is due; returns 1 when one
    was attempted (its outcome is an audit event, a failure an alert)."""
    return backup_schedule.run_scheduled_backup(runtime)


def check_sla(runtime: Runtime, client: WebClient) -> int:
    """Measure open tickets against SLA_TARGETS; warn their teams at 80% of a target and
    tell them of a breach, once each (bot.workflows.sla); returns how many notices."""
    return sla.check_sla(runtime, client)


def roll_up_stats(runtime: Runtime, client: WebClient) -> int:
    """Keep the stats rollups (bot.domain.rollup; bot.domain.sla_rollup for the SLA
    table): roll the days whose figures changed and the hours ended since; returns how
    many days were rolled. A few days per transaction, so a first pass over a year of
    history never holds the lock long; what is left is counted live until the next pass."""
    now = clock.now()

    def step() -> int:
        with transaction(runtime.sessions) as session:
            return rollup.roll_up(session, now=now) + sla_rollup.roll_up(session, now=now)

    return _batches(step)


JOBS: dict[str, Callable[[Runtime, WebClient], int]] = {
    "sweep_new_tickets": sweep_new_tickets,
    "deliver_outbox": deliver_outbox,
    "evaluate_alerts": evaluate_alerts,
    "expire_rollback_requests": expire_rollback_requests,
    "expire_clarifications": expire_clarifications,
    "anchor_audit_chain": anchor_audit_chain,
    "redact_old_text": redact_old_text,
    "backup_on_schedule": backup_on_schedule,
    "check_sla": check_sla,
    "roll_up_stats": roll_up_stats,
}
# The jobs that need a setting, and what says why they are off without it.
_OPTIONAL: dict[str, Callable[[Settings], str | None]] = {
    "evaluate_alerts": alerts.off_reason,
    "anchor_audit_chain": audit_anchor.off_reason,
    "redact_old_text": lambda settings: None if settings.retention_days else "RETENTION_DAYS unset",
    "backup_on_schedule": backup_schedule.off_reason,
}


def jobs_for(settings: Settings) -> dict[str, Callable[[Runtime, WebClient], int]]:
    """The jobs these settings run: all of JOBS, but alerts only with ALERTS_CHANNEL,
    anchors only with AUDIT_CHANNEL, redaction only with RETENTION_DAYS and backups only
    with BACKUP_DIR.

    Args:
        settings: the process's settings.

    Returns:
        The jobs by name, in the order they run.
    """
    return {name: job for name, job in JOBS.items()
            if name not in _OPTIONAL or _OPTIONAL[name](settings) is None}


def startup_notes(settings: Settings) -> list[str]:
    """What a process that runs jobs says once at startup about the ones it will not run."""
    reason = alerts.off_reason(settings)
    return [reason] if reason else []


def run_once(runtime: Runtime, client: WebClient) -> dict[str, int | str]:
    """Run every job these settings run (`jobs_for`) once; one job failing does not stop
    the others."""
    results: dict[str, int | str] = {}
    for name, job in jobs_for(runtime.settings).items():
        try:
            results[name] = job(runtime, client)
        except Exception as error:
            log.exception("periodic job %s failed", name)
            results[name] = f"error: {type(error).__name__}"
    return results


def _batches(step: Callable[[], int]) -> int:
    total = 0
    for _ in range(MAX_BATCHES):
        done = step()
        total += done
        if not done:
            break
    return total
