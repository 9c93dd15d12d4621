"""Change announcements: a version counter per topic, bumped in the writer's transaction, and on
PostgreSQL a notification on CHANNEL that wakes every listener (store/notify.py) at commit."""

from __future__ import annotations

import sqlalchemy as sa

from trunkline.store import ids
from trunkline.store.db import Conn, insert_on_conflict
from trunkline.store.schema import config_version

# What the SIP edge caches and must reload when it changes: the source-address ACL (IPs, resolved
# FQDNs, active flags). Credentials need no topic: Kamailio's auth_db reads them on every request.
ACL = "acl"
# The PostgreSQL notification channel every topic is announced on, the topic being the payload.
# Channels are per database (https://www.postgresql.org/docs/current/sql-notify.html), so two
# trunkline databases on one server never hear each other.
CHANNEL = "trunkline_changes"


async def bump(conn: Conn, topic: str) -> None:
    """Add one to the topic's version, creating it at 1; on PostgreSQL also announce the topic.

    One upsert statement: an UPDATE that finds no row followed by an INSERT lets two first writers on
    a fresh database both insert, and the second fails on the primary key. INSERT ... ON CONFLICT DO
    UPDATE is atomic on both engines (https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT,
    https://www.sqlite.org/lang_upsert.html).

    The announcement rides on the same statement (`RETURNING pg_notify(...)`: no extra round trip).
    PostgreSQL delivers it when the transaction commits and drops it when it rolls back, so a listener
    never hears of a change it cannot yet read; several identical ones in one transaction arrive once
    (https://www.postgresql.org/docs/current/sql-notify.html). SQLite has no such thing: its readers
    poll the counter (one process on one machine, where that read is cheap).
    """
    insert = insert_on_conflict(conn, config_version).values(topic=topic, version=1, updated_at=ids.now())
    upsert = insert.on_conflict_do_update(
        index_elements=[config_version.c.topic],
        set_={"version": config_version.c.version + 1, "updated_at": insert.excluded.updated_at},
    )
    if conn.dialect == "postgresql":
        await conn.execute(upsert.returning(sa.func.pg_notify(CHANNEL, topic)))
    else:
        await conn.execute(upsert)


async def version(conn: Conn, topic: str) -> int:
    stmt = sa.select(config_version.c.version).where(config_version.c.topic == topic)
    return (await conn.execute(stmt)).scalar_one_or_none() or 0
