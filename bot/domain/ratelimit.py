"""Moving-window limits: the autonomy caps, the per-admin rollback throttle and the
per-person ticket limit.

All use the `limits` library's moving window, because a fixed window lets twice
the cap through around a window edge. With REDIS_URL every process shares one
budget; without it the budget is this process's memory (the embedded mode).

The caps and the throttle fail closed: when the store cannot be reached, nothing
autonomous happens and no rollback goes through, and the caller is told why. The
ticket limit fails open: a helpdesk must not go deaf because its limiter did; the
caller records that the store was down, which the `limiter_unavailable` alert counts.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerHour, RateLimitItemPerMinute, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from bot.core.errors import LimiterUnavailable
from bot.core.settings import Settings

log = logging.getLogger(__name__)

# Short timeouts: a slow Redis must not hold a Slack request past its 3 s.
_REDIS_OPTIONS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}


def make_storage(redis_url: str | None) -> Storage:
    """Redis storage when a URL is given, else in-process memory."""
    # `storage_from_string` is typed for async storages too; these URLs give sync ones.
    if redis_url:
        return cast(Storage, storage_from_string(redis_url, wrap_exceptions=True, **_REDIS_OPTIONS))
    return cast(Storage, storage_from_string("memory://"))


@dataclass(frozen=True)
class CapCheck:
    """Whether one more autonomous action is allowed, and if not, why."""

    allowed: bool
    reason: str = ""
    # The cap that was hit ("50 per 1 minute"), when one was.
    cap: str = ""


@dataclass(frozen=True)
class CapWindow:
    """One cap's moving window as it stands: what was used and what is left."""

    cap: str  # "50 per 1 minute"
    limit: int
    used: int
    left: int


class AutonomyBudget:
    """The per-minute, per-hour and per-day caps on autonomous actions."""

    def __init__(self, settings: Settings, storage: Storage, *, namespace: str = "resolvemeq"):
        self._limiter = MovingWindowRateLimiter(storage)
        self._namespace = namespace
        self._caps: tuple[RateLimitItem, ...] = (
            RateLimitItemPerMinute(settings.max_autonomous_actions_per_minute),
            RateLimitItemPerHour(settings.max_autonomous_actions_per_hour),
            RateLimitItemPerDay(settings.max_autonomous_actions_per_day),
        )

    def try_acquire(self) -> CapCheck:
        """Take one unit of every cap if all have room; never raises.

        Returns:
            allowed=False with the reason when a cap is full or the store is down.
        """
        try:
            for cap in self._caps:
                if not self._limiter.test(cap, self._namespace, "autonomy"):
                    return CapCheck(False, f"autonomy cap reached ({cap})", str(cap))
            for cap in self._caps:
                # test() and hit() are two steps; another process may fill the cap
                # in between, so a failed hit is a refusal too.
                if not self._limiter.hit(cap, self._namespace, "autonomy"):
                    return CapCheck(False, f"autonomy cap reached ({cap})", str(cap))
        except Exception as error:  # any storage failure: fail closed
            log.warning("autonomy limiter unavailable: %s", type(error).__name__)
            return CapCheck(False, "autonomy limiter unavailable")
        return CapCheck(True)

    def windows(self) -> list[CapWindow] | None:
        """Each cap's use now (read only; nothing is taken); None when the store is down."""
        try:
            read = [(cap, self._limiter.get_window_stats(cap, self._namespace, "autonomy"))
                    for cap in self._caps]
        except Exception as error:  # any storage failure: say it cannot be told
            log.warning("autonomy limiter unavailable: %s", type(error).__name__)
            return None
        return [CapWindow(str(cap), cap.amount, cap.amount - max(stats.remaining, 0), max(stats.remaining, 0))
                for cap, stats in read]


