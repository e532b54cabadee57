"""Who is in a Slack user group, asked of usergroups.list and usergroups.users.list
and cached for five minutes.

ADMIN_GROUPS and APPROVER_GROUPS name groups by handle (`it-admins`); Slack's member
lists are by group id, so `usergroups.list` maps handles to ids (one call for every
group) and `usergroups.users.list` gives one group's members. Both answers are kept
for CACHE_SECONDS: someone removed from a group loses its rights within five minutes.

Fails closed: if Slack cannot be asked (an error, a rate limit, a timeout, a missing
`usergroups:read` scope) or does not know the handle (a typo, a disabled group), the
user is not a member for this request; the failure is not cached, so the next click
asks again, and it is logged once until the lookup works again. One check asks Slack
for at most LOOKUP_BUDGET seconds in all, so a click is answered within Slack's 3 s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.core import clock as the_clock
from bot.delivery.slack_client import quick_client

log = logging.getLogger(__name__)

CACHE_SECONDS = 300.0
# Each call's timeout, and all of one check's calls together.
LOOKUP_TIMEOUT = 1.5
LOOKUP_BUDGET = 2.0
# Below this much time left, a call is not started: it could not answer in time.
_MIN_CALL = 0.1


def _wall_seconds() -> float:
    # The one clock (tests move it), as seconds.
    return the_clock.now().timestamp()


class UserGroups:
    """A small TTL cache over usergroups.list and usergroups.users.list.

    Args:
        client: the app's client (token and base URL are reused; a client of its own
            with a short timeout and no retries asks Slack, so a rate-limited lookup
            answers "no" at once instead of holding the click).
        ttl: how long an answer is kept, in seconds.
        clock: seconds now (default: the one clock, which tests move).
    """

    def __init__(self, client: WebClient, *, ttl: float = CACHE_SECONDS,
                 clock: Callable[[], float] = _wall_seconds) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._ids: tuple[float, dict[str, str]] | None = None
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._warned: set[str] = set()

    def member_of_any(self, handles: Sequence[str], user_id: str) -> bool:
        """True when `user_id` is in at least one of the groups; False when in none, or
        when Slack cannot say.

        Args:
            handles: user group handles, lower-case, without `@` (as the settings hold them).
            user_id: a Slack user id.
        """
        if not handles or not isinstance(user_id, str) or not user_id:
            return False
        # Real elapsed time (not the clock tests move): the budget is Slack's 3 s.
        deadline = time.monotonic() + LOOKUP_BUDGET
        ids = self._handle_ids(deadline)
        if ids is None:
            return False
        for handle in handles:
            group = ids.get(handle)
            if group is None:
                self._warn_once(f"unknown:{handle}", "Slack knows no enabled user group @%s "
                                "(ADMIN_GROUPS / APPROVER_GROUPS): nobody is in it", handle)
                continue
            with self._lock:
                self._warned.discard(f"unknown:{handle}")
            members = self._group_members(handle, group, deadline)
            if members is not None and user_id in members:
                return True
        return False

    def forget(self) -> None:
        """Drop every cached answer (the next check asks Slack)."""
        with self._lock:
            self._ids = None
            self._members.clear()

    def _fresh(self, at: float) -> bool:
        age = self._clock() - at
        # A clock that went backwards makes the entry stale rather than immortal.
        return 0 <= age < self._ttl

    def _handle_ids(self, deadline: float) -> dict[str, str] | None:
        with self._lock:
            cached = self._ids
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        at = self._clock()
        answer = self._ask("usergroups.list", "", deadline,
                           lambda quick: quick.usergroups_list(include_disabled=False))
        if answer is None:
            return None
        ids = {
            str(group.get("handle")).lower(): str(group["id"])
            for group in answer.get("usergroups") or []
            if isinstance(group, dict) and group.get("id") and group.get("handle")
            and not group.get("date_delete")
        }
        with self._lock:
            self._ids = (at, ids)
        return ids

    def _group_members(self, handle: str, group: str, deadline: float) -> frozenset[str] | None:
        with self._lock:
            cached = self._members.get(group)
        if cached is not None and self._fresh(cached[0]):
            return cached[1]
        at = self._clock()
        answer = self._ask("usergroups.users.list", handle, deadline,
                           lambda quick: quick.usergroups_users_list(usergroup=group, include_disabled=False))
        if answer is None:
            return None
        members = frozenset(str(user) for user in answer.get("users") or [])
        with self._lock:
            self._members[group] = (at, members)
        return members

    def _ask(self, method: str, about: str, deadline: float,
             call: Callable[[WebClient], SlackResponse]) -> dict | None:
        key = f"{method}:{about}"
        remaining = deadline - time.monotonic()
        if remaining < _MIN_CALL:
            self._warn_once(key, "%s for @%s not asked: the role check ran out of time; refusing",
                            method, about or "*")
            return None
        quick = quick_client(self._client, timeout=min(LOOKUP_TIMEOUT, remaining))
        try:
            answer = call(quick)
        except SlackApiError as error:  # fail closed
            self._warn_once(key, "%s failed for the role check (%s): refusing", method,
                            error.response.get("error") or error.response.status_code)
            return None
        except Exception as error:  # any failure: fail closed
            self._warn_once(key, "%s failed for the role check (%s): refusing", method,
                            type(error).__name__)
            return None
        with self._lock:
            self._warned.discard(key)
        return answer.data if isinstance(answer.data, dict) else None

    def _warn_once(self, key: str, message: str, *args) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        log.warning(message, *args)
