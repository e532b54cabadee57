"""Bulk data for the database benchmarks, written as a live system would have written it.

- `seed_due_followups(url, n, now=...)`: `n` auto-resolved, unanswered tickets whose
  follow-up DM is due (what `bench/followup_sweep.py` sends).
- `seed_history(url, ...)`: ninety days of a busy helpdesk (1,000,000 action_history
  rows, 200,000 resolutions by default, and the tickets, agent calls, audit events
  and outbox rows that go with them), for `bench/queries.py`.

Rows go in with PostgreSQL `COPY ... FROM STDIN` (psycopg2 `copy_expert`), in time
order, as a live system would have written them (the planner's correlation
statistics depend on that). Random choices come from a seeded `random.Random`, so
two runs build the same data. The database itself is `bench.databases`'s.

Run alone to build a history database and keep it:
`python -m bench.seed --database resolvemeq_bench_queries [--actions N]`, or
`python -m bench.seed --quick` (20,000 actions, seconds).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import random
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/seed.py` as well as `python -m bench.seed`
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.exc import OperationalError  # noqa: E402

from bench.databases import analyze, fresh_database, require_loopback  # noqa: E402

UTC = dt.UTC
# What `--quick` seeds (here and in bench.queries): a few seconds' worth.
QUICK_ACTIONS, QUICK_RESOLUTIONS = 20_000, 4_000
QUICK_DATABASE = "resolvemeq_bench_quick"


# ----- COPY --------------------------------------------------------------------------------


def _cell(value: object) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        value = json.dumps(value, separators=(",", ":"))
    return (str(value).replace("\\", "\\\\").replace("\t", "\\t")
            .replace("\n", "\\n").replace("\r", "\\r"))


def copy_rows(cursor, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]],
              *, chunk: int = 50_000) -> int:
    """COPY rows (tuples in `columns` order) into `table`; returns how many."""
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    buffer, count = io.StringIO(), 0
    for row in rows:
        buffer.write("\t".join(_cell(v) for v in row))
        buffer.write("\n")
        count += 1
        if count % chunk == 0:
            buffer.seek(0)
            cursor.copy_expert(statement, buffer)
            buffer = io.StringIO()
    if buffer.tell():
        buffer.seek(0)
        cursor.copy_expert(statement, buffer)
    return count


def _raw(url: str):
    """A psycopg2 connection (the SQLAlchemy engine's DBAPI) for COPY."""
    engine = create_engine(require_loopback(url))
    return engine, engine.raw_connection()


def _reset_sequences(cursor) -> None:
    for table, column in (("tickets", "ticket_id"), ("ticket_resolution", "id"),
                          ("agent_calls", "id"), ("audit_events", "id"), ("slack_outbox", "id")):
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
            f"COALESCE((SELECT max({column}) FROM {table}), 0) + 1, false)")


# ----- columns -----------------------------------------------------------------------------

TICKET_COLUMNS = (
    "ticket_id", "user_id", "user_name", "department", "issue_type", "status", "description",
    "category", "tags", "created_at", "updated_at", "agent_processed", "assigned_team",
    "awaiting_response_from", "escalated_at", "escalation_priority", "resolved_at", "source",
    "slack_team_id", "slack_channel_id", "slack_thread_ts", "slack_message_ts",
)
ACTION_COLUMNS = (
    "id", "ticket_id", "action_type", "action_params", "executed_at", "executed_by",
    "autonomous", "confidence_score", "agent_reasoning", "rollback_possible", "rolled_back",
    "rolled_back_at", "rolled_back_by", "rollback_reason", "rollback_of", "before_state",
    "after_state",
)
RESOLUTION_COLUMNS = (
    "id", "ticket_id", "action_id", "autonomous_action", "resolution_confirmed",
    "user_feedback_text", "satisfaction_score", "followup_due_at", "followup_sent_at",
    "response_received_at", "reopened", "reopened_at", "reopened_reason", "created_at",
    "updated_at",
)
AGENT_CALL_COLUMNS = ("id", "called_at", "agent", "ticket_id", "ok", "latency_ms", "attempts",
                      "error")
