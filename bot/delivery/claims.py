"""Sending a batch of claimed rows one after another, each at most once.

The outbox claims rows with an expiring claim (a token and a time), then sends them
one after another, by the two rules kept here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Protocol, TypeVar


class Claimed(Protocol):
    @property
    def until(self) -> datetime:  # when the claim expires, unless renewed
        ...


C = TypeVar("C", bound=Claimed)


def send_each(
    claims: Iterable[C],
    *,
    now: datetime,
    ttl: timedelta,
    renew: Callable[[C, datetime], bool],
    send: Callable[[C, Callable[[], datetime]], bool],
) -> int:
    """Send each claim in turn; returns how many `send` reported sent.

    Args:
        claims: rows claimed at or before `now`.
        now: the clock reading the batch counts from (tests move it).
        ttl: how long a claim lasts.
        renew: `renew(claim, until)` extends the claim if it is still this worker's;
            False when another worker took it over.
        send: `send(claim, at)` sends one row; `at()` reads the batch's clock.
    """
    started = time.monotonic()

    # The batch's clock plus the time spent: a backoff counts from when an attempt
    # failed (a timeout takes seconds), not from when the batch started.
    def at() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    # A batch may outlive its claim (slow Slack). Once half a claim has passed, it is
    # renewed just before its row is sent, and a row another worker has taken over
    # meanwhile is left to it; before that, every send still has half a claim to
    # finish in, and the usual batch (one row, right after its commit) costs no
    # extra transaction.
    def kept(claim: C) -> bool:
        return claim.until - at() > ttl / 2 or renew(claim, at() + ttl)

    return sum(1 for claim in claims if kept(claim) and send(claim, at))
