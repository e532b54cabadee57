"""Backups that are known to restore: `resolvemeq backup create|verify FILE`.

`create` writes FILE (PostgreSQL: pg_dump's custom format, by the pg_dump of the
server's major version, from one exported snapshot; SQLite: the online backup API)
and FILE.manifest.json beside it: the file's SHA-256, the schema revision, every
table's row count and the audit chain's head, all read in the snapshot the dump is of.

`verify` restores FILE into a scratch database (a new PostgreSQL database on the
server of DATABASE_URL, dropped after; a temporary SQLite file) and checks, saying
every problem it finds: the file is the one the manifest describes, it restores, the
schema is at head, `audit verify` passes, and every table holds the rows the manifest
counted, up to the same chain head.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url

from bot.core import clock
from bot.core.schema import head_revisions
from bot.domain import audit_chain, audit_verify
from models import Base, make_engine

FORMAT_PG = "postgresql-custom"
FORMAT_SQLITE = "sqlite"
_MAGIC = {b"PGDMP": FORMAT_PG, b"SQLite format 3\x00": FORMAT_SQLITE}
# Where Debian and Ubuntu keep each major version's client programs.
PG_BIN_ROOT = Path("/usr/lib/postgresql")
_RESTORE_TIMEOUT = 3600


class BackupError(Exception):
    """A backup could not be made or checked at all; the message says why, in one line."""


@dataclass(frozen=True)
class Manifest:
    """What a backup holds, read in the snapshot it was made from."""

    format: str
    created_at: str
    sha256: str
    revision: str | None
    counts: dict[str, int]
    chain_head: dict[str, Any] | None

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)


@dataclass
class Verification:
    """What `verify` found; `ok` when there are no problems."""

    manifest: Manifest | None = None
    counts: dict[str, int] = field(default_factory=dict)
    chain: audit_verify.Report | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def manifest_path(path: Path) -> Path:
    """Where a backup's manifest lives: beside it, `<name>.manifest.json`."""
    return path.with_name(path.name + ".manifest.json")


def tables() -> list[str]:
    """Every table a backup must hold, in dependency order, and Alembic's."""
    return [table.name for table in Base.metadata.sorted_tables] + ["alembic_version"]


# ----- create ---------------------------------------------------------------------------

