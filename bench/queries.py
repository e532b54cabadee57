"""Time every analytics, alert and job query against ninety days of a busy helpdesk.

    python -m bench.queries                  # seed 1,000,000 actions / 200,000 resolutions
    python -m bench.queries --reuse --keep   # the database a previous --keep run left
    python -m bench.queries --actions 100000 --resolutions 20000 --runs 5   # quick look

What it does: builds `resolvemeq_bench_queries` with the migrations, fills it with
`bench.seed.seed_history` (COPY), `VACUUM ANALYZE`, then calls the application's own
functions, exactly as the bot does, with the SQL they issue captured by a
`before_cursor_execute` listener:

- `bot.analytics.resolution_stats` for 1, 7, 30 and 90 days;
- each rule of `bot.alerts.measure_all`;
- `bot.followups.claim_due` and the outbox claim (`bot.outbox._claim`), each in a
  transaction that is rolled back (nothing is claimed for real);
- `bot.sweep.stale_new_tickets`;
- `bot.rollback.find_action` by 8-character prefix.

Each is run once to warm up, then `--runs` times; the report gives the median and the
maximum of the call and of every statement in it, and `EXPLAIN (ANALYZE, BUFFERS)`
of every statement (SELECTs; the FOR UPDATE ones inside a rolled-back transaction).
Target: every statement under 100 ms.

Then (unless `--no-proposed`) it checks that the proposed queries answer exactly what
the current ones answer, creates the proposed indexes by hand in this bench database
only (`PROPOSED_INDEXES`; the application files and migrations belong to others), and
measures again: the application's queries, and the proposed rewrites of
`resolution_stats` (`resolution_stats_proposed`) and of the prefix lookup
(`find_action_by_range`). A last pass repeats `resolution_stats` with
`random_page_cost = 1.1`, the usual setting for SSDs. The database is dropped at the
end unless `--keep`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/queries.py` as well as `python -m bench.queries`
    sys.path.insert(0, str(ROOT))

from sqlalchemy import and_, case, event, func, literal, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench import seed  # noqa: E402

TARGET_MS = 100.0
UTC = dt.UTC

# ----- what the numbers showed, proposed (see docs/BENCHMARKS.md, "Queries") ---------------


@dataclass(frozen=True)
class IndexChange:
    """An index the bench creates by hand; `revert` puts the schema at head back."""

    name: str
    apply: tuple[str, ...]
    revert: tuple[str, ...]


PROPOSED_INDEXES: tuple[IndexChange, ...] = (
    # followups.claim_due: answered and already-sent resolutions keep their due time, so
    # the plain index on followup_due_at walks all of them (oldest first) before it finds
    # a due one. Partial: only follow-ups that may still be sent.
    IndexChange(
        "ix_ticket_resolution_followup_due_at",
        ("DROP INDEX IF EXISTS ix_ticket_resolution_followup_due_at",
         "CREATE INDEX ix_ticket_resolution_followup_due_at ON ticket_resolution "
         "(followup_due_at) WHERE followup_sent_at IS NULL AND response_received_at IS NULL"),
        ("DROP INDEX IF EXISTS ix_ticket_resolution_followup_due_at",
         "CREATE INDEX ix_ticket_resolution_followup_due_at ON ticket_resolution "
         "(followup_due_at)")),
    # alerts._failure_rate: its window is on response_received_at, which has no index.
    IndexChange(
        "ix_ticket_resolution_response_received_at",
        ("CREATE INDEX IF NOT EXISTS ix_ticket_resolution_response_received_at "
         "ON ticket_resolution (response_received_at)",),
        ("DROP INDEX IF EXISTS ix_ticket_resolution_response_received_at",)),
    # analytics._by_action_type, _by_team and alerts._low_confidence read these columns
    # of the rows in a window of executed_at: an index-only scan instead of heap visits.
    IndexChange(
        "ix_action_history_executed_at",
        ("DROP INDEX IF EXISTS ix_action_history_executed_at",
         "CREATE INDEX ix_action_history_executed_at ON action_history (executed_at) "
         "INCLUDE (action_type, autonomous, confidence_score, rolled_back, ticket_id)"),
        ("DROP INDEX IF EXISTS ix_action_history_executed_at",
         "CREATE INDEX ix_action_history_executed_at ON action_history (executed_at)")),
    # analytics._by_team reads one column of tickets (assigned_team) per ticket: from a
    # 21 MB index instead of the 168 MB table, by index-only probes for short windows.
    IndexChange(
        "ix_tickets_ticket_id",
        ("CREATE INDEX IF NOT EXISTS ix_tickets_ticket_id ON tickets (ticket_id) "
         "INCLUDE (assigned_team)",),
        ("DROP INDEX IF EXISTS ix_tickets_ticket_id",)),
)
# An operations setting, not a schema change: the planner's default assumes spinning
# disks; on SSD (or a cached working set) 1.1 is the usual value.
SSD_OPTIONS = "-c random_page_cost=1.1"


def set_indexes(engine, which: str) -> None:
    """Put the proposed indexes in (`apply`) or the schema at head back (`revert`)."""
    with engine.connect() as conn:
        for change in PROPOSED_INDEXES:
            started = time.monotonic()
            for ddl in getattr(change, which):
                conn.execute(text(ddl))
            conn.commit()
            if which == "apply":
                print(f"  created {change.name} in {time.monotonic() - started:.1f} s", flush=True)


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
        capture.active = []
        session = sessions()
        try:
            started = time.perf_counter()
            case.call(session)
            elapsed = (time.perf_counter() - started) * 1000
        finally:
            session.rollback()  # nothing a claim took is kept
            session.close()
        issued, capture.active = capture.active, None
        if attempt == 0:
            case.statements = [Statement(sql, params) for sql, params, _ in issued]
            continue
        case.times.append(elapsed)
        for stmt, (_, _, ms) in zip(case.statements, issued, strict=False):
            stmt.times.append(ms)


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
    from bot import alerts, analytics, followups, outbox, rollback, sweep

    cases = [Case(f"resolution_stats({days} d)",
                  lambda s, d=days: analytics.resolution_stats(s, days=d, now=now))
             for days in (1, 7, 30, 90)]
    cases += [Case(f"alerts.{measure.__name__.lstrip('_')}",
                   lambda s, m=measure: m(s, settings, now))
              for measure in alerts._MEASURES]
    cases += [
        Case("followups.claim_due",
             lambda s: followups.claim_due(s, now=now, ttl=settings.claim_ttl), writes=True),
        Case("outbox claim (outbox._claim)",
             lambda s: outbox._claim(s, now=now, ttl=settings.claim_ttl, ids=None, limit=100),
             writes=True),
        Case("sweep.stale_new_tickets",
             lambda s: sweep.stale_new_tickets(s, now=now, grace=settings.sweep_grace)),
    ]
    cases += [Case(f"rollback.find_action('{ref}')", lambda s, r=ref: rollback.find_action(s, r))
              for ref in refs[:3]]
    return cases


def find_action_by_range(session: Session, digits: str):
    """The proposed prefix lookup of `bot.rollback.find_action`: a range on the primary
    key. The ids starting with a prefix of the 32 hex digits are those between the prefix
    padded with 0s and with fs, in the order of uuid on PostgreSQL and of the 32-digit
    text SQLite stores."""
    from models import ActionHistory

    low, high = uuid.UUID(hex=digits.ljust(32, "0")), uuid.UUID(hex=digits.ljust(32, "f"))
    return session.scalars(
        select(ActionHistory).where(ActionHistory.id.between(low, high))
        .order_by(ActionHistory.executed_at, ActionHistory.id).limit(11)).all()


def resolution_stats_proposed(session: Session, *, days: int, now: dt.datetime):
    """`bot.analytics.resolution_stats` with the proposed join: only rolled-back actions
    are joined (`AND action_history.rolled_back IS true`), so "kept" is "no row joined".

    The current query joins every resolution to its action for one boolean: a
    nested-loop probe of the 1,000,000-row table per resolution (or a hash of all of
    it). Rolled-back actions are a few hundred, hashed once. A resolution whose action
    row is gone (action_id NULL) still counts as kept, as before.
    """
    from bot import analytics
    from bot.analytics import _count_if, _rate, _rounded, _validate_days
    from models import ActionHistory, Ticket, TicketResolution

    days = _validate_days(days)
    since = now - dt.timedelta(days=days)
    kept, withdrawn = ActionHistory.id.is_(None), ActionHistory.id.is_not(None)
    withdrawn_only = and_(ActionHistory.id == TicketResolution.action_id,
                          ActionHistory.rolled_back.is_(True))
    confirmed = TicketResolution.resolution_confirmed

    def outcome_columns():
        return [
            _count_if(kept).label("resolutions"),
            _count_if(and_(kept, confirmed.is_(True))).label("confirmed"),
            _count_if(and_(kept, confirmed.is_(False))).label("failed"),
            _count_if(and_(kept, confirmed.is_(None))).label("pending"),
            _count_if(and_(kept, TicketResolution.reopened.is_(True))).label("reopened"),
            func.avg(case((kept, TicketResolution.satisfaction_score))).label("avg_rating"),
            func.count(case((kept, TicketResolution.satisfaction_score))).label("ratings"),
        ]

    totals = session.execute(
        select(*outcome_columns(), _count_if(withdrawn).label("withdrawn"))
        .select_from(TicketResolution).outerjoin(ActionHistory, withdrawn_only)
        .where(TicketResolution.created_at >= since)).one()
    by_action_type = analytics._by_action_type(session, since)  # unchanged

    team = func.coalesce(Ticket.assigned_team, literal(analytics.UNASSIGNED)).label("team")
    tickets = {row.team: row.tickets for row in session.execute(
        select(team, func.count(func.distinct(ActionHistory.ticket_id)).label("tickets"))
        .select_from(ActionHistory).join(Ticket, Ticket.ticket_id == ActionHistory.ticket_id)
        .where(ActionHistory.action_type.in_(analytics.ACTION_TYPES),
               ActionHistory.executed_at >= since)
        .group_by(team))}
    outcomes = {row.team: row for row in session.execute(
        select(team, *outcome_columns()).select_from(TicketResolution)
        .join(Ticket, Ticket.ticket_id == TicketResolution.ticket_id)
        .outerjoin(ActionHistory, withdrawn_only)
        .where(TicketResolution.created_at >= since).group_by(team))}
    by_team = []
    for name in sorted(tickets.keys() | outcomes.keys()):
        row = outcomes.get(name)
        yes, no = (row.confirmed, row.failed) if row else (0, 0)
        by_team.append(analytics.TeamStats(
            team=name, tickets=tickets.get(name, 0), resolutions=row.resolutions if row else 0,
            confirmed=yes, failed=no, success_rate=_rate(yes, no),
            average_rating=_rounded(row.avg_rating, 2) if row else None))
    return analytics.ResolutionStats(
        days=days, since=since, resolutions=totals.resolutions, confirmed=totals.confirmed,
        failed=totals.failed, pending=totals.pending, reopened=totals.reopened,
        success_rate=_rate(totals.confirmed, totals.failed),
        average_rating=_rounded(totals.avg_rating, 2), ratings=totals.ratings,
        withdrawn=totals.withdrawn, by_action_type=by_action_type,
        by_team=tuple(by_team))


def proposed_cases(now: dt.datetime, refs: list[str]) -> list[Case]:
    return ([Case(f"resolution_stats({days} d) [proposed join]",
                  lambda s, d=days: resolution_stats_proposed(s, days=d, now=now))
             for days in (1, 7, 30, 90)]
            + [Case(f"find_action by id range ('{ref}') [proposed]",
                    lambda s, r=ref: find_action_by_range(s, r)) for ref in refs[:3]])


def verify(sessions, now: dt.datetime, refs: list[str]) -> list[str]:
    """The proposed queries answer what the current ones answer."""
    from bot import analytics, rollback
    from bot.errors import ResolveMeQError

    problems = []
    with sessions() as session:
        for days in (1, 7, 30, 90):
            if resolution_stats_proposed(session, days=days, now=now) != \
                    analytics.resolution_stats(session, days=days, now=now):
                problems.append(f"resolution_stats({days}) differs")
        for ref in [*refs, refs[0][:4], "0000", "ffff"]:
            try:
                current = {rollback.find_action(session, ref).id}
            except ResolveMeQError as error:  # NotFound, Ambiguous
                current = set(getattr(error, "matches", []) or [])
                current = {type(error).__name__, *sorted(current)}
            rows = find_action_by_range(session, ref)
            if len(rows) == 1:
                proposed = {rows[0].id}
            else:
                proposed = {"NotFound" if not rows else "Ambiguous",
                            *sorted(r.id.hex[:8] for r in rows[:10])}
            if current != proposed:
                problems.append(f"find_action({ref!r}): {current} != {proposed}")
    return problems


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
           "| query | call median ms | min | max | statements: median / max ms each | "
           "pages | scans | each statement < 100 ms |", "|---|---:|---:|---:|---|---:|---|---|"]
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
                   f"{max(case.times):.1f} | "
                   f"{'; '.join(parts)} | {touched:,} | {', '.join(sorted(set(all_scans)))} | {met} |")
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
              f"max {max(case.times):8.1f} ms  worst statement {worst:8.1f} ms", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="resolvemeq_bench_queries")
    parser.add_argument("--actions", type=int, default=1_000_000)
    parser.add_argument("--resolutions", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7, help="timed runs per query (after a warm-up)")
    parser.add_argument("--reuse", action="store_true", help="use the data a --keep run left")
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--no-proposed", action="store_true", help="skip the after-fix passes")
    parser.add_argument("--out", type=Path, help="also write the report (markdown) here")
    args = parser.parse_args(argv)

    from bot.settings import load_settings
    from models import make_engine, make_session_factory

    runs = max(1, min(args.runs, 50))
    url = seed.database_url(args.database)
    started = time.monotonic()
    if args.reuse:
        engine = make_engine(seed.require_loopback(url))
        with engine.connect() as conn:
            note = conn.scalar(text(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname = current_database()"))
        set_indexes(engine, "revert")  # a kept database may hold them from last time
        engine.dispose()
        now = dt.datetime.fromisoformat(json.loads(note)["now"])
        print(f"reusing {args.database} (data up to {now.isoformat()})")
    else:
        url = seed.fresh_database(args.database)
        now = dt.datetime.now(UTC).replace(microsecond=0)
        counts = seed.seed_history(url, actions=args.actions, resolutions=args.resolutions, now=now)
        engine = make_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f"COMMENT ON DATABASE {args.database} IS "
                              f"'{json.dumps({'now': now.isoformat(), 'rows': counts})}'"))
        engine.dispose()
        print(f"seeded in {time.monotonic() - started:.0f} s: "
              + ", ".join(f"{k} {v:,}" for k, v in counts.items()), flush=True)
    seed.analyze(url)
    machine = seed.machine()
    engines = []
    try:
        engine = make_engine(url)
        engines.append(engine)
        sessions = make_session_factory(engine)
        capture = Capture(engine)
        settings = load_settings(database_url=url)
        with engine.connect() as conn:
            sizes = {t: conn.scalar(text(f"SELECT count(*) FROM {t}")) for t in (
                "tickets", "action_history", "ticket_resolution", "agent_calls",
                "slack_outbox", "audit_events")}
        refs = prefixes(engine)
        print(f"machine: {machine}\nrows: {sizes}\nnow: {now.isoformat()}  prefixes: {refs}")
        lines = [f"Measured {machine['date']} on {machine['nproc']} x {machine['cpu']}, "
                 f"{machine['memory']}, PostgreSQL {machine['postgresql']}; rows: "
                 + ", ".join(f"{k} {v:,}" for k, v in sizes.items()), ""]

        passes: list[tuple[str, list[Case]]] = []
        print("before: schema at head, queries as in bot/", flush=True)
        loads = [seed.loadavg()]
        before = app_cases(settings, now, refs)
        measure(before, sessions, capture, engine, runs)
        loads.append(seed.loadavg())
        passes.append(("Before: schema at head, queries as in bot/", before))
        if not args.no_proposed:
            problems = verify(sessions, now, refs)
            print("proposed queries give the same answers" if not problems
                  else f"PROPOSED QUERIES DIFFER: {problems}", flush=True)
            print("after: the proposed indexes, created by hand", flush=True)
            set_indexes(engine, "apply")
            seed.analyze(url)
            after = app_cases(settings, now, refs) + proposed_cases(now, refs)
            measure(after, sessions, capture, engine, runs)
            loads.append(seed.loadavg())
            passes.append(("After: proposed indexes; queries as in bot/ and as proposed", after))
            print(f"after, and random_page_cost=1.1 ({SSD_OPTIONS})", flush=True)
            ssd = make_engine(url, connect_args={"connect_timeout": 5, "options": SSD_OPTIONS})
            engines.append(ssd)
            ssd_capture = Capture(ssd)
            tuned = [c for c in app_cases(settings, now, refs) + proposed_cases(now, refs)
                     if c.name.startswith("resolution_stats")]
            measure(tuned, make_session_factory(ssd), ssd_capture, ssd, runs)
            loads.append(seed.loadavg())
            passes.append(("After, with random_page_cost = 1.1 (an operations setting)", tuned))
            lines += [f"Proposed queries answer as the current ones: "
                      f"{'yes' if not problems else problems}", ""]
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
            seed.drop_database(args.database)
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
