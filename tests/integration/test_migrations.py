"""The schema is built by the migrations, and the migrations agree with the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from bot.platform import migrations
from models import Base
from models.session import make_engine
from tests.support.databases import PG_DATABASE
from tests.support.databases import recreate_database as _recreate_database

TABLES = {"tickets", "action_history", "ticket_resolution", "agent_calls", "audit_events"}


def _diff(url: str) -> list:
    engine = make_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return diff


def test_single_head():
    script = ScriptDirectory.from_config(migrations.alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_postgres_upgrade_down_to_base_and_up_again():
    url = _recreate_database(f"{PG_DATABASE}_migrations")
    migrations.upgrade(url)
    engine = make_engine(url)
    assert TABLES <= set(inspect(engine).get_table_names())
    migrations.downgrade(url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrations.upgrade(url)
    assert TABLES <= set(inspect(engine).get_table_names())
    engine.dispose()
    assert _diff(url) == []


def test_models_and_migrations_agree_on_postgres(pg_url):
    assert _diff(pg_url) == []


def test_new_sqlite_file_upgrades_and_agrees(sqlite_url):
    engine = make_engine(sqlite_url)
    assert TABLES <= set(inspect(engine).get_table_names())
    engine.dispose()
    assert _diff(sqlite_url) == []


@pytest.mark.parametrize("table", sorted(TABLES))
def test_reference_columns_are_named_as_the_contract_says(pg_url, table):
    contract = {
        "action_history": {
            "id", "ticket_id", "action_type", "action_params", "executed_at",
            "executed_by", "confidence_score", "agent_reasoning", "rollback_possible",
            "rolled_back", "rolled_back_at", "rolled_back_by", "rollback_reason",
            "before_state", "after_state",
        },
        "ticket_resolution": {
            "ticket_id", "autonomous_action", "resolution_confirmed",
            "satisfaction_score", "followup_sent_at", "response_received_at",
            "reopened", "reopened_at", "reopened_reason",
        },
        "tickets": {"ticket_id", "status", "description", "category", "issue_type"},
        "agent_calls": {"called_at", "ok", "latency_ms"},
        "audit_events": {"occurred_at", "event_type", "actor_id"},
    }[table]
    engine = make_engine(pg_url)
    columns = {c["name"] for c in inspect(engine).get_columns(table)}
    engine.dispose()
    assert contract <= columns