AUDIT_COLUMNS = ("id", "occurred_at", "event_type", "actor_id", "ticket_id", "action_id",
                 "detail")
OUTBOX_COLUMNS = (
    "id", "created_at", "ticket_id", "purpose", "channel", "thread_ts", "text", "blocks",
    "fallback_user", "status", "attempts", "next_attempt_at", "claimed_until", "claim_token",
    "sent_at", "sent_channel", "message_ts", "last_error", "resolution_id", "recipient",
    "cancel_reason",
)


def _followup(row_id: int, created: dt.datetime, ticket_id: int, resolution_id: int, user: str,
              due: dt.datetime, status: str = "pending", *, attempts: int = 0,
              sent: dt.datetime | None = None, sent_channel: str | None = None,
              sent_ts: str | None = None, reason: str | None = None) -> list:
    """A follow-up DM's outbox row, as bot.domain.followups writes it (OUTBOX_COLUMNS)."""
    return [row_id, created, ticket_id, "followup", None, None, "", None, None, status, attempts,
            due, None, None, sent, sent_channel, sent_ts, "", resolution_id, user, reason]


def _state(status: str, team: str | None, at: dt.datetime | None = None, **extra) -> dict:
    return {"status": status, "assigned_team": team, "awaiting_response_from": "",
            "escalated_at": None, "escalation_priority": None,
            "resolved_at": at.isoformat() if at and status == "resolved" else None, **extra}


# ----- due follow-ups (bench/followup_sweep.py) ----------------------------------------------


def seed_due_followups(url: str, n: int, *, now: dt.datetime) -> None:
    """`n` auto-resolved, unanswered tickets, each requester a different user, whose
    follow-up (its outbox row) fell due during the hour before `now` (oldest first)."""
    created = [now - dt.timedelta(hours=25) + dt.timedelta(seconds=3600 * i / n) for i in range(n)]
    actions = [uuid.uuid4() for _ in range(n)]
    engine, conn = _raw(url)
    try:
        cur = conn.cursor()
        copy_rows(cur, "tickets", TICKET_COLUMNS, (
            (i + 1, f"U{i:08d}", f"User {i}", "Sales", "My VPN keeps disconnecting", "resolved",
             "My VPN keeps disconnecting", "vpn", [], c, c, True, "Network", "", None, None, c,
             "slash_command", "T0RESOLVEQ", "CHELPDESK", f"{c.timestamp():.6f}", None)
            for i, c in enumerate(created)))
        copy_rows(cur, "action_history", ACTION_COLUMNS, (
            (a, i + 1, "AUTO_RESOLVE", {"article": "vpn", "steps": ["Reconnect"]}, c,
             "autonomous_agent", True, 0.91, "Matched KB article 'vpn'", True, False, None, None,
             "", None, _state("new", None), _state("resolved", "Network", c))
            for i, (a, c) in enumerate(zip(actions, created, strict=True))))
        copy_rows(cur, "ticket_resolution", RESOLUTION_COLUMNS, (
            (i + 1, i + 1, a, "AUTO_RESOLVE", None, "", None, c + dt.timedelta(hours=24), None,
             None, False, None, "", c, c)
            for i, (a, c) in enumerate(zip(actions, created, strict=True))))
        copy_rows(cur, "slack_outbox", OUTBOX_COLUMNS, (
            _followup(i + 1, c, i + 1, i + 1, f"U{i:08d}", c + dt.timedelta(hours=24))
            for i, c in enumerate(created)))
        _reset_sequences(cur)
        cur.execute("ANALYZE")
        conn.commit()
    finally:
        conn.close()
        engine.dispose()


# ----- ninety days of history (bench/queries.py) ---------------------------------------------

