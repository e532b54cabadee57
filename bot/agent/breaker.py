"""A circuit breaker for the HTTP agent: stop calling a service that keeps failing.

closed: calls go through; `failure_threshold` consecutive failures open it.
open: calls are refused at once (the ticket goes to human triage) for `reset_timeout`.
half-open: after that, one trial call is let through; success closes the circuit,
failure opens it again for another `reset_timeout`.

The state lives in this process only: each `serve` process or Celery worker protects
itself and learns on its own that the agent is down (or back). That costs at most
`failure_threshold` failed calls per process, and needs no shared store that could
itself be down.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from bot.core import clock

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failures and refuses calls while the circuit is open."""

    def __init__(
        self, *, failure_threshold: int = 5, reset_timeout: timedelta = timedelta(seconds=60)
    ) -> None:
        """Create a closed breaker.

        Args:
            failure_threshold: consecutive failures that open the circuit (>= 1).
            reset_timeout: how long it stays open before a trial call (> 0).
        """
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_timeout <= timedelta(0):
            raise ValueError("reset_timeout must be positive")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: datetime | None = None
        # When the half-open trial call started; None when no trial is running.
        self._trial_started: datetime | None = None

    @property
    def state(self) -> str:
        """closed, open or half_open, as of now."""
        with self._lock:
            return self._state(clock.now())

    @property
    def failures(self) -> int:
        """Consecutive failures counted so far."""
        with self._lock:
            return self._failures

    def allow(self) -> bool:
        """Whether a call may go through now; in half-open, only the first caller may.

        A caller that got True must report the outcome with `record_success()` or
        `record_failure()`, or the half-open trial slot stays taken.
        """
        with self._lock:
            now = clock.now()
            state = self._state(now)
            if state == CLOSED:
                return True
            if state == HALF_OPEN and not self._trial_running(now):
                self._trial_started = now
                return True
            return False

    def record_success(self) -> None:
        """A call succeeded: close the circuit and forget past failures."""
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_started = None

    def record_failure(self) -> None:
        """A call failed: count it; open (or re-open) the circuit when due."""
        with self._lock:
            now = clock.now()
            self._failures += 1
            trial = self._trial_running(now)
            # A call that started before the circuit opened and fails late must not
            # push the reopening further away; only the trial or the threshold opens it.
            if trial or (self._opened_at is None and self._failures >= self.failure_threshold):
                self._opened_at = now
            self._trial_started = None

    def retry_at(self) -> datetime | None:
        """When an open circuit will let a trial call through; None unless open."""
        with self._lock:
            if self._opened_at is None or self._state(clock.now()) != OPEN:
                return None
            return self._opened_at + self.reset_timeout

    def _trial_running(self, now: datetime) -> bool:
        # A trial whose caller never reported back (it crashed) frees the slot after
        # another reset_timeout, so the circuit cannot stay half-open forever.
        return self._trial_started is not None and now - self._trial_started < self.reset_timeout

    def _state(self, now: datetime) -> str:
        if self._opened_at is None:
            return CLOSED
        if now - self._opened_at >= self.reset_timeout:
            return HALF_OPEN
        return OPEN
