"""Who the bot is in Slack (its workspace and user ids), without a call on the request path.

Bolt, given only a token, calls auth.test during a process's first request: if Slack
is slow or down then, that request is lost or answered late. Here auth.test runs once
in the background at startup (and again, briefly, when still unknown); requests use
what is known, plus SLACK_TEAM_ID from the settings.
"""

from __future__ import annotations

import logging
import threading

from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT = 2.0


class BotIdentity:
    """The bot's team, user and bot ids; learned from auth.test, never blocking a request."""

    def __init__(self, client: WebClient, *, team_id: str | None):
        self._client = client
        self._configured_team = team_id
        self._known: dict | None = None
        self._lock = threading.Lock()
        self._quick = WebClient(token=client.token, base_url=client.base_url,
                                timeout=LOOKUP_TIMEOUT, retry_handlers=[])

    def learn_in_background(self) -> None:
        threading.Thread(target=self.learn, name="resolvemeq-auth-test", daemon=True).start()

    def learn(self) -> bool:
        """Ask auth.test once; True when the identity is known."""
        try:
            response = self._quick.auth_test()
        except Exception as error:  # Slack unreachable: requests go on with what we know
            log.warning("auth.test failed (%s); will ask again later", type(error).__name__)
            return False
        with self._lock:
            self._known = {"team_id": response.get("team_id"), "user_id": response.get("user_id"),
                           "bot_id": response.get("bot_id")}
        return True

    @property
    def team_id(self) -> str | None:
        """Our workspace: SLACK_TEAM_ID, else what auth.test said, else unknown."""
        with self._lock:
            known = self._known
        return self._configured_team or (known or {}).get("team_id")

    def authorize(self) -> AuthorizeResult:
        """What Bolt's `authorize` returns: no network call; schedules a lookup if unknown."""
        with self._lock:
            known = self._known
        if known is None:
            self.learn_in_background()
        known = known or {}
        return AuthorizeResult(
            enterprise_id=None,
            team_id=self._configured_team or known.get("team_id"),
            bot_user_id=known.get("user_id"),
            bot_id=known.get("bot_id"),
            bot_token=self._client.token,
        )
