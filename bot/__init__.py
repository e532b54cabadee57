"""ResolveMeQ for Slack: the application layer (services, settings, views, CLI)."""
