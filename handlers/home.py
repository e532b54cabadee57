"""The App Home tab: the analytics, published when someone opens it."""

from __future__ import annotations

from slack_bolt import Ack, App

from bot.workflows import announce
from handlers.deps import SlackDeps


def home_opened(ack: Ack, event: dict, deps: SlackDeps) -> None:
    ack()
    if event.get("tab") not in (None, "home"):
        return
    user = event.get("user")
    if user:
        deps.background.submit(announce.publish_home, deps.runtime, deps.client, user,
                               is_admin=deps.is_admin(user))


def register(app: App) -> None:
    app.event("app_home_opened")(home_opened)
