"""Row locks for read-then-write, and the one order every writer takes them in.

A write that reads a row and then writes what it read (PATCH merges into the stored document, DELETE
answers with the deleted record) must hold the row from its read to its commit, or a concurrent
writer's change is lost: PostgreSQL runs writes at READ COMMITTED, where a plain SELECT locks nothing.
The locks are PostgreSQL's row-level modes
(https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-ROWS):

- `DELETE` (FOR UPDATE): the row is about to go; every other lock waits.
- `UPDATE` (FOR NO KEY UPDATE): the row changes but keeps its id, so references to it (KEY SHARE,
  which foreign-key checks take too) are not held up.
- `REFERENCE` (FOR KEY SHARE): the row must stay while we store a reference to it; it may change.

A lock taken on a row another transaction deleted meanwhile finds nothing, so the loser of a race
answers 404, never a write to a row that is gone.

Order, to keep writers free of deadlocks: a child before its parent. IP and FQDN writes lock their own
row, then their connection; a connection DELETE locks its IPs and FQDNs, then itself (its foreign keys
cascade to them). A connection write locks the connection, then takes REFERENCE on its outbound voice
profile; a profile DELETE locks only the profile. Several rows of one table are locked in id order
(an account reset, resources/state.py, locks IPs, FQDNs, connections, then profiles, each by id).

SQLite needs none of this: a writer holds the database's write lock from BEGIN IMMEDIATE to COMMIT
(store/sqlite.py), and SQLAlchemy renders no FOR clause for SQLite.
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

import sqlalchemy as sa

from trunkline.store.db import Conn

S = TypeVar("S", bound=sa.Select[Any])


class Lock(enum.Enum):
    DELETE = "delete"
    UPDATE = "update"
    REFERENCE = "reference"


def locking(stmt: S, lock: Lock | None) -> S:
    """`stmt` with the FOR clause of `lock` (none when `lock` is None)."""
    if lock is None:
        return stmt
    if lock is Lock.DELETE:
        return stmt.with_for_update()
    if lock is Lock.UPDATE:
        return stmt.with_for_update(key_share=True)
    return stmt.with_for_update(read=True, key_share=True)


async def delete_row(conn: Conn, table: sa.Table, id: str) -> bool:
    """Delete one row by id; False when it was gone already (another request deleted it first)."""
    result = await conn.execute(sa.delete(table).where(table.c.id == id))
    return bool(result.rowcount)
