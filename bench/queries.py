"""Time every analytics, alert and job query against ninety days of a busy helpdesk.

    python -m bench.queries                  # seed 1,000,000 actions / 200,000 resolutions
    python -m bench.queries --reuse --keep   # the database a previous --keep run left
    python -m bench.queries --actions 100000 --resolutions 20000 --runs 5   # a closer look
    python -m bench.queries --quick          # 20,000 actions, 3 runs (seconds)
    python -m bench.queries --reuse --keep --only experiment   # one group of queries

What it does: builds `resolvemeq_bench_queries` with the migrations, fills it with
`bench.seed.seed_history` (COPY), `VACUUM ANALYZE`, then calls the application's own
functions, exactly as the bot does, with the SQL they issue captured by a
`before_cursor_execute` listener:

- `bot.domain.analytics.resolution_stats` for 1, 7, 30 and 90 days;
- each rule of `bot.workflows.alerts.measure_all`;
- the outbox claim (`bot.delivery.outbox.claim_due`, posts and follow-up DMs alike), in
  a transaction that is rolled back (nothing is claimed for real);
- `bot.domain.sweep.stale_new_tickets`;
- `bot.domain.rollback.find_action` by 8-character prefix;
- `bot.domain.sla.due_tickets` (the `check_sla` job's pick) and `sla_stats` for 30, 90
  and 365 days, over `ticket_sla` rows filled for every seeded ticket (`fill_sla`: as if
  the job had measured them all; a third of the open ones due again now), read from the
  SLA rollup (bot.domain.sla_rollup) the timed `roll_up_stats` passes keep, with the
  partial days counted live.
- `bot.domain.experiment_stats.results` (the THRESHOLD_EXPERIMENT figures per arm and the
  z-test) over an experiment running for the last 30 days, every agent action in it
  given an arm (`fill_experiment`: a third of the seeded history).

Each is run once to warm up, then `--runs` times; the report gives the median and the
maximum of the call and of every statement in it, and `EXPLAIN (ANALYZE, BUFFERS)`
of every statement (SELECTs; the FOR UPDATE ones inside a rolled-back transaction).
Target: every statement under 100 ms.

The indexes and queries this benchmark once proposed are applied (migration 0003,
`bot/domain/rollback.py`, `bot/domain/analytics.py`); the figures from before them are
in the git history of docs/BENCHMARKS.md. The database is dropped at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/queries.py` as well as `python -m bench.queries`
    sys.path.insert(0, str(ROOT))

from sqlalchemy import event, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench import seed  # noqa: E402
from bench.databases import (  # noqa: E402
    admin_url,
    analyze,
    database_url,
    drop_database,
    fresh_database,
)
from bench.machine import database_machine, loadavg_text  # noqa: E402

TARGET_MS = 100.0
UTC = dt.UTC

@dataclass
class Statement:
    sql: str
    parameters: object
    times: list[float] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)


@dataclass
class Case:
    name: str
    call: Callable[[Session], object]
    writes: bool = False  # run inside a transaction that is rolled back
    statements: list[Statement] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    cpu: list[tuple[float, float]] = field(default_factory=list)


class Capture:
    """Every statement a block issues, with its duration (a cursor listener)."""

    def __init__(self, engine) -> None:
        self.active: list[tuple[str, object, float]] | None = None
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("bench_t0", []).append(time.perf_counter())

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        started = conn.info["bench_t0"].pop()
        if self.active is not None:
            self.active.append((statement, parameters, (time.perf_counter() - started) * 1000))


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_case(case: Case, sessions, capture: Capture, runs: int) -> None:
    for attempt in range(runs + 1):  # the first run warms caches and is not counted
        run_one(case, sessions, capture, attempt)


def run_one(case: Case, sessions, capture: Capture, attempt: int) -> None:
    capture.active = []
    session = sessions()
    try:
        backend = _backend_pid(session)
        server = _process_cpu(backend)
        cpu = time.process_time()
        started = time.perf_counter()
        case.call(session)
        elapsed = (time.perf_counter() - started) * 1000
        ours = (time.process_time() - cpu) * 1000
        theirs = _process_cpu(backend) - server
    finally:
        session.rollback()  # nothing a claim took is kept
        session.close()
    issued, capture.active = capture.active, None
    if attempt == 0:
        case.statements = [Statement(sql, params) for sql, params, _ in issued]
        return
    case.times.append(elapsed)
    case.cpu.append((ours, theirs))
    for stmt, (_, _, ms) in zip(case.statements, issued, strict=False):
        stmt.times.append(ms)


def _backend_pid(session: Session) -> int:
    return session.connection().connection.dbapi_connection.get_backend_pid()  # type: ignore[union-attr]


_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    """CPU ms a local process (PostgreSQL's backend of the session) has used so far:
    the work of a call whatever the load of the shared machine, where a wall time is
    mostly waiting for a core. In 10 ms ticks: read as the mean over the runs."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) * _TICK_MS


def cpu_text(case: Case) -> str:
    """Mean CPU ms per call: ours (this process: Python, the driver) + PostgreSQL's backend."""
    if not case.cpu:
        return "-"
    ours = statistics.fmean(c[0] for c in case.cpu)
    theirs = statistics.fmean(c[1] for c in case.cpu)
    return f"{ours + theirs:.1f} ({ours:.1f} + {theirs:.1f})"


def run_pairs(pairs: list[tuple[Case, Case]], sessions, capture: Capture, runs: int) -> None:
    """Before and after, alternately (which goes first alternates too), so the load of
    a shared machine falls on both alike."""
    for attempt in range(runs + 1):
        for before, after in pairs:
            for case in ((before, after) if attempt % 2 == 0 else (after, before)):
                run_one(case, sessions, capture, attempt)


def explain(case: Case, engine) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the SELECTs, in a transaction rolled back."""
    with engine.connect() as conn:
        for stmt in case.statements:
            if not stmt.sql.lstrip().upper().startswith("SELECT"):
                continue
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + stmt.sql, stmt.parameters)
            stmt.plan = [row[0] for row in rows]
        conn.rollback()


# ----- the cases ---------------------------------------------------------------------------


def prefixes(engine, n: int = 5) -> list[str]:
    """8-hex-digit prefixes of actions spread over the table (`/rollback 3f2a9c1e`)."""
    with engine.connect() as conn:
        ids = conn.execute(text(
            "SELECT id FROM action_history TABLESAMPLE SYSTEM (1) REPEATABLE (7) LIMIT :n"),
            {"n": n}).scalars().all()
    return [uuid.UUID(str(i)).hex[:8] for i in ids]


def app_cases(settings, now: dt.datetime, refs: list[str]) -> list[Case]:
    from bot.delivery import outbox
    from bot.domain import analytics, rollback, sla, sweep
    from bot.workflows import alerts

    cases = [Case(f"resolution_stats({days} d)",
                  partial(lambda s, d: analytics.resolution_stats(s, days=d, now=now), d=days))
             for days in WINDOWS]
    cases += [Case(f"/resolution-stats all figures ({days} d)",
                   partial(lambda s, d: whole_command(s, days=d, now=now), d=days))
              for days in WINDOWS]
    cases += [Case(f"alerts.{rule}", partial(lambda s, m: m(s, settings, now), m=measure))
              for rule, measure in alerts._MEASURES.items()]
    cases += [
        Case("outbox.claim_due",
             lambda s: outbox.claim_due(s, now=now, ttl=settings.claim_ttl, limit=100),
             writes=True),
        Case("sweep.stale_new_tickets",
             lambda s: sweep.stale_new_tickets(s, now=now, grace=settings.sweep_grace)),
    ]
    cases += [Case(f"rollback.find_action('{ref}')", partial(rollback.find_action, ref=ref))
              for ref in refs[:3]]
    cases += [Case("sla.due_tickets", lambda s: sla.due_tickets(s, now=now))]
    cases += [Case(f"sla.sla_stats({days} d)",
                   partial(lambda s, d: sla.sla_stats(s, since=now - dt.timedelta(days=d)), d=days))
              for days in (30, 90, 365)]
    cases += [Case("experiment_stats.results(30 d)", _experiment_results)]
    return cases


WINDOWS = (1, 7, 30, 90, 365)


def before_cases(now: dt.datetime) -> list[Case]:
    """The figures as counted before the rollup: the straightforward queries of
    bot/domain/analytics.py and success.py at 4dab0d4 (tests/support/full_stats.py)."""
    from tests.support.full_stats import full_resolution_stats

    return [Case(f"before: full count ({days} d)",
                 partial(lambda s, d: full_resolution_stats(s, days=d, now=now), d=days))
            for days in WINDOWS]


def whole_command(session: Session, *, days: int, now: dt.datetime) -> None:
    """Everything `/resolution-stats` reads (handlers/commands.py:_stats_answer)."""
    from bot.domain import analytics, autonomy, sla

    stats = analytics.resolution_stats(session, days=days, now=now)
    analytics.latest_comments(session, stats.since)
    autonomy.shadow_comparison(session, days=days, now=now)
    sla.sla_stats(session, since=stats.since)


def roll_up(sessions, now: dt.datetime) -> tuple[float, int]:
    """Run the `roll_up_stats` job's steps until nothing is left; (seconds, calls)."""
    from bot.domain import rollup, sla_rollup
    from models import transaction

    started, calls = time.perf_counter(), 0
    while True:
        calls += 1
        with transaction(sessions) as session:
            if not rollup.roll_up(session, now=now) + sla_rollup.roll_up(session, now=now):
                break
    return time.perf_counter() - started, calls


def late_changes(engine, n: int) -> None:
    """`n` late answers and n/10 rollbacks on resolutions spread over the window, as
    people make them after their day was rolled (the triggers mark the tickets)."""
    with engine.begin() as conn:
        conn.execute(text(
            "UPDATE ticket_resolution SET resolution_confirmed = NOT coalesce(resolution_confirmed, false), "
            "satisfaction_score = 5 WHERE id IN (SELECT id FROM ticket_resolution "
            "ORDER BY md5(id::text) LIMIT :n)"), {"n": n})
        conn.execute(text(
            "UPDATE action_history SET rolled_back = NOT rolled_back WHERE id IN (SELECT id FROM "
            "action_history WHERE action_type = 'AUTO_RESOLVE' ORDER BY md5(id::text) LIMIT :n)"),
            {"n": max(1, n // 10)})


def _experiment_results(session: Session) -> object:
    from bot.domain import experiment_stats, experiments

    running = experiments.running(session)
    assert running is not None, "fill_experiment left no running experiment"
    return experiment_stats.results(session, running)


EXPERIMENT_DAYS = 30


def fill_experiment(engine, now: dt.datetime) -> int:
    """A THRESHOLD_EXPERIMENT (0.75 vs 0.85) running for the last EXPERIMENT_DAYS days, every
    agent action in that time recorded in it, the arm by the ticket (as the hash does,
    one arm per ticket); returns how many actions it holds."""
    started = now - dt.timedelta(days=EXPERIMENT_DAYS)
    with engine.begin() as conn:
        conn.execute(text("UPDATE action_history SET experiment_id = NULL, threshold_arm = NULL "
                          "WHERE experiment_id IS NOT NULL"))
        conn.execute(text("DELETE FROM threshold_experiments"))
        experiment = conn.execute(text(
            "INSERT INTO threshold_experiments (arms, started_at, running, stop_reason) "
            "VALUES ('0.75,0.85', :started, true, '') RETURNING id"), {"started": started}).scalar_one()
        return conn.execute(text("""
            UPDATE action_history SET experiment_id = :experiment,
                threshold_arm = CASE WHEN ticket_id % 2 = 0 THEN 0.75 ELSE 0.85 END
            WHERE executed_at >= :started
              AND action_type IN ('AUTO_RESOLVE', 'ESCALATE', 'ASSIGN_TO_TEAM', 'REQUEST_CLARIFICATION')
        """), {"experiment": experiment, "started": started}).rowcount


def fill_sla(engine, now: dt.datetime) -> int:
    """A `ticket_sla` row for every seeded ticket, as the `check_sla` job would leave them
    (priorities, times and breaches spread by ticket id); returns how many."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM ticket_sla"))
        return conn.execute(text("""
            INSERT INTO ticket_sla (ticket_id, priority, team, started_at, response_target_s,
                resolution_target_s, first_response_at, response_s, resolution_s, elapsed_s,
                response_breached_at, settled, next_check_at, updated_at)
            SELECT ticket_id, (ARRAY['critical', 'high', 'normal', 'normal'])[1 + ticket_id % 4],
                COALESCE(assigned_team, 'Service Desk'), created_at, 3600, 86400,
                created_at + make_interval(secs => ticket_id % 5400), ticket_id % 5400,
                CASE WHEN status IN ('resolved', 'closed') THEN (ticket_id * 7) % 172800 END,
                (ticket_id * 7) % 172800,
                CASE WHEN ticket_id % 5400 > 3600 THEN created_at + interval '1 hour' END,
                status IN ('resolved', 'closed'),
                CASE WHEN status IN ('resolved', 'closed') THEN NULL
                     WHEN ticket_id % 3 = 0 THEN :now - interval '1 minute'
                     ELSE :now + interval '1 hour' END,
                GREATEST(updated_at, created_at)
            FROM tickets
        """), {"now": now}).rowcount


# ----- report --------------------------------------------------------------------------------

_PLAN_KEEP = re.compile(
    r"(->|^\S|Index Cond|Filter|Rows Removed|Join Filter|Hash Cond|Sort Key|Buffers: shared"
    r"|Execution Time|Planning Time|SubPlan|InitPlan|Heap Fetches|Workers)")


def trimmed(plan: list[str], limit: int = 40) -> list[str]:
    kept = [line for line in plan if _PLAN_KEEP.search(line.strip()) or line[:1] != " "]
    return kept[:limit] + (["   ..."] if len(kept) > limit else [])


def scans(plan: list[str]) -> list[str]:
    found = re.findall(r"((?:Parallel )?Seq Scan on \w+|(?:Parallel )?Index(?: Only)? Scan"
                       r"(?: Backward)? using \w+|Bitmap Index Scan on \w+)", "\n".join(plan))
    return sorted(set(found))


def pages(plan: list[str]) -> int:
    """8 kB pages the statement touched (hit + read), from the top node's Buffers line:
    the work done, whatever the load of the machine."""
    for line in plan:
        if "Buffers: shared" in line:
            return sum(int(n) for n in re.findall(r"(?:hit|read)=(\d+)", line))
    return 0


def short_sql(sql: str, width: int = 110) -> str:
    one = " ".join(sql.split())
    return one if len(one) <= width else one[: width - 1] + "…"


def report(cases: list[Case], title: str) -> list[str]:
    out = [f"### {title}", "",
           "| query | call median ms | min | max | CPU ms/call: ours + PostgreSQL | "
           "statements: median / max ms each | pages | scans | each statement < 100 ms |",
           "|---|---:|---:|---:|---:|---|---:|---|---|"]
    for case in cases:
        parts, all_scans, worst, typical, touched = [], [], 0.0, 0.0, 0
        for i, stmt in enumerate(case.statements, 1):
            if not stmt.times:
                continue
            worst, typical = max(worst, max(stmt.times)), max(typical, _median(stmt.times))
            kind = stmt.sql.lstrip().split(None, 1)[0].upper()
            parts.append(f"{i} {kind} {_median(stmt.times):.1f} / {max(stmt.times):.1f}")
            all_scans += scans(stmt.plan)
            touched += pages(stmt.plan)
        met = ("yes" if worst < TARGET_MS else "median yes, max no" if typical < TARGET_MS
               else "**no**")
        out.append(f"| `{case.name}` | {_median(case.times):.1f} | {min(case.times):.1f} | "
                   f"{max(case.times):.1f} | {cpu_text(case)} | "
                   f"{'; '.join(parts)} | {touched:,} | {', '.join(sorted(set(all_scans)))} | {met} |")
    return out + [""]


def before_after(pairs: list[tuple[Case, Case]], whole: list[Case]) -> list[str]:
    out = ["### resolution_stats before (full count) and after (rollup + live), alternately", "",
           "| window | before median ms | after median ms | after max ms | after statements "
           "(worst median ms) | all of `/resolution-stats` after, median ms | < 100 ms |",
           "|---|---:|---:|---:|---|---:|---|"]
    for (before, after), command in zip(pairs, whole, strict=True):
        worst = max((_median(s.times) for s in after.statements if s.times), default=0.0)
        out.append(f"| {after.name} | {_median(before.times):,.1f} | {_median(after.times):,.1f} | "
                   f"{max(after.times):,.1f} | {len(after.statements)} ({worst:.1f}) | "
                   f"{_median(command.times):,.1f} | {'yes' if _median(after.times) < TARGET_MS else 'no'} |")
    return out + [""]


def plans(cases: list[Case]) -> list[str]:
    out = []
    for case in cases:
        for i, stmt in enumerate(case.statements, 1):
            if not stmt.plan:
                continue
            out += [f"#### `{case.name}` statement {i}", "", "```sql", short_sql(stmt.sql, 2000),
                    "```", "", "```"] + trimmed(stmt.plan) + ["```", ""]
    return out


# ----- main ----------------------------------------------------------------------------------


def measure(cases, sessions, capture, engine, runs) -> None:
    for case in cases:
        run_case(case, sessions, capture, runs)
        explain(case, engine)
        worst = max((max(s.times) for s in case.statements if s.times), default=0.0)
        print(f"  {case.name:<48} median {_median(case.times):8.1f} ms  "
              f"max {max(case.times):8.1f} ms  worst statement {worst:8.1f} ms  "
              f"cpu/call {cpu_text(case)} ms", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=None,
                        help="default resolvemeq_bench_queries; --quick resolvemeq_bench_quick")
    parser.add_argument("--quick", action="store_true",
                        help="20,000 actions, 4,000 resolutions, 3 runs per query (seconds)")
    parser.add_argument("--actions", type=int, default=None, help="default 1,000,000; --quick 20,000")
    parser.add_argument("--resolutions", type=int, default=None, help="default 200,000; --quick 4,000")
    parser.add_argument("--runs", type=int, default=None,
                        help="timed runs per query after a warm-up (default 7; --quick 3)")
    parser.add_argument("--reuse", action="store_true", help="use the data a --keep run left")
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--out", type=Path, help="also write the report (markdown) here")
    parser.add_argument("--only", default="", help="time only the queries whose name contains this")
    args = parser.parse_args(argv)
    args.actions = args.actions or (seed.QUICK_ACTIONS if args.quick else 1_000_000)
    args.resolutions = args.resolutions or (seed.QUICK_RESOLUTIONS if args.quick else 200_000)
    args.runs = args.runs or (3 if args.quick else 7)
    args.database = args.database or (seed.QUICK_DATABASE if args.quick else "resolvemeq_bench_queries")

    from bot.core.settings import load_settings
    from models import make_engine, make_session_factory

    runs = max(1, min(args.runs, 50))
    url = database_url(args.database)
    started = time.monotonic()
    if args.reuse:
        from bot.platform import migrations

        now = seed.seeded_until(url)
        migrations.upgrade(url)  # a kept database may predate the latest indexes
        print(f"reusing {args.database} (data up to {now.isoformat()})")
    else:
        url = fresh_database(args.database)
        now = dt.datetime.now(UTC).replace(microsecond=0)
        counts = seed.seed_history(url, actions=args.actions, resolutions=args.resolutions, now=now)
        seed.record_seed(url, now, counts)
        print(f"seeded in {time.monotonic() - started:.0f} s: "
              + ", ".join(f"{k} {v:,}" for k, v in counts.items()), flush=True)
    analyze(url)
    machine = database_machine(admin_url())
    engines = []
    try:
        engine = make_engine(url)
        engines.append(engine)
        sessions = make_session_factory(engine)
        capture = Capture(engine)
        settings = load_settings(database_url=url)
        filled = fill_sla(engine, now)
        in_experiment = fill_experiment(engine, now)
        analyze(url)
        print(f"ticket_sla: {filled:,} rows; experiment: {in_experiment:,} actions", flush=True)
        with engine.connect() as conn:
            sizes = {t: conn.scalar(text(f"SELECT count(*) FROM {t}")) for t in (
                "tickets", "action_history", "ticket_resolution", "agent_calls",
                "slack_outbox", "audit_events", "ticket_sla")}
        refs = prefixes(engine)
        print(f"machine: {machine}\nrows: {sizes}\nnow: {now.isoformat()}  prefixes: {refs}")
        lines = [f"Measured {machine['date']} on {machine['nproc']} x {machine['cpu']}, "
                 f"{machine['memory']}, PostgreSQL {machine['postgresql']}; rows: "
                 + ", ".join(f"{k} {v:,}" for k, v in sizes.items()), ""]

        with engine.begin() as conn:  # a kept database: roll it from nothing again
            conn.execute(text("TRUNCATE stats_rollup, stats_rollup_days, stats_dirty, "
                              "sla_rollup, sla_rollup_days, sla_dirty"))
        seconds, calls = roll_up(sessions, now)
        print(f"roll_up_stats, first pass over the whole history: {seconds:.1f} s, {calls} steps",
              flush=True)
        late_changes(engine, 200)
        steady, steady_calls = roll_up(sessions, now)
        print(f"roll_up_stats after 200 late answers and 20 rollbacks: {steady:.1f} s, "
              f"{steady_calls} steps", flush=True)
        analyze(url)
        lines.insert(1, f"Rollup job: the first pass over the whole history {seconds:.1f} s "
                     f"({calls} steps); a pass after 200 late answers and 20 rollbacks {steady:.1f} s.")

        passes: list[tuple[str, list[Case]]] = []
        print("before and after, alternately", flush=True)
        loads = [loadavg_text()]
        if args.only:  # one group of queries, at head only (no before/after table)
            chosen = [case for case in app_cases(settings, now, refs) if args.only in case.name]
            measure(chosen, sessions, capture, engine, runs)
            print("\n".join(report(chosen, f"Queries named '{args.only}'")))
            return 0
        after = app_cases(settings, now, refs)
        before = before_cases(now)
        pairs = list(zip(before, after[:len(WINDOWS)], strict=True))
        run_pairs(pairs, sessions, capture, runs)
        for case in before + after[:len(WINDOWS)]:
            explain(case, engine)
        measure(after[len(WINDOWS):], sessions, capture, engine, runs)
        loads.append(loadavg_text())
        lines += before_after(pairs, after[len(WINDOWS):2 * len(WINDOWS)])
        passes.append(("Before: the full count (the figures as counted at 4dab0d4)", before))
        passes.append(("Schema at head, queries as in bot/", after))
        lines.insert(1, "Load average (1/5/15 min) at the start of each pass and at the end: "
                     + " | ".join(loads))
        for title, cases in passes:
            lines += report(cases, title)
        for title, cases in passes:
            lines += [f"### Plans: {title}", "", *plans(cases)]
        text_out = "\n".join(lines)
        print(text_out)
        if args.out:
            args.out.write_text(text_out + "\n")
    finally:
        for engine in engines:
            engine.dispose()
        if not args.keep:
            drop_database(args.database)
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
