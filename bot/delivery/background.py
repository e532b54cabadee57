"""Work that must not run on Slack's request path: the agent, Slack calls.

Slack waits 3 s for an acknowledgement. Listeners store what they must (a ticket, an
answer), acknowledge, and hand everything slow to this executor. Its size is set on
purpose (SLACK_BACKGROUND_WORKERS), separately from the request threads, so slow
downstream work never keeps a request from being acknowledged.

Nothing here is the record of truth: a ticket whose decision never ran stays `new` in
the database, and the jobs' sweep picks it up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from bot.core import observability

log = logging.getLogger(__name__)


class Background:
    """A bounded thread pool whose failures are logged, never lost silently."""

    def __init__(self, workers: int, *, name: str = "resolvemeq-bg"):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run `fn(*args, **kwargs)` on a worker thread, in a Sentry scope of its own."""
        future = self._pool.submit(observability.isolated, fn, *args, **kwargs)
        future.add_done_callback(_log_failure)
        return future

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


def _log_failure(future: Future) -> None:
    error = future.exception()
    if error is not None:
        log.error("background work failed", exc_info=error)
