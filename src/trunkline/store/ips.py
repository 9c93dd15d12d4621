"""Queries for IP records."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from trunkline.store import ids
from trunkline.store.db import Conn, first_row
from trunkline.store.locks import Lock, delete_row, locking
from trunkline.store.paging import Page, PageResult, Remember, account_total, fetch_page, sort_order
from trunkline.store.schema import ip


async def insert(conn: Conn, **values: Any) -> None:
    await conn.execute(sa.insert(ip).values(**values))


async def get(conn: Conn, *, user_id: str, id: str, lock: Lock | None = None) -> RowMapping | None:
    if not ids.is_uuid(id):
        return None
    stmt = locking(sa.select(ip).where(ip.c.id == id, ip.c.user_id == user_id), lock)
    return (await conn.execute(stmt)).mappings().first()


# GET by id, a statement built once (as store/connections.py's `_DOCUMENT_OF_KIND`): the record's
# columns, read through `first_row` (on SQLite, straight on sqlite3).
_RECORD_COLUMNS = ("id", "connection_id", "ip_address", "port", "created_at", "updated_at")
_RECORD = sa.select(*(ip.c[name] for name in _RECORD_COLUMNS)).where(
    ip.c.id == sa.bindparam("id"), ip.c.user_id == sa.bindparam("user_id")
)


async def get_record(conn: Conn, *, user_id: str, id: str) -> dict[str, Any] | None:
    """The record's columns of an IP of this account, or None: GET by id."""
    if not ids.is_uuid(id):
        return None
    row = await first_row(conn, _RECORD, {"id": id, "user_id": user_id})
    return None if row is None else dict(zip(_RECORD_COLUMNS, row, strict=True))


async def find_address(conn: Conn, *, ip_address: str, port: int) -> RowMapping | None:
    """The IP record for an address and port, in any account (they are unique across the server)."""
    stmt = sa.select(ip).where(ip.c.ip_address == ip_address, ip.c.port == port)
    return (await conn.execute(stmt)).mappings().first()


async def list_(
    conn: Conn,
    *,
    user_id: str,
    page: Page,
    connection_id: str | None = None,
    ip_address: str | None = None,
    port: int | None = None,
) -> PageResult:
    # Each filter has an index after the account's, in the list's order (migration 0009).
    where = [ip.c.user_id == user_id]
    if connection_id is not None:
        where.append(ip.c.connection_id == connection_id)
    if ip_address is not None:
        where.append(ip.c.ip_address == ip_address)
    if port is not None:
        where.append(ip.c.port == port)
    count = account_total(ip, user_id) if len(where) == 1 else None
    return await fetch_page(
        conn,
        ip,
        where=where,
        order_by=sort_order(ip, "created_at"),
        page=page,
        count=count,
        remember=Remember(user_id, (connection_id, ip_address, port)),
    )


async def lock_on_connection(conn: Conn, *, connection_id: str) -> None:
    """Lock a connection's IPs before the connection itself, in id order (store/locks.py)."""
    stmt = sa.select(ip.c.id).where(ip.c.connection_id == connection_id).order_by(ip.c.id)
    await conn.execute(locking(stmt, Lock.DELETE))


async def ids_on_connection(conn: Conn, *, connection_id: str) -> set[str]:
    stmt = sa.select(ip.c.id).where(ip.c.connection_id == connection_id)
    return set((await conn.execute(stmt)).scalars().all())


async def update(conn: Conn, *, id: str, **values: Any) -> None:
    await conn.execute(sa.update(ip).where(ip.c.id == id).values(**values))


async def delete(conn: Conn, *, id: str) -> bool:
    return await delete_row(conn, ip, id)


async def addresses_on_connection(conn: Conn, *, connection_id: str) -> dict[str, str]:
    """Address → IP id for the IPs of one connection."""
    stmt = sa.select(ip.c.ip_address, ip.c.id).where(ip.c.connection_id == connection_id)
    return {row[0]: row[1] for row in (await conn.execute(stmt)).all()}
