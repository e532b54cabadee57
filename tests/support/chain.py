"""Audit-chain test helpers: chained session factories on either backend, and the
edits someone with database access could make behind the app's back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot.domain import audit_chain, audit_verify
from bot.domain.audit_chain import ACTIONS, EVENTS, install
from models import AuditChainEntry, make_session_factory


def chained_factory(engine: Engine, *, key: bytes | None = None) -> sessionmaker[Session]:
    """Sessions whose action and audit rows join the chain, as Runtime's do."""
    factory = make_session_factory(engine)
    install(factory, key=key)
    return factory


def verify(engine: Engine, *, key: bytes | None = None, **kwargs: Any) -> audit_verify.Report:
    """`audit verify` in one snapshot, as the CLI runs it."""
    with audit_verify.snapshot_session(engine) as session:
        return audit_verify.verify(session, key=key, **kwargs)


def sql(engine: Engine, statement: str, **params: Any) -> None:
    """Run one statement as a person with database access would: no app, no hooks."""
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def db_id(engine: Engine, value: uuid.UUID) -> str:
    """An action id as a raw SQL parameter on this backend (SQLite keeps 32 hex digits)."""
    return value.hex if engine.dialect.name == "sqlite" else str(value)


def db_time(engine: Engine, value: datetime) -> Any:
    """A timestamp as a raw SQL parameter on this backend (SQLite keeps naive UTC text)."""
    return value.replace(tzinfo=None).isoformat(sep=" ") if engine.dialect.name == "sqlite" else value


def rewrite_chain_from(engine, *, changed) -> None:
    """What someone with database access but without the key would do: change a row,
    then recompute every digest and hash after it so the chain is consistent again."""
    sql(engine, "UPDATE action_history SET executed_by = 'UEVIL' WHERE id = :id",
        id=db_id(engine, changed.id))
    with engine.begin() as conn:
        prev = None
        for entry in conn.execute(select(AuditChainEntry.__table__).order_by(AuditChainEntry.seq)).all():
            table, row_id = (ACTIONS, entry.action_id) if entry.action_id else (EVENTS, entry.event_id)
            row = audit_chain.read_rows(conn, table, [row_id])[row_id]
            content = audit_chain.content_digest(table, row, entry.text_digest)
            prev = prev or entry.prev_hash
            link = audit_chain.entry_hash(entry.seq, content, prev)
            conn.execute(text("UPDATE audit_chain SET content_digest = :c, prev_hash = :p, hash = :h "
                              "WHERE seq = :s"), {"c": content, "p": prev, "h": link, "s": entry.seq})
            prev = link
