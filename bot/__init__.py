"""ResolveMeQ for Slack: the application, in one subpackage per layer.

From the top (a layer may import the layers below it, never one above):

- `bot.platform`: process wiring: the Bolt app factory, the HTTP server, the CLI,
  the embedded scheduler, the manifest, migrations, the health check.
- `handlers` and `jobs` (top-level packages): the Bolt listeners and the Celery tasks.
- `bot.workflows`: what happens after an acknowledgement and in every periodic job;
  owns its transactions; joins the domain, views and delivery.
- `bot.delivery`: getting messages to Slack: the outbox (posts, follow-ups), claims, the Web
  API client, per-message locks, the bot's identity, the background executor.
- `bot.views`: Block Kit and plain-text builders, pure (data in, blocks out).
- `bot.domain`: the helpdesk rules: intake, the policy, actions, rollback, feedback,
  analytics, audit, caps. Takes a session and plain values; flushes, never commits.
- `bot.agent`: the agents that decide (knowledge base, HTTP).
- `bot.core`: settings, the one clock, the errors a person is told about, Sentry.
- `models` (top-level package): SQLAlchemy models and the session factory.

`tests/unit/test_layers.py` checks these rules over the import graph.
"""
