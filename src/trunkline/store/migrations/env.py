"""Alembic environment: runs trunkline's migrations on SQLite (sqlite3) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

from trunkline.store.db import make_sqlite_engine, normalize_url
from trunkline.store.schema import SEARCH_OBJECTS, metadata

config = context.config
url = normalize_url(config.get_main_option("sqlalchemy.url") or "")


# Objects that exist for Kamailio, not in our metadata (migration 0002): autogenerate must neither
# drop them nor report them as drift.
KAMAILIO_OBJECTS = frozenset({"version", "location", "kam_subscriber", "kam_address", "kam_connection"})


def _include_name(name: str | None, type_: str, _parent: object) -> bool:
    if type_ in ("table", "index") and name in SEARCH_OBJECTS:
        return False  # engine-specific search objects (store/schema.py, migration 0005)
    return not (type_ == "table" and name in KAMAILIO_OBJECTS)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        include_name=_include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        # Kamailio reads some of these tables. DDL needs an ACCESS EXCLUSIVE lock and, while it waits
        # for one, every reader queues behind it: give up instead of stalling SIP
        # (https://www.postgresql.org/docs/current/explicit-locking.html).
        await connection.exec_driver_sql("SET lock_timeout = '10s'")
        # A session setting: it outlives this commit, after which Alembic begins its own transaction,
        # the one an autocommit_block (migration 0005: CREATE INDEX CONCURRENTLY) commits and resumes.
        await connection.commit()
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if url.get_backend_name() == "sqlite":
    engine = make_sqlite_engine(url)
    with engine.connect() as connection:
        _run(connection)
        connection.commit()
    engine.dispose()
else:
    asyncio.run(_run_async())
