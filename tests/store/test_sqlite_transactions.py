"""SQLite transactions: one connection per process, BEGIN/COMMIT on sqlite3, writers that wait politely."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from trunkline.errors import TelnyxError
from trunkline.store.db import Database

TABLE = sa.table("t", sa.column("n", sa.Integer))


def _database(tmp_path: Path) -> tuple[Database, Path]:
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (n INTEGER)")
    return Database(f"sqlite:///{path}"), path


def _count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])


def test_commit_rollback_and_the_connection_is_reused(tmp_path: Path) -> None:
    db, path = _database(tmp_path)

    async def go() -> None:
        async with db.transaction(write=True) as conn:
            await conn.execute(sa.insert(TABLE).values(n=1))
        first = db._sqlite()
        with pytest.raises(TelnyxError):
            async with db.transaction(write=True) as conn:
                await conn.execute(sa.insert(TABLE).values(n=2))
                raise TelnyxError("the block fails: nothing of it stays")
        async with db.transaction() as conn:
            rows = (
                await conn.execute(sa.select(TABLE.c.n).where(TABLE.c.n == sa.bindparam("n")), {"n": 1})
            ).all()
        assert rows == [(1,)]
        assert db._sqlite() is first  # one connection for every transaction of the process
        assert not first.raw.in_transaction
        await db.dispose()

    asyncio.run(go())
    assert _count(path) == 1


def test_a_writer_waits_for_another_process_without_blocking_the_event_loop(tmp_path: Path) -> None:
    db, path = _database(tmp_path)
    other = sqlite3.connect(path, isolation_level=None)  # another process's connection, in effect
    other.execute("BEGIN IMMEDIATE")

    async def go() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        async def write() -> None:
            async with db.transaction(write=True) as conn:
                await conn.execute(sa.insert(TABLE).values(n=1))

        beat = asyncio.create_task(ticker())
        writer = asyncio.create_task(write())
        await asyncio.sleep(0.3)
        assert not writer.done()
        # The loop ran on while the writer waited (SQLite's own busy handler would have frozen it)
        assert ticks >= 20, ticks
        # ... and so did a reader of the same process.
        async with db.transaction() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).select_from(TABLE))).scalar_one() == 0
        other.execute("COMMIT")
        await asyncio.wait_for(writer, 5)
        beat.cancel()
        await db.dispose()

    asyncio.run(go())
    other.close()
    assert _count(path) == 1
