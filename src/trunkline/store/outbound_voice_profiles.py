"""Queries for outbound voice profiles."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from trunkline.store import ids, search
from trunkline.store.db import Conn, first_row
from trunkline.store.locks import Lock, delete_row, locking
from trunkline.store.paging import Page, PageResult, Remember, account_total, fetch_page, sort_order
from trunkline.store.schema import outbound_voice_profile as ovp
from trunkline.store.schema import profile_connection_count


async def insert(conn: Conn, **values: Any) -> None:
    await conn.execute(sa.insert(ovp).values(**values))


async def get(conn: Conn, *, user_id: str, id: str, lock: Lock | None = None) -> RowMapping | None:
    if not ids.is_numeric_id(id):
        return None
    stmt = locking(sa.select(ovp).where(ovp.c.id == id, ovp.c.user_id == user_id), lock)
    return (await conn.execute(stmt)).mappings().first()


# GET by id, a statement built once (as store/connections.py's `_DOCUMENT_OF_KIND`): the document and
# its connection count (migration 0012's table, no row when none) in one read.
_counted = profile_connection_count.c
_DOCUMENT = sa.select(
    ovp.c.document,
    sa.select(_counted.n).where(_counted.outbound_voice_profile_id == ovp.c.id).scalar_subquery(),
).where(ovp.c.id == sa.bindparam("id"), ovp.c.user_id == sa.bindparam("user_id"))


async def get_document(conn: Conn, *, user_id: str, id: str) -> tuple[str, int] | None:
    """The stored record (JSON text, without `connections_count`) of a profile of this account and how
    many connections name it, or None."""
    if not ids.is_numeric_id(id):
        return None
    row = await first_row(conn, _DOCUMENT, {"id": id, "user_id": user_id})
    if row is None:
        return None
    return row[0], int(row[1] or 0)


async def list_(
    conn: Conn, *, user_id: str, page: Page, name_contains: str | None = None, sort: str = "-created_at"
) -> PageResult:
    # Every sort has an index after the account's (migration 0009); on SQLite a name filter of a
    # trigram or more can be driven from the trigram index instead, when its matches are few
    # (store/search.py, store/paging.py `fetch_page`).
    held = account_total(ovp, user_id)
    where: list[sa.ColumnElement[bool]] = [ovp.c.user_id == user_id]
    driven = None
    if name_contains is not None:
        like = search.like(ovp.c.name, name_contains)
        where.append(like)
        found = search.candidates(
            name_contains,
            conn.dialect,
            trigram_table="outbound_voice_profile_name_trigram",
            id_column=ovp.c.id,
        )
        if found is not None:
            driven = [search.unindexed(ovp.c.user_id, True) == user_id, like, found]
    # Ties (every profile has service_plan "global") fall back to creation order, then the id.
    return await fetch_page(
        conn,
        ovp,
        where=where,
        order_by=sort_order(ovp, sort),
        page=page,
        count=None if name_contains is not None else held,
        remember=Remember(user_id, name_contains),
        driven=driven,
        scope=held,
    )


async def update(conn: Conn, *, id: str, **values: Any) -> None:
    await conn.execute(sa.update(ovp).where(ovp.c.id == id).values(**values))


async def delete(conn: Conn, *, id: str) -> bool:
    return await delete_row(conn, ovp, id)
