"""`resolvemeq audit verify|export` and `resolvemeq backup create|verify`, as an operator
runs them, on PostgreSQL and SQLite: a database the bot wrote verifies, a tampered one
names the row, a backup of a live database verifies and a damaged one does not."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.settings import Settings, load_settings
from bot.platform import cli
from bot.workflows import backups
from bot.workflows.runtime import Runtime
from models import ActionHistory, AuditChainEntry, make_engine
from tests.support.chain import db_id, sql
from tests.support.databases import PG_DATABASE, recreate_database

REQUESTS = ("my vpn keeps dropping", "I forgot my password and can't log in", "my laptop was stolen")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    import os

    for name in list(os.environ):
        if name.lower() in Settings.model_fields:
            monkeypatch.delenv(name)


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request, tmp_path, monkeypatch, capsys):
    """A database made by `db upgrade`, with three tickets the bot decided (`ask`)."""
    if request.param == "postgresql":
        url = recreate_database(f"{PG_DATABASE}_cli")
    else:
        url = f"sqlite:///{tmp_path / 'bot.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    assert cli.main(["db", "upgrade"]) == 0
    for text in REQUESTS:
        assert cli.main(["ask", text]) == 0
    capsys.readouterr()
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _first_action(engine):
    with engine.connect() as conn:
        return conn.execute(select(ActionHistory.id, ActionHistory.ticket_id)
                            .order_by(ActionHistory.executed_at)).first()


def test_audit_verify_passes_then_names_the_row_someone_changed(database, capsys):
    code, out, _ = _run(capsys, "audit", "verify")
    assert code == 0, out
    assert out.startswith("OK: every row is as it was chained")
    assert "audit chain: 3 entries" in out and "signatures not checked" in out
    first = _first_action(database)
    sql(database, "UPDATE action_history SET confidence_score = 0.99 WHERE id = :id",
        id=db_id(database, first.id))
    code, out, _ = _run(capsys, "audit", "verify")
    assert code == 1
    assert out.splitlines()[0] == (f"FAILED: 1 problem; the first: action_history row {first.id} "
                                   "(entry #1) was changed: its content differs from what was chained.")


def test_audit_export_as_jsonl_and_csv(database, capsys):
    code, out, err = _run(capsys, "audit", "export")
    assert code == 0 and "exported 3 audit records" in err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert [r["type"] for r in records] == ["AUTO_RESOLVE", "AUTO_RESOLVE", "ESCALATE"]
    assert all(len(r["hash"]) == 64 and r["row"]["id"] == r["id"] for r in records)
    assert records[1]["prev_hash"] == records[0]["hash"]
    code, out, _ = _run(capsys, "audit", "export", "--format", "csv", "--since", "1h")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [row["seq"] for row in rows] == ["1", "2", "3"]
    assert rows[2]["type"] == "ESCALATE" and rows[2]["hash"] == records[2]["hash"]
    time.sleep(1.1)
    code, out, _ = _run(capsys, "audit", "export", "--since", "1s")
    assert code == 0 and out == ""
    code, _, err = _run(capsys, "audit", "export", "--since", "a week")
    assert code == 2 and "--since 'a week'" in err


def test_a_backup_of_a_live_database_verifies(database, capsys, tmp_path):
    url = str(database.url.render_as_string(hide_password=False))
    runtime = Runtime.from_settings(load_settings(database_url=url))
    stop = threading.Event()
    decided: list[int] = []

    def keep_deciding() -> None:  # the bot goes on working while the backup is made
        while not stop.is_set():
            decided.append(runtime.ask(user_id="UBUSY", text="printer jammed again").ticket.ticket_id)

    writer = threading.Thread(target=keep_deciding)
    writer.start()
    try:
        while len(decided) < 2:
            time.sleep(0.01)
        path = tmp_path / ("live.dump" if database.dialect.name == "postgresql" else "live.sqlite3")
        code, out, err = _run(capsys, "backup", "create", str(path))
        assert code == 0, err
        made_at = len(decided)
        while len(decided) < made_at + 2:
            time.sleep(0.01)
    finally:
        stop.set()
        writer.join(timeout=60)
        runtime.engine.dispose()
    assert "audit chain head #" in out
    manifest = json.loads(backups.manifest_path(path).read_text())
    assert manifest["counts"]["audit_chain"] == manifest["counts"]["action_history"] >= 5
    code, out, _ = _run(capsys, "backup", "verify", str(path))
    assert code == 0, out
    assert out.startswith(f"OK: {path} restores; schema at head, audit verify passes")
    with database.connect() as conn:  # the live database moved on; the backup is of its moment
        assert conn.scalar(select(AuditChainEntry.seq).order_by(AuditChainEntry.seq.desc())
                           .limit(1)) > manifest["chain_head"]["seq"]


@pytest.fixture()
def backup(database, capsys, tmp_path) -> Path:
    path = tmp_path / ("good.dump" if database.dialect.name == "postgresql" else "good.sqlite3")
    assert _run(capsys, "backup", "create", str(path))[0] == 0
    return path


def _damaged(path: Path, name: str, change) -> Path:
    """A copy of the backup changed by `change`, with a manifest that matches the damaged
    bytes: the restore itself must notice."""
    damaged = path.with_name(name)
    damaged.write_bytes(change(path.read_bytes()))
    manifest = json.loads(backups.manifest_path(path).read_text())
    manifest["sha256"] = backups._file_sha256(damaged)
    backups.manifest_path(damaged).write_text(json.dumps(manifest))
    return damaged


def test_a_damaged_backup_does_not_verify(backup, capsys):
    def flipped(data: bytes) -> bytes:
        middle = bytearray(data)
        for at in range(len(data) // 2, len(data) // 2 + 64):
            middle[at] ^= 0xFF
        return bytes(middle)

    for damaged, said in (
        (_damaged(backup, "truncated" + backup.suffix, lambda data: data[: len(data) * 2 // 3]),
         ("pg_restore failed", "does not restore", "integrity check")),
        (_damaged(backup, "flipped" + backup.suffix, flipped),
         ("pg_restore failed", "does not restore", "integrity check", "rows")),
    ):
        code, out, _ = _run(capsys, "backup", "verify", str(damaged))
        assert code == 1, out
        assert out.startswith(f"FAILED: {damaged}") and any(words in out for words in said), out
    # Bytes changed after the backup was made, manifest untouched: the checksum says so.
    changed = backup.with_name("changed" + backup.suffix)
    original = backup.read_bytes()
    changed.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    backups.manifest_path(changed).write_text(backups.manifest_path(backup).read_text())
    code, out, _ = _run(capsys, "backup", "verify", str(changed))
    assert code == 1 and "differs from the file the manifest describes" in out
    backups.manifest_path(changed).unlink()
    code, out, _ = _run(capsys, "backup", "verify", str(changed))
    assert code == 1 and "manifest.json is missing" in out
    not_a_backup = backup.with_name("notes.txt")
    not_a_backup.write_text("hello")
    code, out, _ = _run(capsys, "backup", "verify", str(not_a_backup))
    assert code == 1 and "neither a pg_dump custom-format file nor a SQLite database" in out


def test_a_backup_whose_counts_or_chain_do_not_match_does_not_verify(backup, database, capsys):
    manifest = json.loads(backups.manifest_path(backup).read_text())
    manifest["counts"]["tickets"] += 1
    backups.manifest_path(backup).write_text(json.dumps(manifest))
    code, out, _ = _run(capsys, "backup", "verify", str(backup))
    assert code == 1
    assert "tickets: the manifest counted 4 rows, the restored database holds 3" in out
    # A backup of a database whose audit trail was tampered with does not verify either.
    first = _first_action(database)
    sql(database, "UPDATE action_history SET executed_by = 'UEVIL' WHERE id = :id",
        id=db_id(database, first.id))
    tampered = backup.with_name("tampered" + backup.suffix)
    assert _run(capsys, "backup", "create", str(tampered))[0] == 0
    code, out, _ = _run(capsys, "backup", "verify", str(tampered))
    assert code == 1 and f"audit verify fails on the restored database (1 problems); the first: " \
        f"action_history row {first.id}" in out
