"""Checking the audit chain: every entry in place, every row as it was chained.

`verify` walks the chain in order and reports, first problem first:

- an entry whose row is gone (the row was removed);
- a row whose content or free text no longer matches its entry (the row was changed);
  a redacted row must hold no free text at all, its entry's digest standing for it;
- an entry missing from the sequence, not following the one before it, whose own
  hash is off or whose signature does not check (the chain itself was edited);
- a row with no entry (inserted behind the app's back);
- a rollback's later columns (rolled_back_at/by/reason) that disagree with the chained
  ROLLBACK row that undid the action, or a ROLLBACK row whose action says it was not
  rolled back;
- with `anchors` (heads posted to AUDIT_CHANNEL), an anchor the chain no longer passes
  through: the only way to see a chain rewritten whole, or cut short, without the key.

It reads only; run it in one snapshot (`snapshot_session`) so writers can go on.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, exists, func, select
from sqlalchemy.orm import Session

from bot.domain import audit_chain
from bot.domain.audit_chain import ACTIONS, EVENTS, RowRef
from models import GENESIS_HASH, ActionHistory, ActionType, AuditChainEntry, AuditEvent, as_utc
from models.session import READ_ONLY

BATCH = 1000
# How many problems a report keeps word for word (all are counted).
MAX_LISTED = 20


@dataclass(frozen=True)
class Anchor:
    """A chain head posted outside the database (to AUDIT_CHANNEL)."""

    seq: int
    hash: str
    posted_at: datetime | None = None
    where: str = ""  # e.g. the Slack message's ts, for the report


@dataclass(frozen=True)
class Problem:
    """One thing that does not check, with the entry and row it is about."""

    kind: str  # changed | removed | inserted | chain | signature | rollback | anchor
    message: str
    seq: int | None = None
    row: RowRef | None = None


@dataclass
class Report:
    """What `verify` found."""

    entries: int = 0
    head: audit_chain.Head | None = None
    signed: int = 0
    redacted: int = 0
    signatures_checked: bool = False
    anchors_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(problem)


def snapshot_session(engine: Engine) -> Session:
    """A session reading one consistent snapshot (REPEATABLE READ on PostgreSQL; a
    SQLite read transaction is one already), for `verify` and exports."""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    else:
        # A deferred BEGIN: a long verify never holds SQLite's write lock (and any
        # write in it fails).
        engine = engine.execution_options(**{READ_ONLY: True})
    return Session(bind=engine)


def verify(
    session: Session,
    *,
    key: bytes | None,
    anchors: Iterable[Anchor] | None = None,
    retention: timedelta | None = None,
) -> Report:
    """Check the whole chain against the rows, and against posted heads if given.

    Args:
        session: a session on one snapshot (`snapshot_session`); only reads.
        key: AUDIT_SIGNING_KEY's bytes: signatures are checked, and an unsigned entry
            after a signed one is a problem. None: signatures are not checked.
        anchors: heads posted outside the database; each must still be in the chain.
        retention: RETENTION_DAYS: a row redacted before it was that old is a problem.

    Returns:
        The report; `ok` when nothing is amiss. Problems come in chain order.
    """
    report = Report(signatures_checked=key is not None)
    hashes: dict[int, str] = {}
    wanted = {anchor.seq for anchor in anchors or ()}
    expected, prev, signing_started = 1, GENESIS_HASH, False
    while True:
        entries = session.execute(
            select(AuditChainEntry.__table__).where(AuditChainEntry.seq >= expected)
            .order_by(AuditChainEntry.seq).limit(BATCH)
        ).all()
        if not entries:
            break
        actions = audit_chain.read_rows(session, ACTIONS, [e.action_id for e in entries if e.action_id])
        events = audit_chain.read_rows(session, EVENTS, [e.event_id for e in entries if e.event_id])
        for entry in entries:
            if entry.seq != expected:
                gap = (f"#{expected}" if entry.seq == expected + 1
                       else f"#{expected} to #{entry.seq - 1}")
                report.add(Problem("chain", f"Entry {gap} is missing: removed from the chain "
                                   f"(the chain jumps from #{expected - 1} to #{entry.seq}).",
                                   seq=expected))
            elif entry.prev_hash != prev:
                report.add(Problem("chain", f"Entry #{entry.seq} does not follow entry "
                                   f"#{entry.seq - 1}: its previous hash differs, so an entry "
                                   "before it was changed, removed or inserted.", seq=entry.seq))
            _check_entry(report, entry, key, signing_started)
            signing_started = signing_started or entry.signature is not None
            ref = RowRef(ACTIONS, entry.action_id) if entry.action_id else RowRef(EVENTS, entry.event_id)
            row = (actions if ref.table == ACTIONS else events).get(ref.id)
            _check_row(report, entry, ref, row, retention)
            report.entries += 1
            report.signed += entry.signature is not None
            report.redacted += entry.redacted_at is not None
            if entry.seq in wanted:
                hashes[entry.seq] = entry.hash
            prev, expected = entry.hash, entry.seq + 1
    report.head = audit_chain.head(session)
    _check_unchained(session, report)
    _check_rollbacks(session, report)
    for anchor in anchors or ():
        _check_anchor(report, anchor, hashes.get(anchor.seq))
    return report


def _check_entry(report: Report, entry: Any, key: bytes | None, signing_started: bool) -> None:
    if audit_chain.entry_hash(entry.seq, entry.content_digest, entry.prev_hash) != entry.hash:
        report.add(Problem("chain", f"Entry #{entry.seq}'s hash does not match its content: "
                           "the entry was edited.", seq=entry.seq))
    if key is None:
        return
    if entry.signature is None:
        if signing_started:
            report.add(Problem("signature", f"Entry #{entry.seq} is not signed though entries "
                               "before it are: its signature was removed.", seq=entry.seq))
        return
    if not hmac.compare_digest(audit_chain.sign(key, entry.hash) or "", entry.signature):
        report.add(Problem("signature", f"Entry #{entry.seq}'s signature does not check under "
                           "AUDIT_SIGNING_KEY: the entry was rewritten by someone without the "
                           "key (or the key changed).", seq=entry.seq))


def _check_row(report: Report, entry: Any, ref: RowRef, row: Mapping[Any, Any] | None,
               retention: timedelta | None) -> None:
    if row is None:
        report.add(Problem("removed", f"{_named(ref)} (entry #{entry.seq}) was removed.",
                           seq=entry.seq, row=ref))
        return
    if entry.redacted_at is not None:
        text_hash = entry.text_digest
        left = audit_chain.text_of(ref.table, row)
        if left != _redacted(ref.table) or (ref.table == ACTIONS and row["rollback_reason"]):
            report.add(Problem("changed", f"{_named(ref)} (entry #{entry.seq}) was redacted but "
                               "holds free text again: its text was changed.",
                               seq=entry.seq, row=ref))
            return
        at = row["executed_at"] if ref.table == ACTIONS else row["occurred_at"]
        if retention is not None and as_utc(at) > as_utc(entry.redacted_at) - retention:
            report.add(Problem("changed", f"{_named(ref)} (entry #{entry.seq}) was redacted "
                               "before RETENTION_DAYS had passed.", seq=entry.seq, row=ref))
    else:
        text_hash = audit_chain.text_digest(ref.table, row)
        if text_hash != entry.text_digest:
            report.add(Problem("changed", f"{_named(ref)} (entry #{entry.seq}) was changed: its "
                               "free text differs from what was chained.", seq=entry.seq, row=ref))
            return
    if audit_chain.content_digest(ref.table, row, text_hash) != entry.content_digest:
        report.add(Problem("changed", f"{_named(ref)} (entry #{entry.seq}) was changed: its "
                           "content differs from what was chained.", seq=entry.seq, row=ref))


def _redacted(table: str) -> dict[str, Any]:
    return {"agent_reasoning": "", "params": {}} if table == ACTIONS else {"detail": {}}


def _named(ref: RowRef) -> str:
    return f"{ref.table} row {ref.id}"


def _check_unchained(session: Session, report: Report) -> None:
    for model, table, at, link in (
        (ActionHistory, ACTIONS, ActionHistory.executed_at, AuditChainEntry.action_id),
        (AuditEvent, EVENTS, AuditEvent.occurred_at, AuditChainEntry.event_id),
    ):
        orphan = ~exists(select(AuditChainEntry.seq).where(link == model.id))
        count = session.scalar(select(func.count()).select_from(model).where(orphan)) or 0
        if not count:
            continue
        rows = session.execute(select(model.id, at).where(orphan).order_by(at, model.id)
                               .limit(MAX_LISTED)).all()
        for row_id, when in rows:
            ref = RowRef(table, row_id)  # type: ignore[arg-type]  # a uuid or an int, by table
            report.add(Problem("inserted", f"{_named(ref)} (at {_time(when)}) is not in the "
                               "chain: it was inserted outside the app.", row=ref))
        report.problem_count += count - len(rows)


def _check_rollbacks(session: Session, report: Report) -> None:
    """The later columns of each undone action against its chained ROLLBACK row."""
    table = ActionHistory.__table__
    rollbacks: dict[uuid.UUID, list[Mapping[Any, Any]]] = {}
    for row in session.execute(select(table).where(table.c.action_type == ActionType.ROLLBACK,
                                                    table.c.rollback_of.is_not(None))):
        rollbacks.setdefault(row.rollback_of, []).append(row._mapping)
    touched = session.execute(select(table).where(
        (table.c.rolled_back.is_(True)) | table.c.rolled_back_at.is_not(None)
        | table.c.rolled_back_by.is_not(None) | (table.c.rollback_reason != "")
        | table.c.id.in_(list(rollbacks))
    ).order_by(table.c.executed_at, table.c.id)).all()
    redacted = _redacted_actions(session, [row.id for row in touched])
    for row in touched:
        ref = RowRef(ACTIONS, row.id)
        undone_by = rollbacks.get(row.id, [])
        if not row.rolled_back:
            if undone_by:
                report.add(Problem("rollback", f"{_named(ref)} says it was not rolled back, but "
                                   f"ROLLBACK row {undone_by[0]['id']} undid it: rolled_back was "
                                   "changed.", row=ref))
            else:
                report.add(Problem("rollback", f"{_named(ref)} has rollback details "
                                   "(rolled_back_at/by/reason) but no ROLLBACK row undid it: "
                                   "they were changed.", row=ref))
            continue
        if len(undone_by) != 1:
            what = "no ROLLBACK row undid it" if not undone_by else "several ROLLBACK rows undid it"
            report.add(Problem("rollback", f"{_named(ref)} says it was rolled back, but {what}.",
                               row=ref))
            continue
        record = undone_by[0]
        differs = []
        if _time(row.rolled_back_at) != _time(record["executed_at"]):
            differs.append("rolled_back_at")
        if row.rolled_back_by != record["executed_by"]:
            differs.append("rolled_back_by")
        reason = row.rollback_reason or ""
        if not (row.id in redacted and reason == "") and reason != (record["agent_reasoning"] or ""):
            differs.append("rollback_reason")
        if differs:
            report.add(Problem("rollback", f"{_named(ref)}: {', '.join(differs)} differ from "
                               f"ROLLBACK row {record['id']}, which undid it: they were changed.",
                               row=ref))


def _redacted_actions(session: Session, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not ids:
        return set()
    return set(session.scalars(select(AuditChainEntry.action_id).where(
        AuditChainEntry.action_id.in_(ids), AuditChainEntry.redacted_at.is_not(None))))


def _check_anchor(report: Report, anchor: Anchor, found: str | None) -> None:
    report.anchors_checked += 1
    posted = f" posted {as_utc(anchor.posted_at):%Y-%m-%d %H:%M} UTC" if anchor.posted_at else ""
    if found is None:
        report.add(Problem("anchor", f"The head{posted} names entry #{anchor.seq}, which the "
                           "chain no longer has: the chain was cut short.", seq=anchor.seq))
    elif found != anchor.hash:
        report.add(Problem("anchor", f"The chain no longer passes through the head{posted}: "
                           f"entry #{anchor.seq} hashes to {found[:16]}…, the anchor says "
                           f"{anchor.hash[:16]}…. The chain was rewritten.", seq=anchor.seq))


def _time(value: datetime | None) -> str:
    return "never" if value is None else as_utc(value).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
