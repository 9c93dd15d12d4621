"""Queries for per-account limits (the `account_limit` table), which the SIP edge enforces."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from trunkline.store import ids
from trunkline.store.db import Conn
from trunkline.store.schema import account_limit


async def get(conn: Conn, *, user_id: str) -> RowMapping | None:
    stmt = sa.select(account_limit).where(account_limit.c.user_id == user_id)
    return (await conn.execute(stmt)).mappings().first()


async def set_concurrent_calls(conn: Conn, *, user_id: str, limit: int | None) -> None:
    """Set (or, with None, clear) how many calls an account's connections may have up at once."""
    stamp = ids.now()
    updated = await conn.execute(
        sa.update(account_limit)
        .where(account_limit.c.user_id == user_id)
        .values(concurrent_calls=limit, updated_at=stamp)
    )
    if updated.rowcount == 0:
        await conn.execute(
            sa.insert(account_limit).values(
                user_id=user_id, concurrent_calls=limit, created_at=stamp, updated_at=stamp
            )
        )
