"""The one error handler: unexpected errors get an id, a log line and Sentry."""

from __future__ import annotations

import logging
import uuid

from slack_bolt import App, BoltResponse

log = logging.getLogger(__name__)


def on_error(error: Exception, body: dict, logger: logging.Logger) -> BoltResponse:
    error_id = uuid.uuid4().hex[:12]
    import sentry_sdk

    # The log record is what Sentry's logging integration turns into the event, so it
    # is written inside the scope that carries the error id.
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("error_id", error_id)
        log.error("unexpected error in a listener (error id %s): %s", error_id,
                  type(error).__name__, exc_info=error)
    # Answer 200: Slack would retry a 5xx, and a retry would repeat what failed.
    return BoltResponse(status=200, body="")


def register(app: App) -> None:
    app.error(on_error)
