"""Decisions and the work after a click handed to the Celery workers (`DECIDE_ON=workers`):
the publishing side.

`serve` stores a ticket, acknowledges, then publishes `resolvemeq.decide_ticket` with
the ticket's id and which kind of decision it is (jobs/tasks.py); a worker claims and decides it
(bot.workflows.decision). Publishing happens after the ack's commit (a worker never
looks for a ticket not yet stored) and on the request thread, so it is kept short: a
broker that does not answer within about a second is logged and left to the sweep,
which decides on any ticket still `new` after SWEEP_GRACE.

The work after a click (`resolvemeq.redraw`: the clicked message redrawn, the notices
owed, bot.workflows.redraws) is published the same way, after the ack's commit; a
broker that refuses it hands it to this process's pool instead, so the person still
sees their answer (nothing would sweep a redraw up later).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from celery import Celery

from bot.core.settings import Settings
from bot.workflows.dispatch import DecisionKind, Place
from bot.workflows.redraws import Redraw, Redraws

log = logging.getLogger(__name__)

DECIDE_TASK = "resolvemeq.decide_ticket"
REDRAW_TASK = "resolvemeq.redraw"
# Publishing on the request path: a broker that is down costs at most about a second.
_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.4}


class CeleryDecisions:
    """Every decision a Celery task; there is always room (the broker's queue).

    Args:
        app: the Celery app to publish with (default: one for these settings).
        settings: the process's settings (REDIS_URL is the broker).
    """

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self._app = app or publishing_app(settings)

    @contextmanager
    def slot(self) -> Iterator[Place | None]:
        yield self

    def dispatch(self, ticket_id: int, kind: DecisionKind = DecisionKind.NEW,
                 owed: Sequence[int] = ()) -> None:
        """Publish the ticket's decision (which kind, and the outbox rows to send first);
        a failure is logged (the sweep decides later)."""
        try:
            # Its log line given, as for redraws (CeleryRedraws): Celery's saferepr of the
            # arguments is CPU on the request thread of every /ticket.
            self._app.send_task(DECIDE_TASK, args=[ticket_id],
                                kwargs={"kind": str(kind), "owed": [int(i) for i in owed]},
                                retry=True, retry_policy=_PUBLISH_RETRY, argsrepr=f"({ticket_id},)",
                                kwargsrepr=f"{{kind: {kind}}}")
        except Exception:
            log.exception("could not hand ticket %s (%s) to the workers; the sweep will decide on it",
                          ticket_id, kind)

    def close(self) -> None:
        self._app.close()


class CeleryRedraws:
    """The work after each click a Celery task (`resolvemeq.redraw`, plain values).

    Args:
        app: the Celery app to publish with (the decisions' own, one broker pool).
        fallback: where the work goes when the broker refuses it (this process's pool).
    """

    def __init__(self, app: Celery, fallback: Redraws) -> None:
        self._app, self._fallback = app, fallback

    def hand_off(self, redraw: Redraw) -> None:
        try:
            # Its log line given, not drawn by Celery's saferepr of every field: a fifth
            # of the publish's CPU, on the request thread of every click.
            self._app.send_task(REDRAW_TASK, kwargs=redraw.fields(), retry=True,
                                retry_policy=_PUBLISH_RETRY, argsrepr="()",
                                kwargsrepr=f"{{kind: {redraw.kind}, ticket_id: {redraw.ticket_id}}}")
        except Exception as error:
            log.warning("could not hand the %s redraw to the workers (%s); drawing it here",
                        redraw.kind, type(error).__name__)
            self._fallback.hand_off(redraw)


def publishing_app(settings: Settings) -> Celery:
    """A Celery app for publishing from `serve`: a broker that does not answer within
    about a second fails the publish instead of holding the request thread."""
    from jobs.celery_app import create_celery

    app = create_celery(settings)
    app.conf.broker_transport_options = {
        **(app.conf.broker_transport_options or {}),
        "socket_connect_timeout": 1, "socket_timeout": 2,
    }
    return app
