"""For commands that only read: check that the database is at the newest migration, never apply one.

A read must not change the schema of a database someone else runs (a `keys list` with a newer
trunkline would migrate it under an older server), nor create an SQLite file where there was none
(a typo in a path would otherwise list an empty, freshly made database). Write commands and `serve`
migrate as before (store/migrate.py).
"""

from __future__ import annotations

import asyncio
import sqlite3
import urllib.parse
from pathlib import Path

import sqlalchemy as sa
import typer
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine

from trunkline.store import migrate
from trunkline.store.db import normalize_url


class SchemaNotCurrent(Exception):
    """The database is missing, unmigrated, or at another revision than this trunkline's newest."""


def _sqlite_revisions(path: Path) -> set[str]:
    # mode=ro: SQLite opens an existing file read-only and never creates one (sqlite.org/uri.html).
    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
    engine = sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    try:
        with engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


async def _postgres_revisions(url: sa.URL) -> set[str]:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            heads = await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_heads())
            return set(heads)
    finally:
        await engine.dispose()


def current_revisions(database_url: str) -> set[str]:
    """The revisions the database's alembic_version table holds; empty when it has none."""
    url = normalize_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        if not url.database or url.database == ":memory:" or not path.is_file():
            raise SchemaNotCurrent(f"there is no database file at {path}")
        return _sqlite_revisions(path)
    return asyncio.run(_postgres_revisions(url))


def check_current(database_url: str) -> None:
    """Raise SchemaNotCurrent unless the database is at this trunkline's newest migration."""
    newest = set(ScriptDirectory.from_config(migrate.alembic_config(database_url)).get_heads())
    try:
        found = current_revisions(database_url)
    except (sa.exc.DBAPIError, sqlite3.Error, OSError) as exc:
        raise SchemaNotCurrent(f"the database could not be opened: {exc}") from exc
    if not found:
        raise SchemaNotCurrent("it has no trunkline schema yet")
    if found != newest:
        raise SchemaNotCurrent(
            f"its schema is at revision {', '.join(sorted(found))}, this trunkline's is at"
            f" {', '.join(sorted(newest))}"
        )


def require_current(database_url: str) -> None:
    """check_current for a command: on failure say what to run, and exit with status 1."""
    try:
        check_current(database_url)
    except SchemaNotCurrent as exc:
        where = migrate.redact(database_url)
        typer.echo(
            f"error: the database at {where} is not ready: {exc}. Create or migrate it with"
            f" `trunkline db upgrade --database-url {where}` (or start `trunkline serve`, which"
            " migrates on start); this command only reads and changes nothing.",
            err=True,
        )
        raise typer.Exit(1) from None
