"""Where the migrations are, and which revision is the newest (the schema at head).

`resolvemeq db upgrade` migrates with them (bot.platform.migrations); `backup verify`
checks a restored database is at head.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

SCRIPT_LOCATION = Path(__file__).resolve().parents[2] / "alembic"


def script_config() -> Config:
    """An Alembic config that knows only where the migrations are."""
    if not SCRIPT_LOCATION.is_dir():
        raise RuntimeError(
            f"migrations not found at {SCRIPT_LOCATION}; install the project with "
            "`pip install -e .` from its checkout"
        )
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    return config


def head_revisions() -> set[str]:
    """The newest revision(s) of the migrations (one, unless branches await a merge)."""
    return set(ScriptDirectory.from_config(script_config()).get_heads())
