"""SQLite transactions of one process, on one shared sqlite3 connection.

The rules:

- **One transaction at a time per process.** Statements run inline on the event loop (microseconds each,
  far less than a thread hop), so a transaction body never suspends on SQLite and the process's lock is
  uncontended in practice; it guarantees that a waiting writer never blocks the event loop on a lock held
  by a coroutine that cannot run. Because of it one connection serves every transaction of the process: no
  pool checkout and no SQLAlchemy transaction per request.
- **Writers queue in arrival order.** A writer first takes the writers' lock, an `asyncio.Lock`, whose
  waiters proceed first come, first served
  (https://docs.python.org/3/library/asyncio-sync.html#asyncio.Lock.acquire); only the writer at its head
  asks SQLite for the write lock. Readers never wait for that queue.
- **BEGIN IMMEDIATE for writers, BEGIN for readers** (https://www.sqlite.org/lang_transaction.html). A
  writer takes the database's write lock up front: a deferred transaction that reads and then writes fails
  at once with SQLITE_BUSY when another connection wrote in between. In WAL mode readers never wait for a
  writer (https://www.sqlite.org/wal.html).
- **Another process's write lock is waited for on the event loop.** SQLite's busy handler sleeps with the
  calling thread blocked (https://www.sqlite.org/c3ref/busy_timeout.html), which here is the event loop,
  with the process's lock held. So a writer tries BEGIN IMMEDIATE with a busy timeout of 0, and while
  another process holds the write lock, releases the process's lock and sleeps on the loop for a short,
  constant interval before the next try: the process's reads go on meanwhile. Once `BUSY_TIMEOUT_MS` has
  passed, a last try waits in the busy handler and then fails with "database is locked".
- **COMMIT when the block ends, ROLLBACK when it raised, was cancelled, or COMMIT failed** (a deferred
  foreign key fails COMMIT and leaves the transaction open, https://www.sqlite.org/foreignkeys.html). The
  locks are released in every case.

SQLAlchemy only compiles and executes the statements. BEGIN, COMMIT and ROLLBACK go straight to sqlite3,
whose own implicit transactions are switched off (`isolation_level = None`,
https://docs.python.org/3/library/sqlite3.html#sqlite3-transaction-control-isolation-level).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Executable

from trunkline.store.integrity import translate_integrity_error
from trunkline.store.list_memo import ListMemo

# How long a writer waits for a write lock another process holds before failing with "database is locked".
BUSY_TIMEOUT_MS = 10_000
# Between two tries for another process's write lock. Short: a longer wait would let the other process,
# retrying at once, take the lock again and again.
POLL_SECONDS = 0.0005


def make_sqlite_engine(url: sa.URL) -> Engine:
    """A sqlite3 engine with WAL, foreign keys, a busy timeout and explicit BEGIN modes."""
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        # Let us emit BEGIN ourselves: pysqlite's implicit transactions cannot say IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # SQLAlchemy transactions (Alembic's) write: BEGIN IMMEDIATE, as above. A connection of
        # `SqliteTransactions` is marked `trunkline_raw`: there the transaction says BEGIN itself.
        if not conn.get_execution_options().get("trunkline_raw"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class SqliteConn:
    """The process's connection: executes Core statements inline; a constraint violation comes out as
    the Telnyx error of `trunkline.store.integrity`."""

    dialect = "sqlite"

    def __init__(self, conn: sa.Connection, memo: ListMemo) -> None:
        self.memo = memo
        raw = conn.connection.driver_connection
        if not isinstance(raw, sqlite3.Connection):
            raise TypeError(f"expected a sqlite3 connection, got {type(raw).__name__}")
        self._c = conn
        self.raw = raw

    @property
    def usable(self) -> bool:
        return not self._c.closed and not self._c.invalidated

    async def execute(
        self, stmt: Executable, params: Mapping[str, Any] | None = None
    ) -> CursorResult[*tuple[Any, ...]]:
        try:
            return self._c.execute(stmt, params)
        except IntegrityError as exc:
            raise translate_integrity_error(exc, stmt) from exc

    def first_value(self, stmt: sa.Select[tuple[Any]], params: Mapping[str, Any]) -> Any:
        """The first column of the first row of a one-column SELECT built once, or None; through sqlite3
        directly, skipping SQLAlchemy's execution and result machinery (measured: 27 µs → 2 µs). The
        column's value is sqlite3's own (no result processing): for text and integer columns only."""
        row = self.first_row(stmt, params)
        return None if row is None else row[0]

    def first_row(self, stmt: sa.Select[Any], params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row of a SELECT built once, as a tuple in the order of its columns, or None; as
        `first_value`, straight on sqlite3: for text and integer columns only."""
        compiled = _compiled.get(stmt)
        if compiled is None:
            c = stmt.compile(dialect=self._c.dialect)
            compiled = _compiled[stmt] = (c.string, tuple(c.positiontup or ()))
        sql, names = compiled
        row: tuple[Any, ...] | None = self.raw.execute(sql, tuple(params[name] for name in names)).fetchone()
        return row

    def close(self) -> None:
        self._c.close()


