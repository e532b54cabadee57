"""Who the bot is in Slack (its workspace and user ids), without a call on the request path.

Bolt, given only a token, calls auth.test during a process's first request: if Slack
is slow or down then, that request is lost or answered late. Here auth.test runs once
in the background at startup (and again, briefly, when still unknown); requests use
what is known, plus SLACK_TEAM_ID from the settings.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from slack_sdk import WebClient

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT = 2.0


@dataclass(frozen=True)
class Ids:
    """What is known of the bot in Slack; None where it is not known yet."""

    team_id: str | None = None
    user_id: str | None = None
    bot_id: str | None = None


class BotIdentity:
    """The bot's team, user and bot ids; learned from auth.test, never blocking a request."""

    def __init__(self, client: WebClient, *, team_id: str | None):
        self._client = client
        self._configured_team = team_id
        self._known: Ids | None = None
        self._lock = threading.Lock()
        self._quick = WebClient(token=client.token, base_url=client.base_url,
                                # slack_sdk types the timeout as int; urllib takes float seconds.
                                timeout=LOOKUP_TIMEOUT,  # type: ignore[arg-type]
                                retry_handlers=[])

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
            self._known = Ids(response.get("team_id"), response.get("user_id"),
                              response.get("bot_id"))
        return True

    def ids(self) -> Ids:
        """What is known now, with no network call (a lookup is started if nothing is);
        the team is SLACK_TEAM_ID when set, else what auth.test said."""
        with self._lock:
            known = self._known
        if known is None:
            self.learn_in_background()
            known = Ids()
        return Ids(self._configured_team or known.team_id, known.user_id, known.bot_id)

    @property
    def team_id(self) -> str | None:
        """Our workspace: SLACK_TEAM_ID, else what auth.test said, else unknown."""
        return self.ids().team_id
