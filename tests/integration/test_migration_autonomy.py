"""Migration 0014 (the autonomy switch) on both backends: a database at 0012 gets the
two tables, reads as `on` (no row), and the downgrade drops them again."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from bot.domain import autonomy
from bot.platform import migrations
from models import AutonomyMode, make_engine, make_session_factory, transaction
from tests.support.databases import PG_DATABASE, recreate_database

BEFORE = "0013c"
TABLES = {"autonomy_state", "shadow_decisions"}


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request, tmp_path):
    if request.param == "postgresql":
        return recreate_database(f"{PG_DATABASE}_autonomy_migration")
    return f"sqlite:///{tmp_path / 'migration.db'}"


def test_upgrade_adds_the_switch_reading_on_and_the_downgrade_removes_it(url):
    migrations.upgrade(url, BEFORE)
    engine = make_engine(url)
    try:
        assert not TABLES & set(inspect(engine).get_table_names())
        migrations.upgrade(url)
        assert TABLES <= set(inspect(engine).get_table_names())
        sessions = make_session_factory(engine)
        with transaction(sessions) as session:
            assert autonomy.current(session) == autonomy.ON
            assert autonomy.change(session, AutonomyMode.PAUSED, actor_id="UADMIN").changed
        with transaction(sessions) as session:
            assert autonomy.current(session).mode == AutonomyMode.PAUSED
        migrations.downgrade(url, BEFORE)
        engine.dispose()
        assert not TABLES & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
