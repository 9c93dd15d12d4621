"""The server's webhook signing key pair (`webhook_key`, one row): stored once, read by every instance.

Two instances starting together on a fresh database may both generate a pair; one INSERT wins (ON
CONFLICT DO NOTHING on the fixed id) and both then read the winner's, so all sign with one key.
"""

from __future__ import annotations

import sqlalchemy as sa

from trunkline.store import ids
from trunkline.store.db import Conn, insert_on_conflict
from trunkline.store.schema import webhook_key

ROW_ID = 1


async def keep_first(conn: Conn, *, public_key: str, private_key: str) -> tuple[str, str]:
    """Store this pair unless one is stored already; the stored pair (public, private), base64."""
    await conn.execute(
        insert_on_conflict(conn, webhook_key)
        .values(id=ROW_ID, public_key=public_key, private_key=private_key, created_at=ids.now())
        .on_conflict_do_nothing(index_elements=[webhook_key.c.id])
    )
    row = (
        await conn.execute(
            sa.select(webhook_key.c.public_key, webhook_key.c.private_key).where(webhook_key.c.id == ROW_ID)
        )
    ).one()
    return str(row.public_key), str(row.private_key)


async def public_key(conn: Conn) -> str | None:
    stmt = sa.select(webhook_key.c.public_key).where(webhook_key.c.id == ROW_ID)
    value = (await conn.execute(stmt)).scalar_one_or_none()
    return None if value is None else str(value)
