"""The Celery app and its tasks: thin wrappers over `bot.workflows`.

May import `bot.workflows` and the layers below it; never `bot.platform` or `handlers`.
"""
