"""The Celery app: Redis broker, beat schedule of the periodic jobs.

Every scheduled task runs one pass of an idempotent job. Nothing is scheduled with a
long countdown or ETA: a Redis broker redelivers such a task after its visibility
timeout, which is how reminders get sent twice. Due times live in the database.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from bot.core.settings import Settings, load_settings

TASKS = ("sweep_new_tickets", "deliver_outbox", "evaluate_alerts", "expire_rollback_requests",
         "expire_clarifications", "anchor_audit_chain", "redact_old_text", "backup_on_schedule",
         "check_sla", "roll_up_stats")

# The work after a click has a queue of its own, which every worker reads beside the
# default one (Redis hands out the two in turn): a person's redraw waits behind at most
# a few decisions, not behind the whole backlog of tickets.
REDRAW_QUEUE = "redraws"
DEFAULT_QUEUE = "celery"
# Seconds a redraw task may run (soft: raises inside it; hard: ends it; prefork pool).
REDRAW_SOFT_LIMIT = 60
REDRAW_LIMIT = 90


def create_celery(settings: Settings) -> Celery:
    """A Celery app for these settings (REDIS_URL is the broker)."""
    from bot.workflows.periodic import jobs_for  # the agent and the models: only when building

    if not settings.redis_url:
        raise RuntimeError(
            "REDIS_URL must be set for the Celery worker and beat; without it, "
            "`resolvemeq serve` runs the jobs in-process"
        )
    app = Celery("resolvemeq", broker=settings.redis_url, include=["jobs.tasks"])
    interval = settings.job_interval.total_seconds()
    # Only the jobs these settings run: no alert evaluation without ALERTS_CHANNEL,
    # no anchors without AUDIT_CHANNEL, and so on (periodic.jobs_for).
    scheduled = [name for name in TASKS if name in jobs_for(settings)]
    app.conf.update(
        task_ignore_result=True,
        # A task is acknowledged after it ran: a worker killed mid-task leaves it to
        # another. The jobs are idempotent, so running twice is harmless.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": 600},
        broker_connection_retry_on_startup=True,
        task_queues=(Queue(DEFAULT_QUEUE), Queue(REDRAW_QUEUE)),
        task_default_queue=DEFAULT_QUEUE,
        task_routes={"resolvemeq.redraw": {"queue": REDRAW_QUEUE}},
        timezone="UTC",
        # A decision may not outlive its claim on the ticket (the sweep takes an
        # expired claim over): the soft limit raises inside it, the hard one ends it
        # (both on the prefork pool; the thread pool has no time limits).
        # A redraw waits for its message's lock (10 s at most) and makes a few Slack
        # calls (each bounded by the client's timeout): a minute is far past either.
        task_annotations={"resolvemeq.decide_ticket": {
            "soft_time_limit": settings.claim_ttl.total_seconds() * 0.8,
            "time_limit": settings.claim_ttl.total_seconds(),
        }, "resolvemeq.redraw": {"soft_time_limit": REDRAW_SOFT_LIMIT, "time_limit": REDRAW_LIMIT}},
        beat_schedule={
            name: {"task": f"resolvemeq.{name}", "schedule": interval,
                   "options": {"expires": interval}}
            for name in scheduled
        },
    )
    return app


def app_from_environment() -> Celery:
    """The app the worker and beat run, built from the environment when they start.

    Not at import: importing this module must not need REDIS_URL.
    """
    return create_celery(load_settings())
