"""One redraw at a time per Slack message, in this process and across processes.

A click's message update is drawn from the stored state at send time. Two clicks on
one message (Yes, then a rating) answered by different threads or different `serve`
processes could otherwise send their updates in the wrong order, and the message would
show the older answer. In a process a lock per message orders them; with Redis (which
several processes require) a Redis lock per message does the same across processes.

The lock only orders cosmetic redraws: the stored answer is right either way. So a
Redis that is down or slow never blocks a redraw for long; it goes ahead unordered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

import redis
from redis.exceptions import LockError, RedisError

log = logging.getLogger(__name__)

# A redraw is one database read and one chat.update: seconds at worst. The lock expires
# on its own after LOCK_TTL (a process that died holding it), and a waiter gives up
# ordering after WAIT.
LOCK_TTL = 30
WAIT = 10


class _LocalLocks:
    """One lock per key, created on demand and dropped when nobody holds it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, list] = {}

    @contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if not entry[1]:
                    self._locks.pop(key, None)


class MessageLocks:
    """Serialise the redraws of each message (`hold((channel, ts))`)."""

    def __init__(self, redis_url: str | None = None, *, namespace: str = "resolvemeq",
                 wait: float = WAIT) -> None:
        self._local = _LocalLocks()
        self._namespace = namespace
        self._wait = wait
        self._redis = (
            redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
            if redis_url else None
        )

    @contextmanager
    def hold(self, key: tuple[str, str]) -> Iterator[None]:
        with self._local.hold(key):
            if self._redis is None:
                yield
                return
            channel, ts = key
            lock = self._redis.lock(f"{self._namespace}:message:{channel}:{ts}",
                                    timeout=LOCK_TTL, blocking_timeout=self._wait)
            try:
                acquired = lock.acquire()
            except RedisError as error:
                log.warning("message lock unavailable (%s); redrawing unordered",
                            type(error).__name__)
                acquired = False
            if not acquired:
                log.warning("message %s/%s: redrawing without the lock", channel, ts)
            try:
                yield
            finally:
                if acquired:
                    try:
                        lock.release()
                    except (LockError, RedisError):
                        pass  # expired or Redis gone: the TTL frees it
