"""Queries for connections of all three kinds, and their SIP digest credentials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from trunkline.store import ids, search
from trunkline.store.db import Conn, first_value
from trunkline.store.locks import Lock, delete_row, locking
from trunkline.store.paging import Page, PageResult, Remember, fetch_page, sort_order
from trunkline.store.schema import (
    connection,
    connection_count,
    fqdn,
    profile_connection_count,
    sip_credential,
)

SORTABLE = {"created_at", "connection_name", "active"}


async def insert(conn: Conn, **values: Any) -> None:
    await conn.execute(sa.insert(connection).values(**values))


# The hot path (GET by id) as statements built once: SQLAlchemy memoizes their cache key, so a request
# neither rebuilds the expression nor walks it to find the compiled SQL (-30% CPU on a GET by id).
_GET = sa.select(connection).where(
    connection.c.id == sa.bindparam("id"), connection.c.user_id == sa.bindparam("user_id")
)
_GET_OF_KIND = _GET.where(connection.c.kind == sa.bindparam("kind"))
_GET_OF_KIND_LOCKED = {lock: locking(_GET_OF_KIND, lock) for lock in Lock}
_DOCUMENT_OF_KIND = sa.select(connection.c.document).where(
    connection.c.id == sa.bindparam("id"),
    connection.c.user_id == sa.bindparam("user_id"),
    connection.c.kind == sa.bindparam("kind"),
)


async def get(
    conn: Conn, *, user_id: str, id: str, kind: str | None = None, lock: Lock | None = None
) -> RowMapping | None:
    """A connection of this account (and kind, if given), locked as `lock` says (store/locks.py)."""
    if not ids.is_numeric_id(id):
        return None
    if kind is None:
        return (await conn.execute(locking(_GET, lock), {"id": id, "user_id": user_id})).mappings().first()
    stmt = _GET_OF_KIND if lock is None else _GET_OF_KIND_LOCKED[lock]
    params = {"id": id, "user_id": user_id, "kind": kind}
    return (await conn.execute(stmt, params)).mappings().first()


async def get_document(conn: Conn, *, user_id: str, id: str, kind: str) -> str | None:
    """The stored record (JSON text) of a connection of this account and kind, or None: GET by id."""
    if not ids.is_numeric_id(id):
        return None
    document: str | None = await first_value(
        conn, _DOCUMENT_OF_KIND, {"id": id, "user_id": user_id, "kind": kind}
    )
    return document


async def get_any(conn: Conn, *, id: str, lock: Lock | None = None) -> RowMapping | None:
    """A connection by id whatever its account: for rules that follow a reference already checked."""
    if not ids.is_numeric_id(id):
        return None
    stmt = locking(sa.select(connection).where(connection.c.id == id), lock)
    return (await conn.execute(stmt)).mappings().first()


async def list_(
    conn: Conn,
    *,
    user_id: str,
    page: Page,
    kind: str | None = None,
    name_contains: str | None = None,
    outbound_voice_profile_id: str | None = None,
    fqdn_equals: str | None = None,
    sort: str = "-created_at",
) -> PageResult:
    counted = [connection_count.c.user_id == user_id]
    if kind is not None:
        counted.append(connection_count.c.kind == kind)
    # The account's counter (exact: migration 0005's triggers): the total unfiltered.
    # PostgreSQL's sum() of a bigint is a numeric: cast back, so the total is an int on both engines.
    summed = sa.cast(sa.func.coalesce(sa.func.sum(connection_count.c.n), 0), sa.BigInteger)
    held = sa.select(summed).where(*counted)
    order = sort_order(connection, sort)
    if fqdn_equals is not None:
        # Few rows, found through the fqdn table, whose writes the connection's list version does not
        # count: read afresh every time, driven by the FQDN's index on SQLite (store/search.py).
        drives = conn.dialect == "sqlite"
        where = _scope(user_id, kind, drives)
        where.append(connection.c.id.in_(sa.select(fqdn.c.connection_id).where(fqdn.c.fqdn == fqdn_equals)))
        if outbound_voice_profile_id is not None:
            where.append(connection.c.outbound_voice_profile_id == outbound_voice_profile_id)
        if name_contains is not None:
            where.append(search.like(connection.c.connection_name, name_contains))
        return await fetch_page(conn, connection, where=where, order_by=order, page=page, by_ids=drives)
    # Every other filter reads the connection table alone, so what the list learns is kept for the
    # account's version of it (store/list_memo.py).
    terms: list[sa.ColumnElement[bool]] = []
    if outbound_voice_profile_id is not None:
        terms.append(connection.c.outbound_voice_profile_id == outbound_voice_profile_id)
    driven = None
    if name_contains is not None:
        terms.append(search.like(connection.c.connection_name, name_contains))
        # On SQLite the trigram table of migration 0005 finds a rare name's few rows (store/search.py).
        found = search.candidates(
            name_contains, conn.dialect, trigram_table="connection_name_trigram", id_column=connection.c.id
        )
        if found is not None:
            driven = [*_scope(user_id, kind, True), *terms, found]
    where = [*_scope(user_id, kind, False), *terms]
    return await fetch_page(
        conn,
        connection,
        where=where,
        order_by=order,
        page=page,
        count=None if terms else held,
        remember=Remember(user_id, (kind, name_contains, outbound_voice_profile_id)),
        driven=driven,
        scope=held,
    )


def _scope(user_id: str, kind: str | None, driven: bool) -> list[sa.ColumnElement[bool]]:
    """The account's connections (of one kind), kept off their indexes when another term drives."""
    where = [search.unindexed(connection.c.user_id, driven) == user_id]
    if kind is not None:
        where.append(search.unindexed(connection.c.kind, driven) == kind)
    return where


