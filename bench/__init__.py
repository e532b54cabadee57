"""Benchmarks: scripts anyone can run (`python -m bench.ack_path --quick`), never timed tests.

Each script starts what it measures (PostgreSQL database, Redis database, a fake Slack,
the real `resolvemeq serve` and a bare Bolt app) on loopback, and stops it again.
"""
