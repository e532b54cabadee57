"""Alembic environment: one metadata, types compared, URL overridable by the caller.

The URL comes from the config's `sqlalchemy.url` when a caller (the CLI, the tests)
set it, else from DATABASE_URL through the settings.
"""

from contextlib import contextmanager

from alembic import context
from models import Base
from models.base import UTCDateTime
from models.session import make_engine

config = context.config


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from bot.core.settings import load_settings

    return load_settings().database_url


def _render_item(type_, obj, autogen_context):
    # Our UTCDateTime is a Python-side wrapper; the column is a plain timestamptz.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=Base.metadata,
        compare_type=True,
        render_item=_render_item,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=True,
        **kwargs,
    )


@contextmanager
def _sqlite_foreign_keys_off(connection):
    """On SQLite, foreign keys off while migrating, checked and back on after.

    Batch mode rebuilds a table (copy, drop, rename) to change a constraint. With
    foreign keys on, the drop deletes every row first, and that delete cascades:
    ticket_resolution.action_id would be set NULL when action_history is rebuilt.
    This is SQLite's own procedure for schema changes (sqlite.org/lang_altertable.html).
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    # The pragma is ignored inside a transaction, and every transaction on our SQLite
    # engine starts with BEGIN (models.session): set it on the driver's connection,
    # between transactions.
    driver = connection.connection.driver_connection
    driver.execute("PRAGMA foreign_keys=OFF")
    if driver.execute("PRAGMA foreign_keys").fetchone()[0]:
        raise RuntimeError("could not turn SQLite foreign keys off for the migration")
    try:
        yield
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
        if broken:
            raise RuntimeError(f"the migration left rows with broken foreign keys: {broken[:5]}")
    finally:
        connection.commit()
        driver.execute("PRAGMA foreign_keys=ON")


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    with engine.connect() as connection, _sqlite_foreign_keys_off(connection):
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