def create(database_url: str, path: Path, *, now: datetime | None = None) -> Manifest:
    """Back the database up to `path`, with its manifest beside it.

    Written under a temporary name and renamed once complete, so a crash leaves no
    half-written file where a backup should be.

    Args:
        database_url: the database to back up (DATABASE_URL).
        path: the backup file to write; its folder must exist.
        now: the clock reading recorded in the manifest.

    Returns:
        The manifest written.

    Raises:
        BackupError: pg_dump is missing or failed, the folder does not exist, ...
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a folder; create it first")
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    url = make_url(database_url)
    try:
        if url.get_backend_name() == "postgresql":
            fmt, facts = FORMAT_PG, _dump_postgres(url, partial)
        else:
            fmt, facts = FORMAT_SQLITE, _copy_sqlite(url, partial)
        manifest = Manifest(format=fmt, created_at=(now or clock.now()).isoformat(),
                            sha256=_file_sha256(partial), **facts)
        manifest_path(partial).write_text(manifest.to_json())
        os.replace(partial, path)
        os.replace(manifest_path(partial), manifest_path(path))
    finally:
        for leftover in (partial, manifest_path(partial)):
            leftover.unlink(missing_ok=True)
    return manifest


def _facts(conn: Connection) -> dict[str, Any]:
    """Revision, row counts and chain head, read on `conn` (in the backup's snapshot)."""
    counts = {name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
              for name in tables()}
    revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    head = audit_chain.head(conn)
    return {"revision": revision, "counts": counts,
            "chain_head": None if head is None else {"seq": head.seq, "hash": head.hash}}


def _dump_postgres(url: URL, target: Path) -> dict[str, Any]:
    engine = create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn:
            # The transaction that exports the snapshot stays open while pg_dump reads it,
            # so the dump and the facts in the manifest are of one and the same instant.
            conn.execute(text("SET TRANSACTION READ ONLY"))
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            facts = _facts(conn)
            major = _server_major(conn)
            _run([str(_pg_program("pg_dump", major)), "--format=custom", "--no-owner",
                  f"--snapshot={snapshot}", f"--file={target}"], url, what="pg_dump")
            conn.rollback()
    finally:
        engine.dispose()
    return facts


def _copy_sqlite(url: URL, target: Path) -> dict[str, Any]:
    source = url.database
    if not source or source == ":memory:" or not Path(source).is_file():
        raise BackupError(f"no SQLite database file at {source!r}")
    with _sqlite(Path(source)) as src, _sqlite(target) as dst:
        # The online backup API: a consistent copy while the bot goes on writing.
        src.backup(dst)
        # A file on its own: no write-ahead log beside it to lose in a copy.
        dst.execute("PRAGMA journal_mode=DELETE")
    # A plain engine: the app's turns WAL on, which would change the file.
    engine = create_engine(f"sqlite:///{target}")
    try:
        with engine.connect() as conn:
            return _facts(conn)
    finally:
        engine.dispose()


# ----- verify -----------------------------------------------------------------------------

def verify(path: Path, *, database_url: str, key: bytes | None) -> Verification:
    """Restore a backup into a scratch database and check it.

    Args:
        path: the backup file (its manifest beside it).
        database_url: DATABASE_URL: a PostgreSQL backup is restored into a new database
            on this server (the user needs CREATEDB), which is dropped afterwards.
        key: AUDIT_SIGNING_KEY's bytes, for the audit verification.

    Returns:
        The problems found (none: the backup restores and is whole).
    """
    path = Path(path)
    found = Verification()
    if not path.is_file():
        found.problems.append(f"{path} does not exist")
        return found
    fmt = _format_of(path)
    if fmt is None:
        found.problems.append(f"{path} is neither a pg_dump custom-format file nor a SQLite "
                              "database: it is damaged or not a backup")
        return found
    found.manifest = _read_manifest(path, found.problems)
    if found.manifest is not None:
        if found.manifest.sha256 != _file_sha256(path):
            found.problems.append(f"{path} differs from the file the manifest describes (SHA-256): "
                                  "it was damaged or changed after it was made")
        if found.manifest.format != fmt:
            found.problems.append(f"the manifest describes a {found.manifest.format} backup, "
                                  f"the file is {fmt}")
    restore = _restored_postgres if fmt == FORMAT_PG else _restored_sqlite
    try:
        with restore(path, database_url) as engine:
            _check_restored(engine, found, key)
    except BackupError as error:
        found.problems.append(str(error))
    return found


def _check_restored(engine: Engine, found: Verification, key: bytes | None) -> None:
    with engine.connect() as conn:
        present = {name for name in tables()
                   if conn.execute(text(_exists_sql(engine)), {"name": name}).scalar()}
        missing = [name for name in tables() if name not in present]
        if missing:
            found.problems.append(f"the restored database lacks tables: {', '.join(missing)}")
            return
        facts = _facts(conn)
    found.counts = facts["counts"]
    heads = head_revisions()
    if facts["revision"] not in heads:
        found.problems.append(f"the schema is at revision {facts['revision']}, not at head "
                              f"({', '.join(sorted(heads))}): run `resolvemeq db upgrade` on the "
                              "restored database, or make a new backup")
    with audit_verify.snapshot_session(engine) as session:
        found.chain = audit_verify.verify(session, key=key)
    if not found.chain.ok:
        first = found.chain.problems[0].message if found.chain.problems else ""
        found.problems.append(f"audit verify fails on the restored database "
                              f"({found.chain.problem_count} problems); the first: {first}")
    manifest = found.manifest
    if manifest is None:
        return
    for name in sorted(set(manifest.counts) | set(found.counts)):
        wanted, got = manifest.counts.get(name), found.counts.get(name)
        if wanted != got:
            found.problems.append(f"{name}: the manifest counted {wanted} rows, the restored "
                                  f"database holds {got}")
    if manifest.chain_head != facts["chain_head"]:
        found.problems.append(f"the audit chain's head is {facts['chain_head']}, the manifest "
                              f"says {manifest.chain_head}")


def _exists_sql(engine: Engine) -> str:
    if engine.dialect.name == "postgresql":
        return "SELECT to_regclass(:name) IS NOT NULL"
    return "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = :name"


@contextmanager
def _restored_postgres(path: Path, database_url: str) -> Iterator[Engine]:
    server = make_url(database_url)
    if server.get_backend_name() != "postgresql":
        raise BackupError("a PostgreSQL backup is restored into a scratch database on the "
                          "server of DATABASE_URL, which is not PostgreSQL")
    scratch = f"{(server.database or 'resolvemeq')[:30]}_verify_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            major = _server_major(conn)
            conn.execute(text(f'CREATE DATABASE "{scratch}"'))
        target = server.set(database=scratch)
        engine = make_engine(target.render_as_string(hide_password=False))
        try:
            _run([str(_pg_program("pg_restore", major)), "--exit-on-error", "--no-owner",
                  "--single-transaction", f"--dbname={scratch}", str(path)], target,
                 what="pg_restore")
            yield engine
        finally:
            engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def _restored_sqlite(path: Path, database_url: str) -> Iterator[Engine]:
    folder = Path(tempfile.mkdtemp(prefix="resolvemeq-verify-"))
    scratch = folder / "restored.db"
    try:
        try:
            with _sqlite(path, read_only=True) as src, _sqlite(scratch) as dst:
                src.backup(dst)
            with _sqlite(scratch) as db:
                verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise BackupError(f"the backup does not restore: {error}") from None
        if verdict != "ok":
            raise BackupError(f"the restored database fails SQLite's integrity check: {verdict}")
        engine = make_engine(f"sqlite:///{scratch}")
        try:
            yield engine
        finally:
            engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ----- helpers ------------------------------------------------------------------------------

@contextmanager
def _sqlite(path: Path, *, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(f"file:{path}?mode=ro" if read_only else str(path), uri=read_only)
    try:
        yield db
    finally:
        db.close()


def _format_of(path: Path) -> str | None:
    with path.open("rb") as handle:
        start = handle.read(16)
    return next((fmt for magic, fmt in _MAGIC.items() if start.startswith(magic)), None)


def _read_manifest(path: Path, problems: list[str]) -> Manifest | None:
    where = manifest_path(path)
    try:
        data = json.loads(where.read_text())
        return Manifest(**{name: data[name] for name in Manifest.__dataclass_fields__})
    except FileNotFoundError:
        problems.append(f"{where} is missing: without it the row counts and the file's "
                        "checksum cannot be compared")
    except (ValueError, KeyError, TypeError) as error:
        problems.append(f"{where} is not a backup manifest ({type(error).__name__}: {error})")
    return None


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _server_major(conn: Connection) -> int:
    return int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000


def _pg_program(name: str, major: int) -> Path:
    """The client program of the server's major version: a pg_dump older than the server
    refuses to dump it, and a newer one writes archives older pg_restores cannot read."""
    versioned = PG_BIN_ROOT / str(major) / "bin" / name
    if versioned.is_file():
        return versioned
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} for PostgreSQL {major} not found (looked in {versioned.parent} "
                          f"and PATH): install postgresql-client-{major}")
    version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30).stdout
    if f" {major}." not in version:
        raise BackupError(f"{found} is {version.strip()!r}, but the server is PostgreSQL {major}: "
                          f"install postgresql-client-{major}")
    return Path(found)


def _run(argv: list[str], url: URL, *, what: str) -> None:
    # The connection goes in libpq's variables, so the password is not on a command line.
    env = {**os.environ, "PGHOST": url.host or "", "PGPORT": str(url.port or 5432),
           "PGUSER": url.username or "", "PGDATABASE": url.database or ""}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    # errors="replace": pg_restore quotes a damaged file's bytes in its error, and those
    # need not be UTF-8; the verdict must still be a clean "FAILED", not a traceback.
    done = subprocess.run(argv, env=env, capture_output=True, text=True, errors="replace",
                          timeout=_RESTORE_TIMEOUT)
    if done.returncode != 0:
        said = " ".join(done.stderr.strip().splitlines()[-3:]) or f"exit status {done.returncode}"
        raise BackupError(f"{what} failed: {said}")
