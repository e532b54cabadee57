"""Who is in a channel, asked of conversations.members and cached briefly.

A team's channel is its membership list: whoever is in it may take and resolve the
team's tickets. Fails closed: if Slack cannot be asked (an error, a rate limit, a
timeout, a channel the bot cannot see) nobody is a member for this request, and the
failure is not cached, so the next click asks again.
"""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient

from bot.delivery.slack_client import quick_client

log = logging.getLogger(__name__)

# Short: someone removed from the team's channel loses its tickets within a minute.
CACHE_SECONDS = 60.0
# The lookup sits on the request path of a click (and before a modal's 3 s trigger).
LOOKUP_TIMEOUT = 1.5
PAGE_SIZE = 1000
# A team channel is not this large (20,000 members); one that is, is not read to the
# end and counts as unknown (fail closed) rather than the click waiting past Slack's 3 s.
MAX_PAGES = 20


class ChannelMembers:
    """A small TTL cache over conversations.members."""

    def __init__(self, client: WebClient, *, ttl: float = CACHE_SECONDS,
                 clock=time.monotonic) -> None:
        # A client of its own with a short timeout and no retries: a rate-limited
        # lookup must not hold the request; the answer is then "no".
        self._quick = quick_client(client, timeout=LOOKUP_TIMEOUT)
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def is_member(self, channel: str, user_id: str) -> bool:
        """True when `user_id` is in `channel`; False when not, or when unsure.

        Args:
            channel: a channel id.
            user_id: a Slack user id.
        """
        if not channel or not user_id:
            return False
        members = self._members(channel)
        return members is not None and user_id in members

    def forget(self, channel: str | None = None) -> None:
        """Drop the cached members of one channel (or of all)."""
        with self._lock:
            if channel is None:
                self._cache.clear()
            else:
                self._cache.pop(channel, None)

    def _members(self, channel: str) -> frozenset[str] | None:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(channel)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        members = self._ask(channel)
        if members is not None:
            with self._lock:
                self._cache[channel] = (now, members)
        return members

    def _ask(self, channel: str) -> frozenset[str] | None:
        found: set[str] = set()
        cursor = None
        for _ in range(MAX_PAGES):
            try:
                page = self._quick.conversations_members(channel=channel, limit=PAGE_SIZE, cursor=cursor)
            except Exception as error:  # any failure: fail closed
                log.warning("conversations.members failed for %s (%s): refusing", channel,
                            type(error).__name__)
                return None
            found.update(str(member) for member in page.get("members") or [])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return frozenset(found)
        log.warning("conversations.members: %s has more than %d pages; refusing", channel, MAX_PAGES)
        return None
