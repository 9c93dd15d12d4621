"""trunkline.store.sqlite on its own: the rules of its docstring, one test each.

tests/store/test_sqlite_transactions.py drives the same module through `Database`; these tests drive
`SqliteTransactions` directly and look at its locks. "Another process" is a second sqlite3 connection
to the same file, which SQLite's locking cannot tell apart from one.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from trunkline.store import sqlite as sqlite_module
from trunkline.store.list_memo import ListMemo
from trunkline.store.sqlite import SqliteTransactions, make_sqlite_engine

T = sa.table("t", sa.column("n", sa.Integer))
CHILD = sa.table("child", sa.column("parent_id", sa.Integer))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (n INTEGER)")
        setup.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        # Checked at COMMIT (https://www.sqlite.org/foreignkeys.html#fk_deferred): a way to fail COMMIT.
        setup.execute(
            "CREATE TABLE child (parent_id INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
        )
    return path


@pytest.fixture
def other(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's connection, in autocommit so that the test says BEGIN and COMMIT itself."""
    conn = sqlite3.connect(path, isolation_level=None)
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


def _run(path: Path, body: Callable[[SqliteTransactions], Awaitable[None]]) -> None:
    async def go() -> None:
        sqlite = SqliteTransactions(make_sqlite_engine(sa.make_url(f"sqlite+pysqlite:///{path}")), ListMemo())
        try:
            await body(sqlite)
        finally:
            await sqlite.close()

    asyncio.run(go())


def _rows(path: Path) -> list[int]:
    """What a fresh connection sees: only what was committed."""
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT n FROM t ORDER BY rowid")]


def _free(sqlite: SqliteTransactions) -> bool:
    return (
        not sqlite.lock.locked()
        and not sqlite.writers.locked()
        and not sqlite.connection().raw.in_transaction
    )


async def _insert(sqlite: SqliteTransactions, n: int) -> None:
    async with sqlite.transaction(write=True) as conn:
        await conn.execute(sa.insert(T).values(n=n))


def test_a_block_that_ends_is_committed(path: Path) -> None:
    async def body(sqlite: SqliteTransactions) -> None:
        await _insert(sqlite, 1)
        assert _free(sqlite)
        assert _rows(path) == [1]  # on disk, not only on this connection

    _run(path, body)


def test_a_block_that_raises_is_rolled_back(path: Path) -> None:
    async def body(sqlite: SqliteTransactions) -> None:
        with pytest.raises(RuntimeError, match="the block fails"):
            async with sqlite.transaction(write=True) as conn:
                await conn.execute(sa.insert(T).values(n=1))
                raise RuntimeError("the block fails")
        assert _free(sqlite)
        async with sqlite.transaction() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).select_from(T))).scalar_one() == 0

    _run(path, body)
    assert _rows(path) == []


def test_a_failed_commit_rolls_back_and_releases_the_locks(path: Path) -> None:
    async def body(sqlite: SqliteTransactions) -> None:
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            async with sqlite.transaction(write=True) as conn:
                await conn.execute(sa.insert(T).values(n=1))
                await conn.execute(sa.insert(CHILD).values(parent_id=42))  # no parent 42
        # SQLite leaves the transaction open after such a COMMIT; the manager rolled it back.
        assert _free(sqlite)
        await asyncio.wait_for(_insert(sqlite, 2), 1)

    _run(path, body)
    assert _rows(path) == [2]


def test_writers_of_one_process_take_turns_in_arrival_order(path: Path, other: sqlite3.Connection) -> None:
    other.execute("BEGIN IMMEDIATE")  # so that every writer has to queue
    events: list[tuple[str, int]] = []

    async def write(sqlite: SqliteTransactions, n: int) -> None:
        async with sqlite.transaction(write=True) as conn:
            events.append(("in", n))
            await conn.execute(sa.insert(T).values(n=n))
            await asyncio.sleep(0.002)  # a body that suspends: the next writer still waits its turn
            events.append(("out", n))

    async def body(sqlite: SqliteTransactions) -> None:
        writers = []
        for n in range(4):
            writers.append(asyncio.create_task(write(sqlite, n)))
            await asyncio.sleep(0.005)
        other.execute("COMMIT")
        # The last to arrive asks at once, while the others sleep between two polls, and finds SQLite's
        # write lock free: it still waits for its turn. (Awaited inline: `wait_for` would make it a task,
        # which starts only after the pollers due in this turn of the loop.)
        await write(sqlite, 4)
        await asyncio.wait_for(asyncio.gather(*writers), 5)
        assert _free(sqlite)

    _run(path, body)
    assert events == [(kind, n) for n in range(5) for kind in ("in", "out")]
    assert _rows(path) == [0, 1, 2, 3, 4]