CATEGORIES = (  # (category, weight, what people write, owning team)
    ("vpn", 14, "My VPN keeps disconnecting", "Network"),
    ("account", 14, "I am locked out of my account", "Identity & Access"),
    ("software", 12, "I need access to the design software", "Desktop Support"),
    ("wifi", 10, "The office wifi drops every few minutes", "Network"),
    ("email", 10, "Outlook will not sync my mailbox", "Messaging"),
    ("laptop", 9, "My laptop is very slow since the update", "Desktop Support"),
    ("printer", 8, "The printer on floor 3 says paper jam", "Desktop Support"),
    ("access", 8, "The shared drive says access denied", "Identity & Access"),
    ("hardware", 4, "My monitor does not wake up on the dock", "Desktop Support"),
    ("other", 4, "Something is odd with my setup", "Service Desk"),
    ("network", 3, "The intranet is unreachable from floor 2", "Network"),
    ("phone", 2, "My desk phone has no dial tone", "Messaging"),
    ("security", 2, "I clicked a suspicious link", "Security"),
    ("storage", 2, "My disk is full", "Desktop Support"),
    ("onboarding", 2, "A new hire starts Monday and needs a laptop", "Service Desk"),
)
DEPARTMENTS = ("Sales", "Engineering", "Finance", "Marketing", "Operations", "HR", "Legal",
               "Support")
ADMINS = ("UADMIN0001", "UADMIN0002", "UADMIN0003")


def _times(rng: random.Random, n: int, now: dt.datetime, days: int) -> list[dt.datetime]:
    """`n` moments over `days` days before `now`, more in office hours and on weekdays
    (2:1 and 3:1), sorted: the order a live system writes them."""
    start = now - dt.timedelta(days=days)
    span = (now - start).total_seconds() - 600  # the last 10 minutes: see `sweep_tickets`
    found: list[dt.datetime] = []
    while len(found) < n:
        moment = start + dt.timedelta(seconds=rng.random() * span)
        keep = (1.0 if 8 <= moment.hour < 19 else 0.5) * (1.0 if moment.weekday() < 5 else 0.34)
        if rng.random() < keep:
            found.append(moment)
    found.sort()
    return found


