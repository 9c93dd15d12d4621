"""Queries for outbound voice profiles."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from trunkline.store.db import Conn
from trunkline.store.schema import outbound_voice_profile as ovp


async def get(conn: Conn, *, user_id: str, id: str) -> RowMapping | None:
    stmt = sa.select(ovp).where(ovp.c.id == id, ovp.c.user_id == user_id)
    return (await conn.execute(stmt)).mappings().first()
