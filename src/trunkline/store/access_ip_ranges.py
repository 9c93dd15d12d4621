"""Queries for access IP ranges: the networks an account's API keys may be used from."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from trunkline.store import changes, ids
from trunkline.store.db import Conn
from trunkline.store.locks import delete_row
from trunkline.store.paging import Page, PageResult, Remember, account_total, fetch_page, sort_order
from trunkline.store.schema import access_ip_range as air

# The config_version topic every API process polls to learn that the ranges changed, whoever changed
# them (another instance, the CLI).
TOPIC = "access_ip_range"
_COMPARE = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le, "eq": operator.eq}


async def insert(conn: Conn, **values: Any) -> None:
    await conn.execute(sa.insert(air).values(**values))
    await changes.bump(conn, TOPIC)


async def get(conn: Conn, *, user_id: str, id: str) -> RowMapping | None:
    if not ids.is_numeric_id(id):
        return None  # not one of our ids: no row, and no query PostgreSQL might refuse
    stmt = sa.select(air).where(air.c.id == id, air.c.user_id == user_id)
    return (await conn.execute(stmt)).mappings().first()


async def find_cidr(conn: Conn, *, user_id: str, cidr_block: str) -> RowMapping | None:
    stmt = sa.select(air).where(air.c.user_id == user_id, air.c.cidr_block == cidr_block)
    return (await conn.execute(stmt)).mappings().first()


async def list_(
    conn: Conn,
    *,
    user_id: str,
    page: Page,
    cidr: Sequence[tuple[str, str]] = (),
    created_at: Sequence[tuple[str, str]] = (),
) -> PageResult:
    """A page of one account's ranges, oldest first.

    `cidr` holds (eq|startswith|endswith|contains, value) pairs; `created_at` (gt|gte|lt|lte|eq,
    timestamp) pairs in the stored format, whose fixed width makes text order the time order.
    """
    where: list[sa.ColumnElement[bool]] = [air.c.user_id == user_id]
    for op, value in cidr:
        if op == "eq":
            where.append(air.c.cidr_block == value)
        else:
            # autoescape: a '%' or '_' the client sends is matched literally, not as a wildcard.
            where.append(getattr(air.c.cidr_block, op)(value, autoescape=True))
    for op, value in created_at:
        where.append(_COMPARE[op](air.c.created_at, value))
    # The order's index (user_id, created_at, id) serves the created_at ranges; the cidr_block
    # patterns are tested on the account's ranges in that order, once per account version for the
    # total and from the nearest page served before for a page (store/list_memo.py).
    count = account_total(air, user_id) if len(where) == 1 else None
    return await fetch_page(
        conn,
        air,
        where=where,
        order_by=sort_order(air, "created_at"),
        page=page,
        count=count,
        remember=Remember(user_id, (tuple(cidr), tuple(created_at))),
    )


async def delete(conn: Conn, *, id: str) -> bool:
    """Delete a range; False when another request deleted it first."""
    if not await delete_row(conn, air, id):
        return False
    await changes.bump(conn, TOPIC)
    return True


async def version(conn: Conn) -> int:
    return await changes.version(conn, TOPIC)


async def all_ranges(conn: Conn) -> Sequence[RowMapping]:
    """Every account's ranges (id, user_id, cidr_block, status): what the access gate enforces."""
    stmt = sa.select(air.c.id, air.c.user_id, air.c.cidr_block, air.c.status)
    return (await conn.execute(stmt)).mappings().all()


async def mark_added(conn: Conn, *, ids: Sequence[str], at: str) -> None:
    """Pending ranges the gate has loaded become `added` (trunkline's choice: Telnyx does not say)."""
    stmt = (
        sa.update(air)
        .where(air.c.id.in_(list(ids)), air.c.status == "pending")
        .values(status="added", updated_at=at)
    )
    await conn.execute(stmt)


async def list_for_user(conn: Conn, *, user_id: str) -> Sequence[RowMapping]:
    stmt = sa.select(air).where(air.c.user_id == user_id).order_by(air.c.created_at, air.c.id)
    return (await conn.execute(stmt)).mappings().all()
