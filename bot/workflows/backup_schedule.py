"""The optional backup schedule (BACKUP_DIR): create, verify, keep the newest, alert.

Every BACKUP_INTERVAL a pass writes `resolvemeq-<UTC time>.dump` (PostgreSQL) or
`.sqlite3` into BACKUP_DIR, verifies it as `resolvemeq backup verify` would, records
the outcome as an audit event (`backup_verified` or `backup_failed`, chained like every
audit row) and keeps the newest BACKUP_KEEP verified backups. A backup that fails to
verify is deleted, its problems kept in the event; the alert rule `backup_failed`
(bot.workflows.alerts) tells ALERTS_CHANNEL, and says so again when backups stop.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bot.core import clock
from bot.core.settings import Settings
from bot.domain import audit
from bot.domain.audit_chain import signing_key
from bot.workflows import backups
from bot.workflows.runtime import Runtime
from models import AuditEvent, as_utc, transaction

log = logging.getLogger(__name__)

BACKUP_LOCK_KEY = 7_268_710_361_004
"""pg_try_advisory_lock key: one scheduled backup at a time across processes."""
BACKUPS_OFF = "scheduled backups are off: BACKUP_DIR is not set"
_NAME = re.compile(r"^resolvemeq-\d{8}T\d{6}Z\.(dump|sqlite3)$")


def off_reason(settings: Settings) -> str | None:
    """Why no backup is scheduled with these settings, or None."""
    return None if settings.backup_dir else BACKUPS_OFF


def last_attempt(session: Session) -> datetime | None:
    """When the schedule last made a backup, verified or not."""
    at = session.scalar(select(func.max(AuditEvent.occurred_at)).where(
        AuditEvent.event_type.in_([audit.BACKUP_VERIFIED, audit.BACKUP_FAILED])))
    return as_utc(at)


def backup_name(url: str, now: datetime) -> str:
    """The file name of a scheduled backup made at `now`."""
    kind = "dump" if url.startswith("postgresql") else "sqlite3"
    return f"resolvemeq-{as_utc(now):%Y%m%dT%H%M%SZ}.{kind}"


def run_scheduled_backup(runtime: Runtime, *, now: datetime | None = None) -> int:
    """Make and verify a backup if one is due; returns 1 when one was attempted.

    Args:
        runtime: the process's settings and database.
        now: the clock reading.
    """
    settings = runtime.settings
    if settings.backup_dir is None:
        return 0
    now = now or clock.now()
    with runtime.engine.connect() as guard:
        postgres = guard.dialect.name == "postgresql"
        if postgres and not guard.scalar(text("SELECT pg_try_advisory_lock(:key)"),
                                         {"key": BACKUP_LOCK_KEY}):
            return 0
        try:
            with transaction(runtime.sessions) as session:
                last = last_attempt(session)
            if last is not None and now - last < settings.backup_interval:
                return 0
            _backup(runtime, settings.backup_dir, now)
            return 1
        finally:
            if postgres:
                guard.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": BACKUP_LOCK_KEY})
                guard.commit()


def _backup(runtime: Runtime, folder: Path, now: datetime) -> None:
    settings = runtime.settings
    path = folder / backup_name(settings.database_url, now)
    problems: list[str] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        backups.create(settings.database_url, path, now=now)
        problems = backups.verify(path, database_url=settings.database_url,
                                  key=signing_key(settings.audit_signing_key)).problems
    except backups.BackupError as error:
        problems = [str(error)]
    except Exception as error:  # the alert must still be raised, whatever broke
        log.exception("scheduled backup %s failed", path)
        problems = [f"{type(error).__name__}: {error}"]
    if problems:
        log.error("scheduled backup %s failed: %s", path, "; ".join(problems))
        _remove(path)
    with transaction(runtime.sessions) as session:
        audit.record(session, audit.BACKUP_FAILED if problems else audit.BACKUP_VERIFIED,
                     actor_id=None, now=now, detail={"file": str(path), "problems": problems[:5]})
    if not problems:
        prune(folder, keep=settings.backup_keep)


def prune(folder: Path, *, keep: int) -> list[Path]:
    """Delete all but the newest `keep` scheduled backups (and their manifests) in
    `folder`; other files are left alone. Returns what was deleted."""
    ours = sorted((p for p in folder.iterdir() if _NAME.match(p.name)), key=lambda p: p.name,
                  reverse=True)
    for old in ours[keep:]:
        _remove(old)
    return ours[keep:]


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    backups.manifest_path(path).unlink(missing_ok=True)
