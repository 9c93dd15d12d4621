"""Change announcements for the SIP edge: a version counter per topic, bumped in the writer's transaction."""

from __future__ import annotations

import sqlalchemy as sa

from trunkline.store import ids
from trunkline.store.db import Conn
from trunkline.store.schema import config_version

# What the SIP edge caches and must reload when it changes: the source-address ACL (IPs, resolved
# FQDNs, active flags). Credentials need no topic: Kamailio's auth_db reads them on every request.
ACL = "acl"


async def bump(conn: Conn, topic: str) -> None:
    updated = await conn.execute(
        sa.update(config_version)
        .where(config_version.c.topic == topic)
        .values(version=config_version.c.version + 1, updated_at=ids.now())
    )
    if not updated.rowcount:
        await conn.execute(sa.insert(config_version).values(topic=topic, version=1, updated_at=ids.now()))


async def version(conn: Conn, topic: str) -> int:
    stmt = sa.select(config_version.c.version).where(config_version.c.topic == topic)
    return (await conn.execute(stmt)).scalar_one_or_none() or 0