async def update(conn: Conn, *, id: str, **values: Any) -> None:
    await conn.execute(sa.update(connection).where(connection.c.id == id).values(**values))


async def delete(conn: Conn, *, id: str) -> bool:
    """Delete a connection; its IPs, FQDNs and credentials go with it (foreign keys cascade)."""
    return await delete_row(conn, connection, id)


async def find_user_name(conn: Conn, *, user_name: str) -> RowMapping | None:
    """The connection that holds a SIP user name, in any account (they are unique server-wide)."""
    stmt = sa.select(connection.c.id).where(connection.c.user_name_key == user_name.lower())
    return (await conn.execute(stmt)).mappings().first()


async def find_subdomain(conn: Conn, *, subdomain: str) -> RowMapping | None:
    stmt = sa.select(connection.c.id).where(connection.c.sip_subdomain == subdomain)
    return (await conn.execute(stmt)).mappings().first()


async def find_token(conn: Conn, *, token: str) -> RowMapping | None:
    stmt = sa.select(connection.c.id).where(connection.c.ip_authentication_token == token)
    return (await conn.execute(stmt)).mappings().first()


async def count_by_profile(conn: Conn, *, profile_ids: Sequence[str]) -> dict[str, int]:
    """How many connections name each of these profiles, from `profile_connection_count` (exact:
    migration 0012's triggers): one primary-key read per profile, however many connections it has.
    A profile without a row, or with n = 0, is absent or 0; callers read a missing id as 0."""
    if not profile_ids:
        return {}
    counted = profile_connection_count.c
    stmt = sa.select(counted.outbound_voice_profile_id, counted.n).where(
        counted.outbound_voice_profile_id.in_(profile_ids)
    )
    return {row[0]: int(row[1]) for row in (await conn.execute(stmt)).all()}


async def put_credential(
    conn: Conn, *, connection_id: str, username: str, realm: str, ha1: str, ha1b: str, ha1_sha256: str
) -> None:
    values = {"username": username, "realm": realm, "ha1": ha1, "ha1b": ha1b, "ha1_sha256": ha1_sha256}
    updated = await conn.execute(
        sa.update(sip_credential).where(sip_credential.c.connection_id == connection_id).values(**values)
    )
    if not updated.rowcount:
        await conn.execute(sa.insert(sip_credential).values(connection_id=connection_id, **values))


async def get_credential(conn: Conn, *, connection_id: str) -> RowMapping | None:
    stmt = sa.select(sip_credential).where(sip_credential.c.connection_id == connection_id)
    return (await conn.execute(stmt)).mappings().first()
