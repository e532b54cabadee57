"""What happens after a listener acknowledged, and in each periodic job: decide and
announce, show an answer, send what is owed, evaluate alerts. Each function owns its
transactions, like a job. `Runtime` is what one process builds from the settings.

May import `bot.delivery`, `bot.views`, `bot.domain`, `bot.agent`, `bot.core` and
`models`; never Bolt or Celery (the listeners and tasks call in here).
"""
