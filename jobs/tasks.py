"""Celery tasks: thin wrappers, one service call each (bot/workflows/periodic.py).

`shared_task`, so this module binds to whichever app the worker built.
"""

from __future__ import annotations

import logging
import threading

from celery import shared_task
from celery.signals import worker_process_init

from bot.core.errors import NotFound
from bot.core.settings import load_settings
from bot.workflows import dispatch, periodic, redraws
from bot.workflows.dispatch import DecisionKind

log = logging.getLogger(__name__)

_lock = threading.Lock()
_context = None


def _runtime():
    """This worker process's runtime and Slack client, built once, after the fork."""
    global _context
    with _lock:
        if _context is None:
            from bot.delivery.slack_client import make_web_client
            from bot.workflows.runtime import Runtime
            from jobs.dispatch import CeleryDecisions

            settings = load_settings()
            runtime = Runtime.from_settings(settings)
            # A re-decision asked for on a worker is a task of its own, like any other.
            runtime.decisions = CeleryDecisions(settings)
            _context = (runtime, make_web_client(settings))
        return _context


@worker_process_init.connect
def _init_worker(**_):
    from bot.core.observability import init_sentry

    init_sentry(load_settings(), component="worker")


# A decision: acknowledged after it ran (a worker killed mid-decision leaves the message
# to be redelivered, after the broker's visibility timeout; the sweep decides sooner,
# once the dead worker's claim expires), idempotent by ticket (claim, then decide: a
# redelivered or retried task finds the ticket decided or claimed and does nothing),
# time-limited by CLAIM_TTL (jobs/celery_app.py), retried twice after a failure the
# decision recorded (the sweep goes on after that, up to processing.MAX_ATTEMPTS).
# `kind` says which decision (bot.workflows.dispatch.DecisionKind: a new ticket, a
# re-decision after a reply or added detail); each claims only what it may decide, so
# it is idempotent too. `owed`: outbox rows to send first (sent ones are skipped).
@shared_task(name="resolvemeq.decide_ticket", bind=True, acks_late=True, reject_on_worker_lost=True,
             max_retries=2)
def decide_ticket(self, ticket_id: int, kind: str = DecisionKind.NEW, owed: list[int] | None = None) -> str:
    try:
        which = DecisionKind(kind)
    except ValueError:
        log.error("decide_ticket: unknown kind of decision %r for ticket %s; dropped", kind, ticket_id)
        return "unknown kind"
    try:
        runtime, client = _runtime()
        outcome = dispatch.run_decision(runtime, client, ticket_id, which, owed or ())
    except NotFound:
        log.warning("decide_ticket: ticket %s does not exist; nothing to decide", ticket_id)
        return "not found"
    except Exception as error:
        # Recorded by the decision already (bot.workflows.decision); try again soon.
        raise self.retry(exc=error, countdown=10) from error
    return "already decided" if outcome.already_processed else "decided"


# The work after a click (bot.workflows.redraws): acknowledged after it ran (a worker
# killed mid-redraw leaves it to be redelivered), harmless twice (each message drawn
# from the state at send time under its message lock; owed outbox rows sent once by
# their claims), time-limited (jobs/celery_app.py), retried twice after a failure
# (the database or Redis away for a moment); after that the stored answer stands and
# the message shows it at the next redraw.
@shared_task(name="resolvemeq.redraw", bind=True, acks_late=True, reject_on_worker_lost=True,
             max_retries=2)
def redraw(self, **fields) -> str:
    try:
        which = redraws.Redraw.from_fields(fields)
    except ValueError:
        log.error("redraw: not a redraw %r; dropped", sorted(fields))
        return "unknown"
    try:
        runtime, client = _runtime()
        redraws.run_redraw(runtime, client, which)
    except Exception as error:
        raise self.retry(exc=error, countdown=2) from error
    return "redrawn"


@shared_task(name="resolvemeq.sweep_new_tickets")
def sweep_new_tickets() -> int:
    return periodic.sweep_new_tickets(*_runtime())


@shared_task(name="resolvemeq.deliver_outbox")
def deliver_outbox() -> int:
    return periodic.deliver_outbox(*_runtime())


@shared_task(name="resolvemeq.evaluate_alerts")
def evaluate_alerts() -> int:
    return periodic.evaluate_alerts(*_runtime())


@shared_task(name="resolvemeq.expire_rollback_requests")
def expire_rollback_requests() -> int:
    return periodic.expire_rollback_requests(*_runtime())


@shared_task(name="resolvemeq.expire_clarifications")
def expire_clarifications() -> int:
    return periodic.expire_clarifications(*_runtime())


@shared_task(name="resolvemeq.anchor_audit_chain")
def anchor_audit_chain() -> int:
    return periodic.anchor_audit_chain(*_runtime())


@shared_task(name="resolvemeq.redact_old_text")
def redact_old_text() -> int:
    return periodic.redact_old_text(*_runtime())


@shared_task(name="resolvemeq.backup_on_schedule")
def backup_on_schedule() -> int:
    return periodic.backup_on_schedule(*_runtime())


@shared_task(name="resolvemeq.check_sla")
def check_sla() -> int:
    return periodic.check_sla(*_runtime())


@shared_task(name="resolvemeq.roll_up_stats")
def roll_up_stats() -> int:
    return periodic.roll_up_stats(*_runtime())
