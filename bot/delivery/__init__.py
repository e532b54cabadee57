"""Getting the bot's words to Slack, exactly once: the transactional outbox (posts and
follow-up DMs alike), expiring claims, the Web API client, per-message update locks,
the bot's identity and workspace roles, and the executor for work after an ack.

May import `bot.views`, `bot.domain`, `bot.agent`, `bot.core` and `models`; never
Bolt (the listeners' adapter) or Celery.
"""
