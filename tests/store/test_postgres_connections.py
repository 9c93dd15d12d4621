"""PostgreSQL: pooled connections are not pinged; one that died while idle is replaced transparently."""

from __future__ import annotations

import asyncio

import asyncpg
import sqlalchemy as sa

from tests.services import PG_HOST, PG_PORT, PG_USER, postgres_database
from trunkline.errors import TelnyxError
from trunkline.store.db import Database

TABLE = sa.table("t", sa.column("n", sa.Integer))


def test_connections_killed_while_idle_are_replaced_and_writes_stay_atomic() -> None:
    with postgres_database() as url:
        name = url.rsplit("/", 1)[1]

        async def go() -> None:
            admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=name)
            await admin.execute("CREATE TABLE t (n INTEGER)")
            db = Database(url)
            try:
                async with db.transaction(write=True) as conn:
                    await conn.execute(sa.insert(TABLE).values(n=1))
                # Every pooled connection dies, as in a database restart.
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()",
                    name,
                )
                async with db.transaction() as conn:
                    assert (
                        await conn.execute(sa.select(sa.func.count()).select_from(TABLE))
                    ).scalar_one() == 1
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()",
                    name,
                )
                async with db.transaction(write=True) as conn:
                    await conn.execute(sa.insert(TABLE).values(n=2))
                try:
                    async with db.transaction(write=True) as conn:
                        await conn.execute(sa.insert(TABLE).values(n=3))
                        raise TelnyxError("the block fails: its insert is rolled back")
                except TelnyxError:
                    pass
                assert await admin.fetchval("SELECT array_agg(n ORDER BY n) FROM t") == [1, 2]
            finally:
                await db.dispose()
                await admin.close()

        asyncio.run(go())
