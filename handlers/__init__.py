"""Bolt listeners: one module per Slack surface, each with `register(app)`.

Listeners are thin: read the payload, check who is asking, call one service, answer
with a view. A listener that needs the database takes `session` (the request's
transaction, committed by its `ack`: `handlers.transaction`); anything slow goes to
`deps.background` after the ack (figures to `deps.reads`), both bounded: what must
know whether there is room asks before its ack (`slot`), what may be dropped uses
`try_submit`. A listener never catches our errors or the database's: it raises, and
`handlers.errors` answers the person.

May import `bot.workflows` and the layers below it; never `bot.platform` or `jobs`.
"""

import re

from slack_bolt import App


def register_all(app: App) -> None:
    """Bind every listener and the error handler to `app`."""
    from handlers import (
        admin,
        approvals,
        autonomy,
        commands,
        errors,
        feedback,
        home,
        message_tickets,
        messages,
        requester,
        teamwork,
    )

    for module in (commands, messages, message_tickets, feedback, admin, approvals, teamwork,
                   requester, autonomy, home, errors):
        module.register(app)
    # Last, so they only catch what nothing above handles: a 404 would show the
    # person an error, and Slack retries events that are not answered 200.
    app.action(re.compile(".*"))(_acknowledge)
    app.event(re.compile(".*"))(_acknowledge)


def _acknowledge(ack) -> None:
    ack()
