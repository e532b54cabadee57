"""Who the bot is in Slack (its workspace, organisation and user ids), without a call on
the request path, and whether a request is for that workspace.

Bolt, given only a token, calls auth.test during a process's first request: if Slack
is slow or down then, that request is lost or answered late. Here auth.test runs once
when the app is built, before it serves, and in the background while it has not
answered (one lookup at a time, at most every `RETRY_INTERVAL`); requests use what is
known, plus SLACK_TEAM_ID from the settings.

Until the workspace is known, no request can be checked: `check` says UNKNOWN and the
request is refused (503: Slack retries events), rather than let every workspace in.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from dataclasses import dataclass

from slack_sdk import WebClient

from bot.delivery.slack_client import quick_client

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT = 2.0
# Seconds between auth.test attempts while it has not answered: requests refused in
# the meantime must not each start a lookup of their own.
RETRY_INTERVAL = 5.0


@dataclass(frozen=True)
class Ids:
    """What is known of the bot in Slack; None where it is not known yet (or, for the
    organisation, where the workspace belongs to none)."""

    team_id: str | None = None
    user_id: str | None = None
    bot_id: str | None = None
    enterprise_id: str | None = None


class Workspace(enum.Enum):
    """Whether a request is for the bot's workspace."""

    OURS = "ours"
    NOT_OURS = "not ours"
    UNKNOWN = "unknown"  # the bot does not know its own workspace (or organisation) yet


class BotIdentity:
    """The bot's team, organisation, user and bot ids; learned from auth.test, never
    blocking a request."""

    def __init__(self, client: WebClient, *, team_id: str | None):
        self._client = client
        self._configured_team = team_id or None
        self._known: Ids | None = None
        self._lock = threading.Lock()
        self._looking = False
        self._next_lookup = 0.0
        self._quick = quick_client(client, timeout=LOOKUP_TIMEOUT)

    def learn_now(self) -> bool:
        """Ask auth.test once, now: at startup, before the first request, so a healthy
        Slack never sees a 503 (at most LOOKUP_TIMEOUT when Slack is down). Lookups after
        it wait RETRY_INTERVAL from this one.

        Returns:
            True when the identity is known.
        """
        with self._lock:
            self._next_lookup = time.monotonic() + RETRY_INTERVAL
        return self.learn()

    def learn_in_background(self) -> None:
        """Start an auth.test lookup, unless one is running or the last was too recent."""
        with self._lock:
            if self._known is not None or self._looking or time.monotonic() < self._next_lookup:
                return
            self._looking = True
            self._next_lookup = time.monotonic() + RETRY_INTERVAL
        threading.Thread(target=self._learn_once, name="resolvemeq-auth-test", daemon=True).start()

    def _learn_once(self) -> None:
        try:
            self.learn()
        finally:
            with self._lock:
                self._looking = False

    def learn(self) -> bool:
        """Ask auth.test once; True when the identity is known."""
        try:
            response = self._quick.auth_test()
        except Exception as error:  # Slack unreachable: requests go on with what we know
            log.warning("auth.test failed (%s); will ask again later", type(error).__name__)
            return False
        learned = Ids(response.get("team_id") or None, response.get("user_id") or None,
                      response.get("bot_id") or None, response.get("enterprise_id") or None)
        if self._configured_team and learned.team_id != self._configured_team:
            log.warning("SLACK_TEAM_ID is %s but the bot token belongs to workspace %s; "
                        "serving %s", self._configured_team, learned.team_id, self._configured_team)
        with self._lock:
            self._known = learned
        return True

    def ids(self) -> Ids:
        """What is known now, with no network call (a lookup is started if nothing is);
        the team is SLACK_TEAM_ID when set, else what auth.test said."""
        with self._lock:
            known = self._known
        if known is None:
            self.learn_in_background()
            known = Ids()
        return Ids(self._configured_team or known.team_id, known.user_id, known.bot_id,
                   known.enterprise_id)

    @property
    def team_id(self) -> str | None:
        """Our workspace: SLACK_TEAM_ID, else what auth.test said, else unknown."""
        return self.ids().team_id

    def check(self, *, team_id: str | None, enterprise_id: str | None) -> Workspace:
        """Whether a request naming this workspace and organisation is ours.

        The workspace must be ours. So must the organisation a request names: the one
        auth.test named (none for a workspace outside Enterprise Grid); before auth.test
        has answered, a request naming an organisation cannot be checked.

        Args:
            team_id: the workspace the request names (None when it names none).
            enterprise_id: the Enterprise Grid organisation it names, if any.

        Returns:
            OURS, NOT_OURS, or UNKNOWN while the bot does not know what is ours.
        """
        with self._lock:
            known = self._known
        if known is None:
            self.learn_in_background()
        ours = self._configured_team or (known.team_id if known else None)
        if ours is None:
            return Workspace.UNKNOWN
        if team_id != ours:
            return Workspace.NOT_OURS
        if enterprise_id is None:
            return Workspace.OURS
        if known is None:
            return Workspace.UNKNOWN
        return Workspace.OURS if enterprise_id == known.enterprise_id else Workspace.NOT_OURS
