"""Process wiring: the Bolt app factory, the HTTP server (gunicorn), the CLI, the
embedded scheduler, the Slack manifest, migrations and the health check.

The top layer: may import everything, including `handlers` and `jobs`; nothing
imports it but entry points and tests.
"""
