"""The cheapest benchmarks, run end to end as people run them, so bench cannot silently rot.

`python -m bench.bare_bolt --quick` starts the fake Slack in a child process, the bare
floor under gunicorn and the load generator; `python -m bench.queries --quick` seeds a
small history with COPY (which breaks when a table changes) and times the application's
own queries; `python -m bench.production --quick` starts ours in production shape (two
serve processes, a real Celery worker) beside the floor. None is a timed test: they
assert the report, not the figures.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from sqlalchemy import create_engine, text

from tests.support.databases import PG_DATABASE, PG_SERVER
from tests.support.harness import ROOT
from tests.support.jobs_harness import BROKER_URL

# A bench database of this checkout's own, named after its test database.
BENCH_DATABASE = "resolvemeq_bench_" + re.sub(r"[^a-z0-9_]", "_", PG_DATABASE.lower())[:40]


def _run(*argv: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "BENCH_POSTGRES_URL": PG_SERVER}
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _table_rows(output: str, first_cell: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")]
            for line in output.splitlines() if line.startswith(f"| {first_cell}")]


def test_the_bare_floor_quick_run_reports_every_request_answered():
    result = _run("bench.bare_bolt", "--quick", "--seconds", "1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "### The bare Bolt floor (quick run)" in result.stdout
    assert result.stdout.startswith("Machine: ")
    rows = {row[0]: row for row in _table_rows(result.stdout, "100 req/s")
            + _table_rows(result.stdout, "closed c=16")}
    assert set(rows) == {"100 req/s", "closed c=16"}
    for run, row in rows.items():
        sent, ok, failed = int(row[1]), int(row[2]), int(row[3])
        assert sent > 0 and ok == sent and failed == 0, f"{run}: {row}"
    assert int(rows["100 req/s"][1]) == 100  # 1 s at 100 requests/s


def test_the_queries_quick_run_times_every_query_and_drops_its_database():
    result = _run("bench.queries", "--quick", "--actions", "5000", "--resolutions", "1000",
                  "--runs", "1", "--database", BENCH_DATABASE)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "seeded in" in result.stdout
    assert "action_history 5,000" in result.stdout
    timed = {row[0] for row in _table_rows(result.stdout, "`")}
    for query in ("`resolution_stats(90 d)`", "`alerts.failure_rate`", "`outbox.claim_due`",
                  "`sweep.stale_new_tickets`", "`sla.due_tickets`", "`sla.sla_stats(90 d)`"):
        assert query in timed
    assert sum(name.startswith("`rollback.find_action(") for name in timed) == 3
    engine = create_engine(f"{PG_SERVER}/postgres")
    try:
        with engine.connect() as conn:
            left = conn.scalar(text("SELECT count(*) FROM pg_database WHERE datname = :name"),
                               {"name": BENCH_DATABASE})
    finally:
        engine.dispose()
    assert left == 0


def test_the_production_quick_run_measures_every_phase_with_the_worker_deciding():
    result = _run("bench.production", "--quick", "--seconds", "1", "--seed", "20",
                  "--database", BENCH_DATABASE, "--redis", BROKER_URL, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "### Production shape (quick run)" in result.stdout
    verdicts = {row[0]: row for row in _table_rows(result.stdout, "")
                if len(row) == 8 and row[0] != "phase" and not row[1].isdigit()}
    assert set(verdicts) == {"clicks, closed loop, 32 connections",
                             "`/ticket` acks, closed loop, 32 connections",
                             "100 req/s, half `/ticket`, open loop"}
    for row in verdicts.values():
        assert row[5] in ("met", "**missed**")
    # The acks' tickets reached the worker: it decided some of them during the runs.
    decided = float(verdicts["`/ticket` acks, closed loop, 32 connections"][6].split("/s")[0])
    mixed = float(verdicts["100 req/s, half `/ticket`, open loop"][6].split("/s")[0])
    assert decided + mixed > 0
    # Ours' clicks were redrawn by the worker, and the person's wait for it is reported.
    redraws = verdicts["clicks, closed loop, 32 connections"][7]
    assert float(redraws.split("/s")[0]) > 0 and "p99" in redraws, redraws
    waits = {row[0]: row for row in _table_rows(result.stdout, "") if len(row) == 8 and row[1].isdigit()}
    assert set(waits) == {"clicks", "mixed"}
    assert all(int(row[3]) > 0 and row[5].endswith(" ms") for row in waits.values())
    split = [row for row in _table_rows(result.stdout, "")
             if len(row) == 11 and row[1] in ("ours", "bare") and row[0] != "phase"]
    assert {(row[0], row[1]) for row in split} == {(phase, server) for phase in ("clicks", "acks", "mixed")
                                                   for server in ("ours", "bare")}
    assert all(float(row[2]) > 0 for row in split if row[1] == "ours")  # the serve processes worked
