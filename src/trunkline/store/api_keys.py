"""API keys: stored as SHA-256 digests, looked up by key id."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from trunkline.store.db import Conn
from trunkline.store.schema import api_key


async def insert(
    conn: Conn,
    *,
    id: str,
    user_id: str,
    secret_hash: str,
    read_only: bool,
    description: str | None,
    created_at: str,
) -> None:
    await conn.execute(
        sa.insert(api_key).values(
            id=id,
            user_id=user_id,
            secret_hash=secret_hash,
            read_only=read_only,
            description=description,
            created_at=created_at,
        )
    )


async def get(conn: Conn, *, id: str) -> RowMapping | None:
    return (await conn.execute(sa.select(api_key).where(api_key.c.id == id))).mappings().first()


async def list_(conn: Conn, *, user_id: str | None = None) -> Sequence[RowMapping]:
    stmt = sa.select(api_key).order_by(api_key.c.created_at, api_key.c.id)
    if user_id is not None:
        stmt = stmt.where(api_key.c.user_id == user_id)
    return (await conn.execute(stmt)).mappings().all()


async def revoke(conn: Conn, *, id: str, at: str) -> bool:
    result = await conn.execute(
        sa.update(api_key).where(api_key.c.id == id, api_key.c.revoked_at.is_(None)).values(revoked_at=at)
    )
    return bool(result.rowcount)


async def count(conn: Conn) -> int:
    return (await conn.execute(sa.select(sa.func.count()).select_from(api_key))).scalar_one()
