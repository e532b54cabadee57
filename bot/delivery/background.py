"""Work that must not run on Slack's request path: the agent, Slack calls, the figures.

Slack waits 3 s for an acknowledgement. Listeners store what they must (a ticket, an
answer), acknowledge, and hand everything slow to an executor. A process has two:
decisions and the Slack posts they owe (SLACK_BACKGROUND_WORKERS threads), and reads
(the App Home and /resolution-stats, `READ_WORKERS` threads), so a burst of people
opening the App Home never delays a ticket's answer.

Each is bounded: past its threads and its waiting room (SLACK_BACKGROUND_QUEUE for
decisions, `READ_QUEUE` for reads) it takes nothing more, and the caller says so
(`Busy`) instead of queueing work that would run minutes late or exhaust memory.
A listener that must know before it acknowledges takes a `slot` first.

Nothing here is the record of truth: a ticket whose decision never ran stays `new` in
the database, and the jobs' sweep picks it up; posts a decision owes are in the outbox.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from bot.core import observability
from bot.core.errors import Busy

log = logging.getLogger(__name__)

# The reads' executor: few threads (each holds a database connection through a long
# aggregate), a short waiting room (a figure asked for minutes ago is not wanted).
READ_WORKERS = 2
READ_QUEUE = 16


class Background:
    """A bounded thread pool whose failures are logged, never lost silently.

    Args:
        workers: threads.
        queue_limit: tasks that may wait for a thread; past it, nothing is taken.
        name: the threads' name prefix.
    """

    def __init__(self, workers: int, *, queue_limit: int, name: str = "resolvemeq-bg"):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._name = name
        # One unit per task running or waiting: given back when the task is done.
        self._room = threading.BoundedSemaphore(workers + queue_limit)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run `fn(*args, **kwargs)` on a worker thread, in a Sentry scope of its own.

        Raises:
            Busy: every thread is busy and the waiting room is full.
        """
        if not self._room.acquire(blocking=False):
            raise Busy()
        return self._run(fn, args, kwargs)

    def try_submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future | None:
        """Like `submit`, for work that may be dropped when full (a message redraw, a
        courtesy reply): returns None then, with a log line."""
        try:
            return self.submit(fn, *args, **kwargs)
        except Busy:
            log.warning("%s is full: dropped %s", self._name, getattr(fn, "__name__", "a task"))
            return None

    @contextmanager
    def slot(self) -> Iterator[Slot | None]:
        """A place for one task, taken now and used later (after an acknowledgement):
        None when full. Given back on exit if it was not used."""
        if not self._room.acquire(blocking=False):
            yield None
            return
        held = Slot(self)
        try:
            yield held
        finally:
            held.give_back()

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)

    def _run(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Future:
        try:
            future = self._pool.submit(observability.isolated, fn, *args, **kwargs)
        except BaseException:  # shut down: the unit was never used
            self._room.release()
            raise
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future) -> None:
        self._room.release()
        _log_failure(future)


class Slot:
    """One reserved place in a `Background` (see `Background.slot`)."""

    def __init__(self, owner: Background) -> None:
        self._owner = owner
        self._held = True

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run `fn(*args, **kwargs)` in the reserved place (once)."""
        if not self._held:
            raise RuntimeError("this slot was used or given back already")
        self._held = False
        return self._owner._run(fn, args, kwargs)

    def give_back(self) -> None:
        if self._held:
            self._held = False
            self._owner._room.release()


def _log_failure(future: Future) -> None:
    error = future.exception()
    if error is not None:
        log.error("background work failed", exc_info=error)
