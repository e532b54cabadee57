"""Audit-chain test helpers: chained session factories on either backend, and the
edits someone with database access could make behind the app's back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from bot.core.settings import Settings
from bot.domain import audit_verify
from bot.domain.audit_chain import install
from models import make_session_factory


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


def settings_for(url: str, **overrides: Any) -> Settings:
    """Settings for a test database, nothing read from the developer's environment."""
    return Settings(_env_file=None, database_url=url, **overrides)  # type: ignore[call-arg]
