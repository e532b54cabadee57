"""The Celery app and its tasks: thin wrappers over bot/ services."""