class RollbackThrottle:
    """At most ROLLBACK_RATE_LIMIT rollbacks per person in a moving window.

    A rollback, a request for one (two-person mode) and an approval each count against
    the budget of whoever did it. `acquire` checks and counts in one step of the store
    (a Lua script on Redis, a lock in memory), so parallel requests by one person can
    never all pass; `retry_at` only reads, for the confirm dialog.
    """

    def __init__(self, settings: Settings, storage: Storage, *, namespace: str = "resolvemeq"):
        self._limiter = MovingWindowRateLimiter(storage)
        self._namespace = namespace
        self._item = parse(settings.rollback_rate_limit)

    @property
    def limit(self) -> str:
        return str(self._item)

    def retry_at(self, admin_id: str) -> datetime | None:
        """When `admin_id` may roll back again, or None if they may now (nothing counted).

        Raises:
            LimiterUnavailable: the store cannot be reached.
        """
        try:
            if self._limiter.test(self._item, self._namespace, "rollback", admin_id):
                return None
            return self._reset_of(admin_id)
        except Exception as error:
            raise _unavailable(error) from None

    def acquire(self, admin_id: str) -> datetime | None:
        """Count one rollback (or request, or approval) by `admin_id` if the budget allows.

        Returns:
            None when it was counted; else when the budget allows one again (nothing
            was counted).

        Raises:
            LimiterUnavailable: the store cannot be reached; nothing was counted.
        """
        try:
            if self._limiter.hit(self._item, self._namespace, "rollback", admin_id):
                return None
            return self._reset_of(admin_id)
        except Exception as error:
            raise _unavailable(error) from None

    def _reset_of(self, admin_id: str) -> datetime:
        stats = self._limiter.get_window_stats(self._item, self._namespace, "rollback", admin_id)
        return datetime.fromtimestamp(stats.reset_time, UTC)


def _unavailable(error: Exception) -> LimiterUnavailable:
    log.warning("rollback throttle unavailable: %s", type(error).__name__)
    return LimiterUnavailable(
        "Rollbacks are paused: the rate-limit store cannot be reached. Try again when it is back."
    )


@dataclass(frozen=True)
class TicketCheck:
    """Whether a person may open one more ticket now."""

    allowed: bool
    # When they may open one again (refusals only).
    retry_at: datetime | None = None
    # The store could not be reached: allowed all the same (the limit fails open).
    store_down: bool = False


class TicketLimit:
    """At most TICKET_RATE_LIMIT tickets per person in a moving window (None: no limit).

    `acquire` checks and counts in one step of the store, so a burst of parallel
    requests by one person cannot all pass. When the store cannot be reached it lets
    the ticket through and says so; after a failure it does not ask the store again for
    `RETRY_AFTER` seconds, so an outage costs one timeout, not one per request.
    """

    RETRY_AFTER = 5.0

    def __init__(self, settings: Settings, storage: Storage, *, namespace: str = "resolvemeq"):
        self._limiter = MovingWindowRateLimiter(storage)
        self._namespace = namespace
        self._item = parse(settings.ticket_rate_limit) if settings.ticket_rate_limit else None
        self._lock = threading.Lock()
        self._skip_until = 0.0

    @property
    def item(self) -> RateLimitItem | None:
        """The limit (None when TICKET_RATE_LIMIT is off)."""
        return self._item

    def acquire(self, user_id: str) -> TicketCheck:
        """Count one ticket for `user_id` if the budget allows; never raises.

        Returns:
            allowed=True when counted (or the store is down: `store_down`); else
            allowed=False with when the person may open one again (nothing counted).
        """
        if self._item is None:
            return TicketCheck(True)
        with self._lock:
            if time.monotonic() < self._skip_until:
                return TicketCheck(True, store_down=True)
        try:
            if self._limiter.hit(self._item, self._namespace, "ticket", user_id):
                return TicketCheck(True)
            stats = self._limiter.get_window_stats(self._item, self._namespace, "ticket", user_id)
            return TicketCheck(False, retry_at=datetime.fromtimestamp(stats.reset_time, UTC))
        except Exception as error:  # any storage failure: fail open, and say so
            log.warning("ticket limiter unavailable: %s; taking tickets without it",
                        type(error).__name__)
            with self._lock:
                self._skip_until = time.monotonic() + self.RETRY_AFTER
            return TicketCheck(True, store_down=True)
