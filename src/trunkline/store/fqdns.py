"""Queries for FQDN records."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from trunkline.store import ids
from trunkline.store.db import Conn, first_row
from trunkline.store.locks import Lock, delete_row, locking
from trunkline.store.paging import Page, PageResult, Remember, account_total, fetch_page, sort_order
from trunkline.store.schema import fqdn


async def insert(conn: Conn, **values: Any) -> None:
    await conn.execute(sa.insert(fqdn).values(**values))


async def get(conn: Conn, *, user_id: str, id: str, lock: Lock | None = None) -> RowMapping | None:
    if not ids.is_numeric_id(id):
        return None
    stmt = locking(sa.select(fqdn).where(fqdn.c.id == id, fqdn.c.user_id == user_id), lock)
    return (await conn.execute(stmt)).mappings().first()


# GET by id, a statement built once (as store/connections.py's `_DOCUMENT_OF_KIND`): the record's
# columns, read through `first_row` (on SQLite, straight on sqlite3).
_RECORD_COLUMNS = ("id", "connection_id", "fqdn", "dns_record_type", "port", "created_at", "updated_at")
_RECORD = sa.select(*(fqdn.c[name] for name in _RECORD_COLUMNS)).where(
    fqdn.c.id == sa.bindparam("id"), fqdn.c.user_id == sa.bindparam("user_id")
)


async def get_record(conn: Conn, *, user_id: str, id: str) -> dict[str, Any] | None:
    """The record's columns of an FQDN of this account, or None: GET by id."""
    if not ids.is_numeric_id(id):
        return None
    row = await first_row(conn, _RECORD, {"id": id, "user_id": user_id})
    return None if row is None else dict(zip(_RECORD_COLUMNS, row, strict=True))


async def find_address(conn: Conn, *, name: str, port: int | None) -> RowMapping | None:
    """The FQDN record for a host name and port in any account (unique across the server: trunkline's
    choice, so the edge maps a source to one connection; tests/conformance/test_fqdns.py pins it).

    Host names compare case-insensitively and with or without the root's trailing dot (RFC 4343), and
    an SRV record's null port is a key of its own.
    """
    key = name.lower().removesuffix(".")
    same_port = fqdn.c.port.is_(None) if port is None else fqdn.c.port == port
    stmt = sa.select(fqdn).where(sa.func.lower(fqdn.c.fqdn).in_([key, key + "."]), same_port)
    return (await conn.execute(stmt)).mappings().first()


async def lock_address(conn: Conn, *, name: str, port: int | None) -> None:
    """Hold off other writers of this host name and port until our transaction ends.

    The schema has no unique index on (fqdn, port), so on PostgreSQL two transactions could both pass
    `find_address` and insert the same pair; an advisory lock taken before the check serializes them.
    SQLite writers already hold the database's write lock (BEGIN IMMEDIATE).
    """
    if conn.dialect != "postgresql":
        return
    digest = hashlib.blake2b(f"fqdn {name.lower().removesuffix('.')} {port}".encode(), digest_size=8)
    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(int.from_bytes(digest.digest(), signed=True))))


async def lock_on_connection(conn: Conn, *, connection_id: str) -> None:
    """Lock a connection's FQDNs before the connection itself, in id order (store/locks.py)."""
    stmt = sa.select(fqdn.c.id).where(fqdn.c.connection_id == connection_id).order_by(fqdn.c.id)
    await conn.execute(locking(stmt, Lock.DELETE))


async def ids_on_connection(conn: Conn, *, connection_id: str) -> set[str]:
    stmt = sa.select(fqdn.c.id).where(fqdn.c.connection_id == connection_id)
    return set((await conn.execute(stmt)).scalars().all())


async def list_(
    conn: Conn,
    *,
    user_id: str,
    page: Page,
    connection_id: str | None = None,
    fqdn_equals: str | None = None,
    port: int | None = None,
    dns_record_type: str | None = None,
) -> PageResult:
    # Each filter has an index after the account's, in the list's order (migration 0009).
    where = [fqdn.c.user_id == user_id]
    if connection_id is not None:
        where.append(fqdn.c.connection_id == connection_id)
    if fqdn_equals is not None:
        where.append(fqdn.c.fqdn == fqdn_equals)
    if port is not None:
        where.append(fqdn.c.port == port)
    if dns_record_type is not None:
        where.append(fqdn.c.dns_record_type == dns_record_type)
    count = account_total(fqdn, user_id) if len(where) == 1 else None
    return await fetch_page(
        conn,
        fqdn,
        where=where,
        order_by=sort_order(fqdn, "created_at"),
        page=page,
        count=count,
        remember=Remember(user_id, (connection_id, fqdn_equals, port, dns_record_type)),
    )


async def update(conn: Conn, *, id: str, **values: Any) -> None:
    await conn.execute(sa.update(fqdn).where(fqdn.c.id == id).values(**values))


async def delete(conn: Conn, *, id: str) -> bool:
    return await delete_row(conn, fqdn, id)
