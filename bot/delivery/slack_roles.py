"""Whether a Slack user is a workspace admin or owner, asked of users.info and cached.

Used only when ALLOW_WORKSPACE_ADMINS is on. Fails closed: if Slack cannot be asked
(error, rate limit, timeout) the user is not an admin for this request, and the
failure is not cached, so the next request asks again.
"""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient

from bot.delivery.slack_client import quick_client

log = logging.getLogger(__name__)

CACHE_SECONDS = 300.0
# users.info sits on the request path of /rollback: it must answer well inside 3 s.
LOOKUP_TIMEOUT = 1.5


class WorkspaceRoles:
    """A small TTL cache over users.info's is_admin / is_owner."""

    def __init__(self, client: WebClient, *, ttl: float = CACHE_SECONDS):
        # A client of its own with a short timeout and no retries: a rate-limited
        # users.info must not hold the request; the answer is then "no".
        self._quick = quick_client(client, timeout=LOOKUP_TIMEOUT)
        self._ttl = ttl
        self._cache: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def __call__(self, user_id: str) -> bool:
        """True when the user is a workspace admin or owner; False when unsure."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(user_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        try:
            response = self._quick.users_info(user=user_id)
        except Exception as error:  # any failure: fail closed
            log.warning("users.info failed for the admin check (%s): refusing", type(error).__name__)
            return False
        user = response.get("user") or {}
        privileged = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        with self._lock:
            self._cache[user_id] = (now, privileged)
        return privileged
