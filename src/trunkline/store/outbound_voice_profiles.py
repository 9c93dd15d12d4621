"""Queries for outbound voice profiles."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from trunkline.store.db import Conn
from trunkline.store.paging import Page, PageResult, fetch_page
from trunkline.store.schema import outbound_voice_profile as ovp


async def insert(conn: Conn, **values: Any) -> None:
    await conn.execute(sa.insert(ovp).values(**values))


async def get(conn: Conn, *, user_id: str, id: str) -> RowMapping | None:
    stmt = sa.select(ovp).where(ovp.c.id == id, ovp.c.user_id == user_id)
    return (await conn.execute(stmt)).mappings().first()


async def list_(
    conn: Conn, *, user_id: str, page: Page, name_contains: str | None = None, sort: str = "-created_at"
) -> PageResult:
    where: list[sa.ColumnElement[bool]] = [ovp.c.user_id == user_id]
    if name_contains is not None:
        where.append(sa.func.lower(ovp.c.name).contains(name_contains.lower(), autoescape=True))
    column = ovp.c[sort.lstrip("-")]
    direction = sa.desc if sort.startswith("-") else sa.asc
    # Ties (every profile has service_plan "global") fall back to creation order, then the id.
    order = [direction(column), direction(ovp.c.created_at), direction(ovp.c.id)]
    return await fetch_page(conn, ovp, where=where, order_by=order, page=page)


async def update(conn: Conn, *, id: str, **values: Any) -> None:
    await conn.execute(sa.update(ovp).where(ovp.c.id == id).values(**values))


async def delete(conn: Conn, *, id: str) -> None:
    await conn.execute(sa.delete(ovp).where(ovp.c.id == id))
