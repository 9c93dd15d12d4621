"""Queries for virtual registrations: one row per credential connection, set through the control API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from trunkline.store.db import Conn, insert_on_conflict
from trunkline.store.schema import virtual_registration as vr

_GET = sa.select(vr).where(vr.c.connection_id == sa.bindparam("connection_id"))


async def get(conn: Conn, *, connection_id: str) -> RowMapping | None:
    return (await conn.execute(_GET, {"connection_id": connection_id})).mappings().first()


async def put(conn: Conn, **values: Any) -> None:
    """Insert or replace the connection's row in one statement, so two PUTs racing cannot both insert
    (https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT)."""
    insert = insert_on_conflict(conn, vr).values(**values)
    changed = {k: insert.excluded[k] for k in values if k not in ("connection_id", "created_at")}
    await conn.execute(insert.on_conflict_do_update(index_elements=[vr.c.connection_id], set_=changed))


async def delete(conn: Conn, *, connection_id: str) -> bool:
    result = await conn.execute(sa.delete(vr).where(vr.c.connection_id == connection_id))
    return bool(result.rowcount)


async def list_for_user(conn: Conn, *, user_id: str) -> Sequence[RowMapping]:
    stmt = sa.select(vr).where(vr.c.user_id == user_id).order_by(vr.c.created_at, vr.c.connection_id)
    return (await conn.execute(stmt)).mappings().all()
