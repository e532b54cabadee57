"""The audit chain: what of a row is hashed, and how each new row joins the chain.

Every `action_history` and `audit_events` row gets one `audit_chain` entry, written in
the transaction that wrote the row, just before it commits (`install`: a session
hook, so no writer can forget it). The entry holds

- `text_digest`: SHA-256 over the row's free text (the reasoning, a reason or note a
  person typed, the agent's steps): retention may blank the text later and the digest
  still stands for it;
- `content_digest`: SHA-256 over the row's canonical content, free text as its digest;
- `hash`: SHA-256 over the sequence number, the content digest and the previous
  entry's hash; `signature`: HMAC-SHA256 of `hash` under AUDIT_SIGNING_KEY, when set.

Canonical bytes are RFC 8785 (JSON Canonicalization Scheme). The columns a rollback
fills in later (rolled_back, rolled_back_at/by, rollback_reason) are not hashed: the
ROLLBACK row that undid the action is chained on its own, and bot.domain.audit_verify
checks the later columns against it.

Ordering: one writer at a time appends. On PostgreSQL the hook takes a transaction-
scoped advisory lock just before the commit, reads the head and inserts the entries;
the lock goes with the commit. On SQLite the transaction already holds the database's
write lock (it wrote the rows). `seq` is the primary key either way, so a writer that
read a stale head fails its commit rather than forking the chain.

A request whose one audited row is known before it is written (a refused click) may
take the lock and read the head earlier, in the round trip of its first statement,
right after that statement's row locks (`reserving`), with the row's id from
its sequence; the row and its entry are then inserted in one statement at the commit
(`audit.record` with the reservation). Row locks still come before the chain's lock,
and none are taken after it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rfc8785
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    case,
    event,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.orm import Session, sessionmaker

from models import GENESIS_HASH, ActionHistory, AuditChainEntry, AuditEvent, as_utc, preceded_by

# Bumped when what is hashed changes; old entries keep verifying under their version.
CONTENT_VERSION = 1
ACTIONS = "action_history"
EVENTS = "audit_events"
# pg_advisory_xact_lock key: one appender at a time across every process.
CHAIN_LOCK_KEY = 7_268_710_361_002
# action_params keys and audit_events.detail keys that hold free text: hashed as a
# digest and blanked by retention. The rest is structure (teams, bands, ids).
TEXT_PARAMS = ("reason", "steps", "questions", "suggestion", "note", "comment")
TEXT_DETAIL = ("ref", "reason", "comment", "note", "text")
# Filled in by a rollback after the row was chained; checked against the ROLLBACK row.
LATER_COLUMNS = ("rolled_back", "rolled_back_at", "rolled_back_by", "rollback_reason")
# JSON numbers outside this range lose precision in other languages' parsers, and
# RFC 8785 refuses them: such an integer is hashed as its decimal string.
_SAFE_INTEGER = 2**53 - 1
# What the chain reads of each row: hashed, or checked (rollback_reason, when redacted).
COLUMNS = {
    ACTIONS: ("id", "ticket_id", "action_type", "action_params", "executed_at", "executed_by",
              "autonomous", "confidence_score", "agent_reasoning", "rollback_possible",
              "rollback_steps", "rollback_of", "before_state", "after_state", "rollback_reason"),
    EVENTS: ("id", "occurred_at", "event_type", "actor_id", "ticket_id", "action_id", "detail"),
}
_PENDING = "audit_chain_pending"
_RESERVED = "audit_chain_reserved"
_CHAINED = "_resolvemeq_audit_chained"
_UNREAD = object()
_INSTALLED = "_resolvemeq_audit_chain"


@dataclass(frozen=True)
class RowRef:
    """Which row an entry is for: its table and id."""

    table: str
    id: uuid.UUID | int

    def __str__(self) -> str:
        return f"{self.table} row {self.id}"


@dataclass(frozen=True)
class Digests:
    """What a row contributes to the chain."""

    ref: RowRef
    at: datetime | None
    text_digest: str
    content_digest: str


@dataclass(frozen=True)
class Head:
    """The chain's newest entry."""

    seq: int
    hash: str
    signature: str | None


