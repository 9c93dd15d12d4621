"""Alembic environment: runs trunkline's migrations on SQLite (sqlite3) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

from trunkline.store.db import make_sqlite_engine, normalize_url
from trunkline.store.schema import metadata

config = context.config
url = normalize_url(config.get_main_option("sqlalchemy.url") or "")


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        # Kamailio reads some of these tables: never wait for ever on its locks (reference §9).
        await connection.exec_driver_sql("SET lock_timeout = '10s'")
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
