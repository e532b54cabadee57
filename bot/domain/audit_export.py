"""The audit trail for compliance: every chained row, in chain order, with its entry.

One record per entry: where it is in the chain (seq, hashes, signature), what the row
says (type, actor, ticket, time, the row's columns) and whether its text was redacted.
`records` yields them a batch at a time, so an export of any size runs in little memory;
`to_jsonl` and `to_csv` write them.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ActionHistory, AuditChainEntry, AuditEvent, as_utc

BATCH = 1000
CSV_COLUMNS = ("seq", "table", "id", "at", "type", "actor", "ticket_id", "confidence",
               "autonomous", "rolled_back", "rolled_back_at", "rolled_back_by", "text", "data",
               "redacted", "content_digest", "prev_hash", "hash", "signature")


def records(session: Session, *, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Every chained row with its entry, oldest entry first.

    Args:
        session: a session on one snapshot (audit_verify.snapshot_session).
        since: only rows written at or after this time.

    Yields:
        One JSON-safe dict per entry (keys as in CSV_COLUMNS, plus `row`: every column).
    """
    after = 0
    actions, events = ActionHistory.__table__, AuditEvent.__table__
    while True:
        entries = session.execute(select(AuditChainEntry.__table__).where(AuditChainEntry.seq > after)
                                  .order_by(AuditChainEntry.seq).limit(BATCH)).all()
        if not entries:
            return
        by_action = {row.id: row._mapping for row in session.execute(select(actions).where(
            actions.c.id.in_([e.action_id for e in entries if e.action_id])))}
        by_event = {row.id: row._mapping for row in session.execute(select(events).where(
            events.c.id.in_([e.event_id for e in entries if e.event_id])))}
        for entry in entries:
            after = entry.seq
            row = by_action.get(entry.action_id) if entry.action_id else by_event.get(entry.event_id)
            if since is not None:
                at = None if row is None else row.get("executed_at", row.get("occurred_at"))
                if at is None or as_utc(at) < since:
                    continue
            yield _record(entry, row)


def _record(entry: Any, row: Mapping[Any, Any] | None) -> dict[str, Any]:
    chain = {"redacted": entry.redacted_at is not None, "content_digest": entry.content_digest,
             "prev_hash": entry.prev_hash, "hash": entry.hash, "signature": entry.signature}
    if entry.action_id:
        base = {"seq": entry.seq, "table": "action_history", "id": str(entry.action_id)}
        if row is None:
            return {**base, "missing": True, **chain}
        described = {
            "at": _iso(row["executed_at"]), "type": row["action_type"], "actor": row["executed_by"],
            "ticket_id": row["ticket_id"], "confidence": row["confidence_score"],
            "autonomous": row["autonomous"], "rolled_back": row["rolled_back"],
            "rolled_back_at": _iso(row["rolled_back_at"]), "rolled_back_by": row["rolled_back_by"],
            "text": row["agent_reasoning"], "data": row["action_params"],
        }
    else:
        base = {"seq": entry.seq, "table": "audit_events", "id": entry.event_id}
        if row is None:
            return {**base, "missing": True, **chain}
        described = {
            "at": _iso(row["occurred_at"]), "type": row["event_type"], "actor": row["actor_id"],
            "ticket_id": row["ticket_id"], "confidence": None, "autonomous": None,
            "rolled_back": None, "rolled_back_at": None, "rolled_back_by": None, "text": "",
            "data": row["detail"],
        }
    return {**base, **described, **chain, "row": _jsonable(dict(row))}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, (uuid.UUID, date)):
        return str(value)
    return value


def to_jsonl(rows: Iterator[dict[str, Any]], out: IO[str]) -> int:
    """Write one JSON object per line; returns how many."""
    count = 0
    for record in rows:
        out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count


def to_csv(rows: Iterator[dict[str, Any]], out: IO[str]) -> int:
    """Write a header and one line per record (`data` as JSON); returns how many."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    count = 0
    for record in rows:
        flat = dict(record)
        flat["data"] = json.dumps(_jsonable(record.get("data")), ensure_ascii=False, sort_keys=True)
        writer.writerow(flat)
        count += 1
    return count
