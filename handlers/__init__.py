"""Bolt listeners: one module per Slack surface, each with `register(app)`.

Listeners are thin: read the payload, check who is asking, call one service, answer
with a view. Anything slow goes to `deps.background`.
"""

from slack_bolt import App


def register_all(app: App) -> None:
    """Bind every listener and the error handler to `app`."""
    from handlers import admin, commands, errors, feedback, home, messages

    for module in (commands, messages, feedback, admin, home, errors):
        module.register(app)
