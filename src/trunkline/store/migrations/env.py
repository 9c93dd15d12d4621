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


# Objects that exist for Kamailio, not in our metadata (migrations 0002, 0011): autogenerate must
# neither drop them nor report them as drift.
KAMAILIO_OBJECTS = frozenset(
    {"version", "location", "sip_registration_outcome", "kam_subscriber", "kam_address", "kam_connection"}
)


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


# The advisory lock key of migrations ("trunkline" as a number; any constant no other lock uses).
MIGRATION_LOCK = 0x7472756E6B6C696E


async def _run_async() -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    # One migrator at a time: several instances starting together on a fresh database would otherwise
    # all create the same tables, and all but one fail. A session-level advisory lock, held on a
    # connection of its own for the whole run, since a migration may commit midway (0005); the later
    # migrators then find the database at head and do nothing
    # (https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS). Tried, not waited
    # for: a session waiting inside a statement holds a snapshot, which CREATE INDEX CONCURRENTLY in
    # the lock holder's migration waits out, and PostgreSQL would end one of the two as a deadlock.
    async with engine.connect() as holder:
        holder = await holder.execution_options(isolation_level="AUTOCOMMIT")
        while not (await holder.exec_driver_sql(f"SELECT pg_try_advisory_lock({MIGRATION_LOCK})")).scalar():
            await asyncio.sleep(0.2)
        async with engine.connect() as connection:
            # Kamailio reads some of these tables. DDL needs an ACCESS EXCLUSIVE lock and, while it
            # waits for one, every reader queues behind it: give up instead of stalling SIP
            # (https://www.postgresql.org/docs/current/explicit-locking.html).
            await connection.exec_driver_sql("SET lock_timeout = '10s'")
            # A session setting: it outlives this commit, after which Alembic begins its own
            # transaction, the one an autocommit_block (migration 0005: CREATE INDEX CONCURRENTLY)
            # commits and resumes.
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
