"""Celery tasks: thin wrappers, one service call each (bot/workflows/periodic.py).

`shared_task`, so this module binds to whichever app the worker built.
"""

from __future__ import annotations

import threading

from celery import shared_task
from celery.signals import worker_process_init

from bot.core.settings import load_settings
from bot.workflows import periodic

_lock = threading.Lock()
_context = None


def _runtime():
    """This worker process's runtime and Slack client, built once, after the fork."""
    global _context
    with _lock:
        if _context is None:
            from bot.delivery.slack_client import make_web_client
            from bot.workflows.runtime import Runtime

            settings = load_settings()
            _context = (Runtime.from_settings(settings), make_web_client(settings))
        return _context


@worker_process_init.connect
def _init_worker(**_):
    from bot.core.observability import init_sentry

    init_sentry(load_settings(), component="worker")


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
