"""Bolt listeners: one module per Slack surface, each with `register(routes)`.

Listeners are thin: read the payload, check who is asking, call one service, answer
with a view. A listener that needs the database takes `session` (the request's
transaction, committed by its `ack`: `handlers.transaction`); anything slow goes to
`deps.background` after the ack (figures to `deps.reads`), both bounded: what must
know whether there is room asks before its ack (`slot`), what may be dropped uses
`try_submit`. A listener never catches our errors or the database's: it raises, and
`handlers.errors` answers the person.

May import `bot.workflows` and the layers below it; never `bot.platform` or `jobs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import App

if TYPE_CHECKING:
    from handlers.routing import Routes


def all_routes() -> Routes:
    """Every handler module's buttons, commands and events, in one set of routes."""
    from handlers import (
        admin,
        approvals,
        autonomy,
        commands,
        feedback,
        home,
        message_tickets,
        messages,
        requester,
        teamwork,
    )
    from handlers.routing import Routes

    routes = Routes()
    for module in (commands, messages, message_tickets, feedback, admin, approvals, teamwork,
                   requester, autonomy, home):
        module.register(routes)
    return routes


def register_all(app: App) -> None:
    """Bind every listener and the error handler to `app` (`handlers.routing`: one
    listener per kind of request, routing by the request's own id)."""
    from handlers import errors

    all_routes().bind(app)
    errors.register(app)