@dataclass
class Reservation:
    """The chain's head held by this transaction since its first statement (the lock
    taken, the head read under it), and an audit_events id for the row it will chain."""

    event_id: int
    top: Head | None
    used: bool = False


# ----- canonical content ------------------------------------------------------------

def canonical(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON-like value (integers past 2**53 and non-finite floats
    as strings, which RFC 8785 would refuse)."""
    return rfc8785.dumps(_jsonable(value))


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -_SAFE_INTEGER <= value <= _SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def sha256(data: bytes) -> str:
    """Hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def _when(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def action_text(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The free text of an action_history row: its reasoning and the text params."""
    params = row["action_params"] or {}
    return {"agent_reasoning": row["agent_reasoning"] or "",
            "params": {key: params[key] for key in TEXT_PARAMS if key in params}}


def event_text(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The free text of an audit_events row: the text keys of its detail."""
    detail = row["detail"] or {}
    return {"detail": {key: detail[key] for key in TEXT_DETAIL if key in detail}}


def _action_fields(row: Mapping[Any, Any]) -> dict[str, Any]:
    params = {k: v for k, v in (row["action_params"] or {}).items() if k not in TEXT_PARAMS}
    return {
        "id": str(row["id"]), "ticket_id": row["ticket_id"], "action_type": row["action_type"],
        "action_params": params, "executed_at": _when(row["executed_at"]),
        "executed_by": row["executed_by"], "autonomous": row["autonomous"],
        "confidence_score": row["confidence_score"], "rollback_possible": row["rollback_possible"],
        "rollback_steps": row["rollback_steps"],
        "rollback_of": None if row["rollback_of"] is None else str(row["rollback_of"]),
        "before_state": row["before_state"], "after_state": row["after_state"],
    }


def _event_fields(row: Mapping[Any, Any]) -> dict[str, Any]:
    detail = {k: v for k, v in (row["detail"] or {}).items() if k not in TEXT_DETAIL}
    return {
        "id": row["id"], "occurred_at": _when(row["occurred_at"]), "event_type": row["event_type"],
        "actor_id": row["actor_id"], "ticket_id": row["ticket_id"],
        "action_id": None if row["action_id"] is None else str(row["action_id"]), "detail": detail,
    }


def text_of(table: str, row: Mapping[Any, Any]) -> dict[str, Any]:
    """The free text of a row of `table` (ACTIONS or EVENTS)."""
    return action_text(row) if table == ACTIONS else event_text(row)


def text_digest(table: str, row: Mapping[Any, Any]) -> str:
    """SHA-256 over the canonical free text of a row."""
    return sha256(canonical(text_of(table, row)))


def content_digest(table: str, row: Mapping[Any, Any], text_hash: str) -> str:
    """SHA-256 over a row's canonical content, its free text given as `text_hash`.

    Args:
        table: ACTIONS or EVENTS.
        row: the row's columns (as read by `select(table)`).
        text_hash: the digest of its free text (recorded at chaining, or computed).
    """
    fields = _action_fields(row) if table == ACTIONS else _event_fields(row)
    return sha256(canonical({"v": CONTENT_VERSION, "table": table, "row": fields,
                             "text": text_hash}))


def entry_hash(seq: int, content: str, prev_hash: str) -> str:
    """The entry's link: SHA-256 over its place, its row's content digest and the
    previous entry's hash."""
    return sha256(canonical({"seq": seq, "content": content, "prev": prev_hash}))


def sign(key: bytes | None, link: str) -> str | None:
    """HMAC-SHA256 of an entry's hash under the signing key; None without a key."""
    if key is None:
        return None
    return hmac.new(key, link.encode("ascii"), hashlib.sha256).hexdigest()


def digests_of(table: str, row: Mapping[Any, Any]) -> Digests:
    """A row's text and content digests, as a new entry records them."""
    row_id = row["id"]
    at = row["executed_at"] if table == ACTIONS else row["occurred_at"]
    text_hash = text_digest(table, row)
    return Digests(RowRef(table, row_id), at, text_hash, content_digest(table, row, text_hash))


# ----- appending ----------------------------------------------------------------------

def head(session: Session | Connection) -> Head | None:
    """The newest entry, or None for an empty chain."""
    found = session.execute(
        select(AuditChainEntry.seq, AuditChainEntry.hash, AuditChainEntry.signature)
        .order_by(AuditChainEntry.seq.desc()).limit(1)
    ).first()
    return None if found is None else Head(found.seq, found.hash, found.signature)


def read_rows(session: Session | Connection, table: str,
              ids: Iterable[Any]) -> dict[Any, Mapping[Any, Any]]:
    """Rows of `table` by id, as the database holds them (what verify reads too).

    Only the columns the chain reads (`COLUMNS`), so the migration that chained the
    first rows keeps working when later ones add columns.
    """
    columns = (ActionHistory if table == ACTIONS else AuditEvent).__table__.c
    wanted = list(ids)
    if not wanted:
        return {}
    rows = session.execute(select(*(columns[name] for name in COLUMNS[table]))
                           .where(columns.id.in_(wanted)))
    return {row.id: row._mapping for row in rows}


def lock(session: Session | Connection) -> None:
    """Take the chain's lock until this transaction ends (PostgreSQL; on SQLite the
    writing transaction holds the database's write lock already)."""
    if _dialect(session) == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})


def lock_and_read_head(session: Session | Connection) -> Head | None:
    """`lock`, then `head`, in one round trip on PostgreSQL.

    The lock is held until the commit and every appender waits for it, so each round
    trip inside it is paid by all of them: a thread that gets the lock must also get
    the interpreter lock back after every answer from the server (up to 5 ms when
    other threads run the agent), so fewer answers is fewer waits. Two statements in
    one query string: in READ COMMITTED each takes its own snapshot, so the head is
    read after the lock is granted and sees the previous appender's commit.
    """
    if _dialect(session) != "postgresql":
        return head(session)
    found = session.execute(text(
        "SELECT pg_advisory_xact_lock(:key); "
        "SELECT seq, hash, signature FROM audit_chain ORDER BY seq DESC LIMIT 1"
    ), {"key": CHAIN_LOCK_KEY}).first()
    return None if found is None else Head(found.seq, found.hash, found.signature)


def _dialect(session: Session | Connection) -> str:
    bind = session.get_bind() if isinstance(session, Session) else session
    return bind.dialect.name


def append(session: Session | Connection, digests: list[Digests], *,
           key: bytes | None, top: Head | None | object = _UNREAD,
           events: list[dict[str, Any]] | None = None) -> list[int]:
    """Chain rows, in the order given, after the current head (flushed, not committed).

    The caller holds the chain's lock (`lock`) from before this call until the commit.

    Args:
        session: the transaction that wrote the rows.
        digests: the rows' digests (`digests_of`), oldest first.
        key: AUDIT_SIGNING_KEY's bytes, or None to leave the entries unsigned.
        top: the head as read under the lock (`lock_and_read_head`); not given, it is
            read here.
        events: audit_events rows not written yet (ids reserved, `reserving`),
            inserted in the entries' statement (PostgreSQL); their digests are in
            `digests`.

    Returns:
        The new entries' sequence numbers.
    """
    if not digests:
        return []
    if top is _UNREAD:
        top = head(session)
    seq, prev = (0, GENESIS_HASH) if not isinstance(top, Head) else (top.seq, top.hash)
    values: list[dict[str, Any]] = []
    for item in digests:
        seq += 1
        link = entry_hash(seq, item.content_digest, prev)
        values.append({
            "seq": seq,
            "action_id": item.ref.id if item.ref.table == ACTIONS else None,
            "event_id": item.ref.id if item.ref.table == EVENTS else None,
            "text_digest": item.text_digest, "content_digest": item.content_digest,
            "prev_hash": prev, "hash": link, "signature": sign(key, link), "redacted_at": None,
        })
        prev = link
    if events:
        # One statement, one round trip: the rows and their entries commit together.
        session.execute(insert(AuditChainEntry).values(values)
                        .add_cte(insert(AuditEvent).values(events).cte("audited")))
    else:
        session.execute(insert(AuditChainEntry), values)
    return [value["seq"] for value in values]


def reserving(rows: Select[*tuple[Any, ...]],
              when: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
    """`rows`, a statement that locks rows (FOR UPDATE), made to also reserve the
    chain's head when `when` holds for its row, in the same round trip (PostgreSQL;
    use it where `may_reserve`, read the answer with `taken`).

    Sent ahead of `rows` in its query string: `rows` itself, locking its rows, then
    the chain's lock, taken only for a row where `when` holds. `rows` then runs again
    (its rows locked already, so no wait) with four more columns: an audit_events id
    from the table's sequence and the head, both only where `when` holds. Its snapshot
    is taken after the chain's lock was granted, so the head is the newest entry, and
    nobody appends after it until this transaction ends. Where `when` does not hold,
    nothing changes but the statement sent twice. The row locks come first, as
    everywhere else, and the transaction must take no other row lock before its commit.

    Args:
        rows: the caller's locking statement; its parameters are bound by name
            (`bindparam`) and given at execution, as the statement sent ahead shares them.
        when: true for a row whose transaction will write an audit row (`audit.record`
            with the reservation).

    Returns:
        A statement to build once and execute many times.
    """
    locked = rows.with_only_columns(when.label("reserve")).subquery("locked")
    lock_after_rows = (select(func.pg_advisory_xact_lock(literal_column(str(CHAIN_LOCK_KEY))))
                       .select_from(locked).where(locked.c.reserve))
    # Columns, not a join: the caller's FOR UPDATE (with or without OF) then locks
    # only its own tables.
    newest = [case((when, select(column).order_by(AuditChainEntry.seq.desc()).limit(1)
                    .scalar_subquery()))
              for column in (AuditChainEntry.seq, AuditChainEntry.hash, AuditChainEntry.signature)]
    event_id = case((when, func.nextval(literal_column(f"pg_get_serial_sequence('{EVENTS}', 'id')"))))
    return (rows.add_columns(event_id.label("reserved_event_id"), *newest)
            .execution_options(**preceded_by(lock_after_rows)))


def may_reserve(session: Session) -> bool:
    """Whether `session` may run a `reserving` statement: PostgreSQL, the chain
    installed, not in a savepoint (whose rollback would give the lock back)."""
    return (_dialect(session) == "postgresql" and not session.in_nested_transaction()
            and getattr(session, _CHAINED, False))


def taken(session: Session, row: Any) -> Reservation | None:
    """The reservation a `reserving` statement took for `row` (one of its rows, or
    None), or None."""
    if row is None:
        return None
    event_id, seq, link, signature = tuple(row)[-4:]  # the statement's four last columns
    if event_id is None:
        return None
    reservation = Reservation(event_id, None if seq is None else Head(seq, link, signature))
    session.info[_RESERVED] = reservation
    return reservation


def use_reservation(session: Session, reservation: Reservation | None) -> int | None:
    """The audit_events id `reservation` holds for this transaction's row, once; None
    when it is not this transaction's or was used."""
    held: Reservation | None = session.info.get(_RESERVED)
    if reservation is None or held is not reservation or reservation.used:
        return None
    reservation.used = True
    return reservation.event_id


def note_reserved(session: Session, table: str, values: Mapping[str, Any]) -> None:
    """Chain, and insert with its entry at the commit, a row not written yet whose id
    came from `use_reservation` (its `values` are every column in `COLUMNS`, as the
    database will hold them)."""
    session.info.setdefault(_PENDING, []).append((table, values["id"], dict(values), True))


def note_written(session: Session, table: str, row: Any) -> None:
    """Chain a row written without the unit of work (an ORM INSERT ... RETURNING, which
    `install`'s flush hook does not see), with the values the database returned.

    Chained at the commit like every row, from these values, unless it was written
    inside a savepoint (which may be rolled back): that one is read again then.

    Args:
        session: the session that wrote it.
        table: ACTIONS or EVENTS.
        row: the returned row (an ORM object or a mapping).
    """
    values = None if session.in_nested_transaction() else {
        name: (row[name] if isinstance(row, Mapping) else getattr(row, name))
        for name in COLUMNS[table]}
    session.info.setdefault(_PENDING, []).append(
        (table, values["id"] if values else row.id, values, False))


def install(target: sessionmaker[Session] | Session, *, key: bytes | None) -> None:
    """Chain every action_history and audit_events row that sessions of `target`
    write, just before their transaction commits.

    Rows are noticed when flushed and chained in `before_commit`: their digests are
    computed from the database's copy first, then the lock is taken, the head read and
    the entries inserted, so the lock is held only for the append and the commit.

    Args:
        target: a session factory (every session it makes) or one session.
        key: AUDIT_SIGNING_KEY's bytes; None leaves new entries unsigned.
    """
    if getattr(target, _INSTALLED, False):
        return
    setattr(target, _INSTALLED, True)
    # Every session of a factory is of the factory's own class: marked, they say so.
    setattr(target.class_ if isinstance(target, sessionmaker) else target, _CHAINED, True)

    def noticed(session: Session, _context) -> None:
        pending = session.info.setdefault(_PENDING, [])
        new = [(ACTIONS if isinstance(obj, ActionHistory) else EVENTS, obj.id, None, False)
               for obj in session.new if isinstance(obj, (ActionHistory, AuditEvent))]
        # Chained in the order they were written; within one flush, in a fixed order.
        pending.extend(sorted(new, key=lambda ref: (ref[0] == EVENTS, str(ref[1]))))

    def chain(session: Session) -> None:
        session.flush()
        pending = session.info.pop(_PENDING, None)
        if not pending:
            return
        # Rows come back from the database (a row written by `note_written` brought its
        # values with it); a row flushed in a savepoint that was rolled back is gone.
        read = {table: read_rows(session, table, [row_id for t, row_id, known, _ in pending
                                                  if t == table and known is None])
                for table in (ACTIONS, EVENTS)}
        for table, row_id, known, _ in pending:
            if known is not None:
                read[table][row_id] = known
        digests = [digests_of(table, read[table][row_id]) for table, row_id, _, _ in pending
                   if row_id in read[table]]
        unwritten = [known for table, _, known, write in pending if write and table == EVENTS]
        if digests:
            # A reservation means the lock is held and its head is still the head.
            reserved = session.info.get(_RESERVED)
            top = reserved.top if reserved is not None else lock_and_read_head(session)
            append(session, digests, key=key, top=top, events=unwritten)

    def forget(session: Session, transaction) -> None:
        if transaction.parent is None:
            session.info.pop(_PENDING, None)
            session.info.pop(_RESERVED, None)

    event.listen(target, "after_flush", noticed)
    event.listen(target, "before_commit", chain)
    event.listen(target, "after_transaction_end", forget)


def chain_order(table: str, row_id: Any, at: datetime | None) -> tuple[str, int, str]:
    """Where an existing row goes when rows written before the chain are chained at
    once (migration 0012): in time order, actions before the events they caused at the
    same instant, then by id, so the same rows always chain in the same order. Rows
    the app writes are chained in the order they were written."""
    return (as_utc(at).isoformat() if at is not None else "", 0 if table == ACTIONS else 1,
            str(row_id))


def signing_key(secret: Any) -> bytes | None:
    """AUDIT_SIGNING_KEY's bytes from the setting (a SecretStr or None)."""
    if secret is None:
        return None
    return secret.get_secret_value().encode("utf-8")
