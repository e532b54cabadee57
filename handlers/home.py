"""The App Home tab: the viewer's open tickets and the analytics (counted at most every
30 s), published when someone opens it."""

from __future__ import annotations

from slack_bolt import Ack

from bot.workflows import home
from handlers.deps import SlackDeps
from handlers.routing import Routes


def home_opened(ack: Ack, event: dict, deps: SlackDeps) -> None:
    ack()
    if event.get("tab") not in (None, "home"):
        return
    user = event.get("user")
    if user:
        # On the reads' executor: never in front of a decision. When it is full the tab
        # keeps what it showed last; the next open draws it again.
        deps.reads.try_submit(home.publish_home, deps.client, user, is_admin=deps.is_admin(user),
                              figures=deps.home)


def register(routes: Routes) -> None:
    routes.event("app_home_opened")(home_opened)