# SQL text and parameter order of the statements `SqliteConn.first_row` ran; module-level statements
# only, so it stays as small as the code that builds them.
_compiled: dict[sa.Select[Any], tuple[str, tuple[str, ...]]] = {}


def begin_immediate(raw: sqlite3.Connection, *, wait: bool) -> bool:
    """BEGIN IMMEDIATE; False at once when another process holds the write lock, unless `wait`."""
    if wait:
        raw.execute("BEGIN IMMEDIATE")  # past the deadline: one last wait, up to the busy timeout
        return True
    raw.execute("PRAGMA busy_timeout=0")
    try:
        raw.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
            raise
        return False
    finally:
        raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return True


class SqliteTransactions:
    """Every SQLite transaction of the process, on one connection of `engine` (see the module docstring)."""

    def __init__(self, engine: Engine, memo: ListMemo) -> None:
        self.engine = engine
        self.memo = memo
        self.lock = asyncio.Lock()  # one transaction at a time
        self.writers = asyncio.Lock()  # writers, in arrival order
        self._conn: SqliteConn | None = None

    def transaction(self, *, write: bool = False) -> SqliteTransaction:
        """One transaction: committed when the block ends, rolled back when it raises."""
        return SqliteTransaction(self, write)

    def connection(self) -> SqliteConn:
        """The process's connection, opened on first use and again after an invalidation."""
        conn = self._conn
        if conn is not None and conn.usable:
            return conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        # The SQLAlchemy-level transaction this connection autobegins is never committed: it only spares
        # SQLAlchemy a begin per statement. `trunkline_raw` keeps the `begin` listener from emitting BEGIN.
        self._conn = SqliteConn(self.engine.connect().execution_options(trunkline_raw=True), self.memo)
        return self._conn

    async def close(self) -> None:
        """Close the connection once no transaction holds it, and the engine's pool."""
        if self._conn is not None:
            async with self.lock:
                self._conn.close()
                self._conn = None
        self.engine.dispose()


class SqliteTransaction:
    """`async with` one transaction of `SqliteTransactions`; yields its `SqliteConn`."""

    __slots__ = ("_raw", "_sqlite", "_write")

    def __init__(self, sqlite: SqliteTransactions, write: bool) -> None:
        self._sqlite = sqlite
        self._write = write

    async def __aenter__(self) -> SqliteConn:
        sqlite = self._sqlite
        if self._write:
            await sqlite.writers.acquire()
        lock = sqlite.lock
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        try:
            while True:
                await lock.acquire()
                try:
                    conn = sqlite.connection()
                    self._raw = conn.raw
                    if not self._write:
                        self._raw.execute("BEGIN")
                        return conn
                    if begin_immediate(self._raw, wait=time.monotonic() >= deadline):
                        return conn
                except BaseException:
                    lock.release()
                    raise
                lock.release()  # another process holds the write lock: let this process's readers in
                await asyncio.sleep(POLL_SECONDS)
        except BaseException:
            if self._write:
                sqlite.writers.release()
            raise

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        raw = self._raw
        try:
            if exc_type is None:
                raw.execute("COMMIT")
        finally:
            try:
                if raw.in_transaction:  # the block raised, or COMMIT failed
                    raw.execute("ROLLBACK")
            finally:
                self._sqlite.lock.release()
                if self._write:
                    self._sqlite.writers.release()
