"""Change announcements for the SIP edge: a version counter per topic, bumped in the writer's transaction."""

from __future__ import annotations

import sqlalchemy as sa

from trunkline.store import ids
from trunkline.store.db import Conn, insert_on_conflict
from trunkline.store.schema import config_version

# What the SIP edge caches and must reload when it changes: the source-address ACL (IPs, resolved
# FQDNs, active flags). Credentials need no topic: Kamailio's auth_db reads them on every request.
ACL = "acl"


async def bump(conn: Conn, topic: str) -> None:
    """Add one to the topic's version, creating it at 1.

    One upsert statement: an UPDATE that finds no row followed by an INSERT lets two first writers on
    a fresh database both insert, and the second fails on the primary key. INSERT ... ON CONFLICT DO
    UPDATE is atomic on both engines (https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT,
    https://www.sqlite.org/lang_upsert.html).
    """
    insert = insert_on_conflict(conn, config_version).values(topic=topic, version=1, updated_at=ids.now())
    await conn.execute(
        insert.on_conflict_do_update(
            index_elements=[config_version.c.topic],
            set_={"version": config_version.c.version + 1, "updated_at": insert.excluded.updated_at},
        )
    )


async def version(conn: Conn, topic: str) -> int:
    stmt = sa.select(config_version.c.version).where(config_version.c.topic == topic)
    return (await conn.execute(stmt)).scalar_one_or_none() or 0
