"""Benchmarks: scripts anyone can run (`python -m bench.ack_path --quick`), never timed tests.

Each script starts what it measures (PostgreSQL database, Redis database, a fake Slack,
the real `resolvemeq serve` and a bare Bolt app) on loopback, and stops it again. Every
script has a `--quick` mode; docs/BENCHMARKS.md gives the figures at head and their
commands. `pip install -e ".[bench]"` brings what bench needs beyond the application.

The scripts: `ack_path`, `saturation`, `memory` (HTTP, ours beside the bare floor),
`bare_bolt` (the floor itself), `production` (ours in production shape beside the
floor: two serve processes, a Celery worker deciding), `decision_cpu`, `followup_sweep`,
`queries`, `seed`.
What they share, by job:

- `machine`: what a figure was measured on; `procstat`: who used the CPU and memory;
- `databases`: the bench's own PostgreSQL and Redis databases;
- `processes`: the fake Slack, servers and workers, started and stopped;
- `mix` and `load`: signed Slack requests and the load generators; `report`: tables.

They reuse the test suite's `tests/support/` (Slack signing, the fake Slack, the
`resolvemeq serve` harness, database creation) rather than copies of it.
"""
