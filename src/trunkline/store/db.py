"""The database: one async interface over two engines.

SQLite runs through the plain sqlite3 driver, called inline: a statement costs microseconds, far less
than a thread hop (measured 6 µs direct vs 340 µs through SQLAlchemy async over aiosqlite); its
transactions are `trunkline.store.sqlite`'s. PostgreSQL runs through asyncpg, with this module's pool.
The same Core statements serve both; store functions `await conn.execute(...)`, and a constraint
violation comes out of it as a Telnyx error (`trunkline.store.integrity`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol, TypeVarTuple, overload

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable
from sqlalchemy.sql.selectable import TypedReturnsRows

from trunkline.store.integrity import translate_integrity_error
from trunkline.store.list_memo import ListMemo
from trunkline.store.sqlite import SqliteConn, SqliteTransactions, make_sqlite_engine

__all__ = [
    "Conn",
    "Database",
    "DatabaseUnavailable",
    "first_row",
    "first_value",
    "insert_on_conflict",
    "make_sqlite_engine",
    "normalize_url",
    "sync_url",
    "translate_integrity_error",
]

_Ts = TypeVarTuple("_Ts")


class DatabaseUnavailable(Exception):
    """The database could not be reached or opened."""


class Conn(Protocol):
    """A connection inside one transaction."""

    dialect: str
    # What lists learned of this database's rows (store/list_memo.py), one per Database.
    memo: ListMemo

    # As SQLAlchemy's own `Connection.execute`: a typed SELECT gives typed rows, anything else rows of Any.
    @overload
    async def execute(
        self, stmt: TypedReturnsRows[*_Ts], params: Mapping[str, Any] | None = None
    ) -> CursorResult[*_Ts]: ...
    @overload
    async def execute(
        self, stmt: Executable, params: Mapping[str, Any] | None = None
    ) -> CursorResult[*tuple[Any, ...]]: ...


def normalize_url(url: str) -> sa.URL:
    """Pick our drivers: plain sqlite3 for SQLite, asyncpg for PostgreSQL."""
    u = sa.make_url(url)
    if u.get_backend_name() == "sqlite":
        return u.set(drivername="sqlite+pysqlite")
    if u.get_backend_name() == "postgresql":
        return u.set(drivername="postgresql+asyncpg")
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")


def sync_url(url: str) -> sa.URL:
    """The URL for synchronous tools (Alembic, CLI): sqlite3 as it is; PostgreSQL through asyncpg too."""
    return normalize_url(url)


class _PgConn:
    """A pooled connection, checked out without a ping: a connection that died while idle in the pool
    (a database restart) fails its first statement, which then runs once more on a fresh connection.
    Nothing is lost: the first statement of a transaction has nothing before it to replay."""

    dialect = "postgresql"

    def __init__(self, engine: AsyncEngine, conn: AsyncConnection, write: bool, memo: ListMemo) -> None:
        self.memo = memo
        self._engine = engine
        self._c = conn
        self._write = write
        self._first = True

    async def execute(
        self, stmt: Executable, params: Mapping[str, Any] | None = None
    ) -> CursorResult[*tuple[Any, ...]]:
        try:
            result = await self._c.execute(stmt, params)
        except IntegrityError as exc:
            raise translate_integrity_error(exc, stmt) from exc
        except DBAPIError as exc:
            if not (self._first and exc.connection_invalidated):
                raise
            # SQLAlchemy has invalidated the pool's older connections too; this one is fresh.
            await self._c.close()
            self._c = await _pg_connect(self._engine, self._write)
            self._first = False
            return await self.execute(stmt, params)
        self._first = False
        return result


async def _pg_connect(engine: AsyncEngine, write: bool) -> AsyncConnection:
    conn = await engine.connect()
    if write:
        # Pooled connections idle in autocommit; a write is a READ COMMITTED transaction, begun by
        # its first statement and committed or rolled back by `Database.transaction`.
        await conn.execution_options(isolation_level="READ COMMITTED")
    return conn


def insert_on_conflict(conn: Conn, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT in the connection's dialect, whose ON CONFLICT clauses (`on_conflict_do_nothing`,
    `on_conflict_do_update`) both engines run atomically
    (https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT, https://www.sqlite.org/lang_upsert.html)."""
    return postgresql.insert(table) if conn.dialect == "postgresql" else sqlite.insert(table)


async def first_value(conn: Conn, stmt: sa.Select[tuple[Any]], params: Mapping[str, Any]) -> Any:
    """The first column of the first row of `stmt`, a one-column SELECT of a text or integer column
    built once at import (a hot read: on SQLite it runs on sqlite3 directly), or None."""
    if isinstance(conn, SqliteConn):
        return conn.first_value(stmt, params)
    return (await conn.execute(stmt, params)).scalar()


async def first_row(conn: Conn, stmt: sa.Select[Any], params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The first row of `stmt` as a tuple in the order of its columns, or None: `first_value` for a
    SELECT of several text and integer columns."""
    if isinstance(conn, SqliteConn):
        return conn.first_row(stmt, params)
    row = (await conn.execute(stmt, params)).first()
    return None if row is None else tuple(row)


class Database:
    """Owns the engine; hands out one connection per transaction."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.dialect = self.url.get_backend_name()
        self._lite: SqliteTransactions | None = None
        self._async: AsyncEngine | None = None
        self._memo = ListMemo()
        if self.dialect == "sqlite":
            self._lite = SqliteTransactions(make_sqlite_engine(self.url), self._memo)
        else:
            # Connections idle in autocommit (see `_pg_connect`), and are not pinged at checkout: a
            # dead one is replaced when its first statement fails (see `_PgConn`).
            self._async = create_async_engine(
                self.url, pool_size=10, max_overflow=10, isolation_level="AUTOCOMMIT"
            )

    def transaction(self, *, write: bool = False) -> contextlib.AbstractAsyncContextManager[Conn]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        if self._lite is not None:
            return self._lite.transaction(write=write)
        return self._pg_transaction(write)

    @contextlib.asynccontextmanager
    async def _pg_transaction(self, write: bool) -> AsyncIterator[Conn]:
        # Reads run in autocommit. Under READ COMMITTED each statement takes its own snapshot anyway,
        # so BEGIN and COMMIT would add two round trips and change nothing.
        assert self._async is not None
        conn = _PgConn(self._async, await _pg_connect(self._async, write), write, self._memo)
        try:
            yield conn
            if write:
                await conn._c.commit()
        except BaseException:
            if write and not conn._c.invalidated:
                with contextlib.suppress(DBAPIError):  # the error that brought us here is the one to see
                    await conn._c.rollback()
            raise
        finally:
            await conn._c.close()

    def _sqlite(self) -> SqliteConn:
        """The process's one SQLite connection (see `trunkline.store.sqlite`)."""
        assert self._lite is not None
        return self._lite.connection()

    async def ping(self) -> None:
        """Raise DatabaseUnavailable unless a trivial query answers."""
        try:
            async with self.transaction() as conn:
                await conn.execute(sa.select(sa.literal(1)))
        except (DBAPIError, OSError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc

    async def dispose(self) -> None:
        if self._lite is not None:
            await self._lite.close()
        if self._async is not None:
            await self._async.dispose()