def test_a_reader_is_not_held_up_by_writers_queued_in_its_process(
    path: Path, other: sqlite3.Connection
) -> None:
    other.execute("BEGIN IMMEDIATE")

    async def body(sqlite: SqliteTransactions) -> None:
        polling = asyncio.create_task(_insert(sqlite, 1))  # asks SQLite for the write lock, again and again
        await asyncio.sleep(0.01)
        queued = asyncio.create_task(_insert(sqlite, 2))  # waits behind it in the writers' queue
        await asyncio.sleep(0.01)
        assert sqlite.writers.locked()

        async def read() -> int:
            async with sqlite.transaction() as conn:
                return int((await conn.execute(sa.select(sa.func.count()).select_from(T))).scalar_one())

        assert await asyncio.wait_for(read(), 0.5) == 0
        assert not polling.done() and not queued.done()
        other.execute("COMMIT")
        await asyncio.wait_for(asyncio.gather(polling, queued), 5)

    _run(path, body)
    assert _rows(path) == [1, 2]


def test_a_writer_waits_for_another_process_on_the_event_loop(path: Path, other: sqlite3.Connection) -> None:
    other.execute("BEGIN IMMEDIATE")
    hold = 0.2

    async def body(sqlite: SqliteTransactions) -> None:
        gaps: list[float] = []

        async def ticker() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.001)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        beat = asyncio.create_task(ticker())
        start = time.monotonic()
        asyncio.get_running_loop().call_later(hold, other.execute, "COMMIT")
        await asyncio.wait_for(_insert(sqlite, 1), 5)
        took = time.monotonic() - start
        beat.cancel()
        assert hold <= took < hold + 0.5, took  # it waited, then took the lock once it was free
        # Waiting in SQLite's busy handler would have stopped the loop for the whole hold.
        assert max(gaps) < hold / 2, max(gaps)

    _run(path, body)
    assert _rows(path) == [1]


def test_a_writer_gives_up_after_the_busy_timeout(
    path: Path, other: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_MS", 100)
    other.execute("BEGIN IMMEDIATE")

    async def body(sqlite: SqliteTransactions) -> None:
        start = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            await _insert(sqlite, 1)
        assert time.monotonic() - start >= 0.1
        assert _free(sqlite)

    _run(path, body)


def test_cancelling_a_waiting_writer_releases_the_queue(path: Path, other: sqlite3.Connection) -> None:
    other.execute("BEGIN IMMEDIATE")

    async def body(sqlite: SqliteTransactions) -> None:
        waiting = asyncio.create_task(_insert(sqlite, 1))
        await asyncio.sleep(0.02)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert _free(sqlite)
        other.execute("COMMIT")
        await asyncio.wait_for(_insert(sqlite, 2), 1)

    _run(path, body)
    assert _rows(path) == [2]


def test_cancelling_a_block_rolls_it_back_and_releases_the_locks(path: Path) -> None:
    inside = asyncio.Event()

    async def write(sqlite: SqliteTransactions) -> None:
        async with sqlite.transaction(write=True) as conn:
            await conn.execute(sa.insert(T).values(n=1))
            inside.set()
            await asyncio.sleep(10)

    async def body(sqlite: SqliteTransactions) -> None:
        task = asyncio.create_task(write(sqlite))
        await asyncio.wait_for(inside.wait(), 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert _free(sqlite)
        await asyncio.wait_for(_insert(sqlite, 2), 1)

    _run(path, body)
    assert _rows(path) == [2]
