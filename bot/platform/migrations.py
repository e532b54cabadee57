"""Running the Alembic migrations from code (the CLI and the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from alembic import command

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCRIPT_LOCATION = PROJECT_ROOT / "alembic"


def alembic_config(database_url: str) -> Config:
    """An Alembic config for this project's migrations against `database_url`."""
    if not SCRIPT_LOCATION.is_dir():
        raise RuntimeError(
            f"migrations not found at {SCRIPT_LOCATION}; install the project with "
            "`pip install -e .` from its checkout"
        )
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # `%` is ConfigParser interpolation; a password may contain it.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database up to `revision`."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Migrate the database down to `revision`."""
    command.downgrade(alembic_config(database_url), revision)
