"""Apply Alembic migrations programmatically (`trunkline db upgrade`, `serve` on start, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def redact(database_url: str) -> str:
    """The URL with any password hidden, fit for logs and messages."""
    from sqlalchemy import make_url

    return make_url(database_url).render_as_string(hide_password=True)