def seed_history(url: str, *, actions: int = 1_000_000, resolutions: int = 200_000,
                 days: int = 90, now: dt.datetime, seed: int = 5) -> dict[str, int]:
    """Fill a migrated database with `days` days of a helpdesk, ending at `now`.

    Every ticket gets a first decision: `resolutions` of them an AUTO_RESOLVE (with its
    ticket_resolution row), the others ASSIGN_TO_TEAM, REQUEST_CLARIFICATION or
    ESCALATE. Then what follows in life: the requester's answer (CONFIRM, or REOPEN and
    a re-routing), a clarification answered and routed, admin ROLLBACKs (0.6% of
    auto-resolutions), re-routings, until action_history holds `actions` rows. Also one
    agent call per decision (1% errors), an outbox post per ticket (a handful pending,
    some failed), audit events for caps and denials, and a few tickets still `new` for
    the sweep. Follow-ups (outbox rows): sent for resolutions unanswered after 24 h,
    cancelled for answered or rolled-back ones, owed for the last day, a small backlog due.

    Returns:
        Row counts per table.
    """
    rng = random.Random(seed)
    n_tickets = int(actions * 0.6)
    kinds = (["AUTO_RESOLVE"] * resolutions
             + rng.choices(("ASSIGN_TO_TEAM", "REQUEST_CLARIFICATION", "ESCALATE"),
                           weights=(45, 35, 20), k=n_tickets - resolutions))
    rng.shuffle(kinds)
    created = _times(rng, n_tickets, now, days)
    cat_weights = [c[1] for c in CATEGORIES]
    counts = dict.fromkeys(("tickets", "action_history", "ticket_resolution", "agent_calls",
                            "slack_outbox", "audit_events"), 0)
    engine, conn = _raw(url)
    ids = {"resolution": 0, "call": 0, "outbox": 0, "audit": 0}
    routable: list[tuple[int, Any, str]] = []  # tickets a person may re-route

    def dt_after(base: dt.datetime, mean_seconds: float) -> dt.datetime:
        # Never in the future: the windows end at `now`.
        return min(base + dt.timedelta(seconds=rng.expovariate(1 / mean_seconds)),
                   now - dt.timedelta(seconds=1))

    def action(ticket_id, kind, at, *, autonomous, confidence, by="autonomous_agent",
               before=None, after=None, params=None, reasoning="", rollback_of=None,
               rolled_back=None):
        return [uuid.UUID(int=rng.getrandbits(128), version=4), ticket_id, kind, params or {}, at,
                by, autonomous, confidence, reasoning, kind in ("AUTO_RESOLVE", "ESCALATE",
                "ASSIGN_TO_TEAM", "REQUEST_CLARIFICATION"), bool(rolled_back),
                rolled_back[0] if rolled_back else None, rolled_back[1] if rolled_back else None,
                rolled_back[2] if rolled_back else "", rollback_of, before, after]

    try:
        cur = conn.cursor()
        # A bulk load of history, not changes to rolled figures: the stats rollup's
        # triggers (migration 0018r) stay quiet; the first `roll_up_stats` pass rolls
        # every day from the data as loaded.
        cur.execute("SET session_replication_role = replica")
        batch = 50_000
        for first in range(0, n_tickets, batch):
            tickets: list[Any] = []
            acts: list[Any] = []
            res: list[Any] = []
            calls: list[Any] = []
            posts: list[Any] = []
            audits: list[Any] = []
            for index in range(first, min(first + batch, n_tickets)):
                ticket_id, at, kind = index + 1, created[index], kinds[index]
                category, _, issue, team = rng.choices(CATEGORIES, weights=cat_weights)[0]
                user = f"U{rng.randrange(6000):07d}"
                decided = at + dt.timedelta(seconds=rng.uniform(1.5, 12))
                high = kind == "AUTO_RESOLVE" or rng.random() < 0.55
                confidence = round(rng.uniform(0.8, 0.99) if high else rng.uniform(0.3, 0.8), 3)
                if kind == "AUTO_RESOLVE" and rng.random() < 0.04:
                    confidence = round(rng.uniform(0.3, 0.8), 3)  # the agent's bad days
                assigned: str | None = team
                status, thread = "resolved", f"{at.timestamp():.6f}"
                first_action = action(
                    ticket_id, kind, decided, autonomous=kind == "AUTO_RESOLVE" or high,
                    confidence=confidence, params={"category": category, "team": team},
                    reasoning=f"Matched KB article '{category}' ({confidence:.0%})",
                    before=_state("new", None), after=_state(
                        {"AUTO_RESOLVE": "resolved", "ESCALATE": "escalated",
                         "ASSIGN_TO_TEAM": "in_progress",
                         "REQUEST_CLARIFICATION": "awaiting_user"}[kind], team, decided))
                acts.append(first_action)
                ids["call"] += 1
                ok = rng.random() > 0.01
                calls.append((ids["call"], decided - dt.timedelta(seconds=1), "knowledge_base",
                              ticket_id, ok, round(rng.uniform(3, 900), 1), 1 if ok else 3,
                              "" if ok else "timeout"))
                ids["outbox"] += 1
                post_at = decided + dt.timedelta(milliseconds=rng.uniform(80, 900))
                posts.append([ids["outbox"], decided, ticket_id, "ticket_outcome", "CHELPDESK",
                              thread, f"{issue}: what the bot did ({kind})", None, user, "sent",
                              1, decided, None, None, post_at, "CHELPDESK",
                              f"{post_at.timestamp():.6f}", "", None, None, None])
                followup = None
                if kind == "AUTO_RESOLVE":
                    ids["resolution"] += 1
                    answer = rng.random()
                    sent: dt.datetime | None
                    sent_channel: str | None
                    sent_ts: str | None
                    due: dt.datetime | None
                    confirmed = True if answer < 0.62 else False if answer < 0.70 else None
                    responded = dt_after(decided, 6 * 3600) if confirmed is not None else None
                    if responded is not None and responded > now - dt.timedelta(seconds=2):
                        confirmed = responded = None  # would answer later than now
                    due = decided + dt.timedelta(hours=24)
                    sent = sent_channel = sent_ts = None
                    if due <= now and (responded is None or responded > due):
                        sent, sent_channel = due + dt.timedelta(seconds=rng.uniform(1, 59)), "D" + user[1:]
                        sent_ts = f"{sent.timestamp():.6f}"
                        if sent > now - dt.timedelta(minutes=3):
                            sent = sent_channel = sent_ts = None  # the backlog the job has not reached
                    rolled = None
                    if rng.random() < 0.006:
                        rolled = (dt_after(decided, 3 * 3600), rng.choice(ADMINS), "wrong fix")
                        first_action[10:14] = [True, rolled[0], rolled[1], rolled[2]]
                        status, assigned = "new", None
                        acts.append(action(ticket_id, "ROLLBACK", rolled[0], autonomous=False,
                                           confidence=None, by=rolled[1], rollback_of=first_action[0],
                                           reasoning="wrong fix", before=_state("resolved", team, decided),
                                           after=_state("new", None)))
                        confirmed = responded = sent = sent_channel = sent_ts = None
                        due = None
                    score = rng.choices((1, 2, 3, 4, 5), weights=(4, 4, 10, 30, 52))[0] \
                        if confirmed and rng.random() < 0.45 else None
                    reopened_at = responded if confirmed is False else None
                    res.append((ids["resolution"], ticket_id, first_action[0], "AUTO_RESOLVE",
                                confirmed, "", score, due, sent, responded, confirmed is False,
                                reopened_at, "still broken" if reopened_at else "", decided,
                                responded or sent or decided))
                    # Its follow-up DM: sent, cancelled by the answer or the rollback,
                    # or still owed (due tomorrow, or the backlog the job has not reached).
                    ids["outbox"] += 1
                    owed_at = decided + dt.timedelta(hours=24)
                    followup = _followup(ids["outbox"], decided, ticket_id, ids["resolution"], user,
                                         owed_at)
                    if rolled:
                        followup[9], followup[20] = "cancelled", "rolled back"
                    elif sent:
                        followup[9:11] = ["sent", 1]
                        followup[14:17] = [sent, sent_channel, sent_ts]
                    elif responded is not None:
                        followup[9], followup[20] = "cancelled", "answered"
                    if confirmed is True:
                        acts.append(action(ticket_id, "CONFIRM", responded, autonomous=False,
                                           confidence=None, by=user))
                    elif confirmed is False:
                        status = "open"
                        acts.append(action(ticket_id, "REOPEN", responded, autonomous=False,
                                           confidence=None, by=user, reasoning="still broken",
                                           before=_state("resolved", team, decided),
                                           after=_state("open", team)))
                        acts.append(action(ticket_id, "ASSIGN_TO_TEAM", responded, autonomous=False,
                                           confidence=None, params={"team": team},
                                           before=_state("open", team), after=_state("in_progress", team)))
                        routable.append((ticket_id, responded, team))
                else:
                    status = {"ESCALATE": "escalated", "ASSIGN_TO_TEAM": "in_progress",
                              "REQUEST_CLARIFICATION": "awaiting_user"}[kind]
                    if kind == "REQUEST_CLARIFICATION" and rng.random() < 0.8:
                        answered = dt_after(decided, 2 * 3600)
                        follow = "ESCALATE" if rng.random() < 0.12 else "ASSIGN_TO_TEAM"
                        acts.append(action(ticket_id, follow, answered, autonomous=rng.random() < 0.5,
                                           confidence=round(rng.uniform(0.5, 0.95), 3),
                                           params={"team": team},
                                           before=_state("awaiting_user", team),
                                           after=_state("in_progress", team)))
                        status = "in_progress" if follow == "ASSIGN_TO_TEAM" else "escalated"
                    if status != "awaiting_user":
                        routable.append((ticket_id, decided, team))
                    if kind == "ESCALATE":
                        ids["outbox"] += 1
                        posts.append([ids["outbox"], decided, ticket_id, "notice", "CESCALATE",
                                      None, f"Escalated: {issue}", None, None, "sent", 1, decided,
                                      None, None, post_at, "CESCALATE",
                                      f"{post_at.timestamp():.6f}", "", None, None, None])
                    if rng.random() < 0.1:
                        assigned = None  # routed to a queue nobody owns yet
                if rng.random() < 0.003:  # not_in_channel and no DM either: given up
                    posts[-1][9:18] = ["failed", 10, decided, None, None, None, None, None,
                                       "Slack refused the post"]
                if followup is not None:
                    posts.append(followup)
                tickets.append((ticket_id, user, f"User {user}", rng.choice(DEPARTMENTS), issue,
                                status, f"{issue}. Please help.", category, [], at, decided, True,
                                assigned, "", None, None, decided if status == "resolved" else None,
                                "slash_command", "T0RESOLVEQ", "CHELPDESK", thread, thread))
                if rng.random() < 0.002:
                    ids["audit"] += 1
                    audits.append((ids["audit"], decided, "autonomy_cap_reached", None, ticket_id,
                                   None, {"window": "day"}))
            counts["tickets"] += copy_rows(cur, "tickets", TICKET_COLUMNS, tickets)
            counts["action_history"] += copy_rows(cur, "action_history", ACTION_COLUMNS, acts)
            counts["ticket_resolution"] += copy_rows(cur, "ticket_resolution", RESOLUTION_COLUMNS, res)
            counts["agent_calls"] += copy_rows(cur, "agent_calls", AGENT_CALL_COLUMNS, calls)
            counts["slack_outbox"] += copy_rows(cur, "slack_outbox", OUTBOX_COLUMNS, posts)
            counts["audit_events"] += copy_rows(cur, "audit_events", AUDIT_COLUMNS, audits)
            conn.commit()
        # Re-routings by people, until action_history has its size.
        extra = max(0, actions - counts["action_history"])
        picks = sorted(rng.choices(routable, k=extra), key=lambda r: r[1]) if routable else []
        rerouted = []
        for ticket_id, since, team in picks:
            at = dt_after(since, 86400)
            kind = "ESCALATE" if rng.random() < 0.25 else "ASSIGN_TO_TEAM"
            rerouted.append(action(ticket_id, kind, at, autonomous=False, confidence=None,
                                   by=rng.choice(ADMINS), params={"team": team},
                                   before=_state("in_progress", team),
                                   after=_state("in_progress", team)))
        counts["action_history"] += copy_rows(cur, "action_history", ACTION_COLUMNS, rerouted)
        counts["tickets"] += copy_rows(cur, "tickets", TICKET_COLUMNS,
                                       sweep_tickets(n_tickets, now))
        # Denied rollbacks and strangers' clicks, spread over the period.
        audit_rows: list[tuple[Any, ...]] = [
            (ids["audit"] + i + 1, now - dt.timedelta(seconds=rng.random() * days * 86400),
             rng.choice(("rollback_denied", "feedback_wrong_user")), "USTRANGER", None,
             None, {}) for i in range(2000)]
        audit_rows.sort(key=lambda r: r[1])
        counts["audit_events"] += copy_rows(cur, "audit_events", AUDIT_COLUMNS, audit_rows)
        # Posts not yet delivered: the last minutes, and a few Slack refused for a while.
        pending = [(ids["outbox"] + i + 1, now - dt.timedelta(seconds=rng.uniform(0, 180)),
                    rng.randrange(1, n_tickets), "notice", "CALERTS", None, "pending post", None,
                    None, "pending", rng.randrange(0, 4),
                    now + dt.timedelta(seconds=rng.uniform(-120, 600)), None, None, None, None,
                    None, "", None, None, None) for i in range(150)]
        counts["slack_outbox"] += copy_rows(cur, "slack_outbox", OUTBOX_COLUMNS, pending)
        _reset_sequences(cur)
        conn.commit()
    finally:
        conn.close()
        engine.dispose()
    return counts


