"""The backup schedule (BACKUP_DIR): made and verified when due, the newest kept, a
backup that does not verify deleted, audited and alerted. On the embedded default
(SQLite); `test_jobs` runs it on PostgreSQL through `jobs run-once`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.core.settings import Settings, load_settings
from bot.domain import audit
from bot.workflows.alerts import measure_all
from bot.workflows.backup_schedule import run_scheduled_backup
from bot.workflows.runtime import Runtime
from models import ActionHistory, AlertRule, AuditEvent, transaction
from tests.support.chain import db_id, sql, verify
from tests.support.factories import make_action

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture()
def runtime(sqlite_url, tmp_path, monkeypatch):
    import os

    for name in list(os.environ):
        if name.lower() in Settings.model_fields:
            monkeypatch.delenv(name)
    built = Runtime.from_settings(load_settings(
        database_url=sqlite_url, backup_dir=str(tmp_path / "backups"), backup_keep=2,
        backup_interval="1h", alerts_channel="CALERTS"))
    with transaction(built.sessions) as session:
        make_action(session, now=NOW)
    yield built
    built.engine.dispose()


def _events(runtime) -> list[AuditEvent]:
    with transaction(runtime.sessions) as session:
        return session.scalars(select(AuditEvent).where(AuditEvent.event_type.in_(
            [audit.BACKUP_VERIFIED, audit.BACKUP_FAILED])).order_by(AuditEvent.id)).all()


def test_backups_are_made_when_due_and_the_newest_kept(runtime, tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / "notes.txt").write_text("not ours: left alone")
    made = [run_scheduled_backup(runtime, now=NOW + timedelta(minutes=m)) for m in (0, 30, 60, 120, 180)]
    assert made == [1, 0, 1, 1, 1]  # the one at 30 min was not due
    kept = sorted(p.name for p in folder.iterdir())
    assert kept == ["notes.txt", "resolvemeq-20261125T110000Z.sqlite3",
                    "resolvemeq-20261125T110000Z.sqlite3.manifest.json",
                    "resolvemeq-20261125T120000Z.sqlite3",
                    "resolvemeq-20261125T120000Z.sqlite3.manifest.json"]
    assert [e.event_type for e in _events(runtime)] == [audit.BACKUP_VERIFIED] * 4
    assert verify(runtime.engine).ok  # the outcomes are chained like every audit row
    with transaction(runtime.sessions) as session:
        measured = {m.rule: m for m in measure_all(session, runtime.settings,
                                                   now=NOW + timedelta(minutes=181))}
    assert not measured[AlertRule.BACKUP_FAILED].breached


def test_a_backup_that_does_not_verify_is_deleted_audited_and_alerted(runtime, tmp_path):
    with runtime.engine.connect() as conn:
        action_id = conn.scalar(select(ActionHistory.id))
    sql(runtime.engine, "UPDATE action_history SET executed_by = 'UEVIL' WHERE id = :id",
        id=db_id(runtime.engine, action_id))
    assert run_scheduled_backup(runtime, now=NOW) == 1
    assert list((tmp_path / "backups").iterdir()) == []
    [failed] = _events(runtime)
    assert failed.event_type == audit.BACKUP_FAILED
    assert failed.detail["problems"][0].startswith("audit verify fails on the restored database")
    with transaction(runtime.sessions) as session:
        measured = {m.rule: m for m in measure_all(session, runtime.settings,
                                                   now=NOW + timedelta(minutes=1))}
    alert = measured[AlertRule.BACKUP_FAILED]
    assert alert.breached and "failed: audit verify fails" in alert.message