def record_seed(url: str, now: dt.datetime, counts: dict[str, int]) -> None:
    """Note on the database itself up to when it was seeded (`seeded_until` reads it), so
    a kept database can be measured again with the same `now`."""
    engine = create_engine(require_loopback(url), isolation_level="AUTOCOMMIT")
    note = json.dumps({"now": now.isoformat(), "rows": counts}).replace("'", "''")
    try:
        with engine.connect() as conn:
            name = conn.scalar(text("SELECT current_database()"))
            conn.execute(text(f"COMMENT ON DATABASE \"{name}\" IS '{note}'"))
    finally:
        engine.dispose()


def seeded_until(url: str) -> dt.datetime:
    """The `now` a database was seeded up to (see `record_seed`).

    Raises:
        SystemExit: when the database carries no such note (not seeded by bench.seed).
    """
    engine = create_engine(require_loopback(url))
    try:
        with engine.connect() as conn:
            note = conn.scalar(text(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname = current_database()"))
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise SystemExit(f"{make_url(url).database}: {reason}; seed it first "
                         "(python -m bench.seed --database NAME)") from None
    finally:
        engine.dispose()
    if not note:
        raise SystemExit(f"{make_url(url).database}: not seeded by bench.seed (no note); "
                         "seed it first (python -m bench.seed --database NAME)")
    return dt.datetime.fromisoformat(json.loads(note)["now"])


def sweep_tickets(after_id: int, now: dt.datetime, n: int = 40) -> Iterable[tuple]:
    """Tickets still `new` and never decided on: stored in the last ten minutes, as a
    process that died between the ack and the agent leaves them."""
    for i in range(n):
        at = now - dt.timedelta(seconds=15 * (n - i))
        yield (after_id + i + 1, "U0000042", "User U0000042", "Sales", "My VPN keeps disconnecting",
               "new", "My VPN keeps disconnecting", "other", [], at, at, False, None, "", None,
               None, None, "dm", "T0RESOLVEQ", "D0000042", "", None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=None,
                        help="default resolvemeq_bench_queries; --quick resolvemeq_bench_quick, "
                        "so a quick look never replaces a kept full seed")
    parser.add_argument("--quick", action="store_true",
                        help="20,000 actions and 4,000 resolutions (seconds)")
    parser.add_argument("--actions", type=int, default=None, help="default 1,000,000; --quick 20,000")
    parser.add_argument("--resolutions", type=int, default=None, help="default 200,000; --quick 4,000")
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args(argv)
    args.actions = args.actions or (QUICK_ACTIONS if args.quick else 1_000_000)
    args.resolutions = args.resolutions or (QUICK_RESOLUTIONS if args.quick else 200_000)
    args.database = args.database or (QUICK_DATABASE if args.quick else "resolvemeq_bench_queries")
    started = time.monotonic()
    url = fresh_database(args.database)
    now = dt.datetime.now(UTC).replace(microsecond=0)
    counts = seed_history(url, actions=args.actions, resolutions=args.resolutions,
                          days=args.days, now=now)
    record_seed(url, now, counts)
    analyze(url)
    print(f"seeded {args.database} up to {now.isoformat()} in {time.monotonic() - started:.0f} s: "
          + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
