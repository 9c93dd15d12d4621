"""What the SIP edge needs from the database, read in one go, and the addresses its resolver writes.

Kamailio itself reads credentials, the address ACL and call limits through the `kam_*` views
(migrations 0002 and 0004); the reconciler only needs to know when the ACL changed and which FQDNs to
resolve.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import sqlalchemy as sa

from trunkline.sip.state import AclSnapshot, Address, FqdnTarget
from trunkline.store import changes, ids
from trunkline.store.db import Conn
from trunkline.store.schema import connection, fqdn, fqdn_address

# The view Kamailio's permissions module loads (migrations 0002, 0004), described here only to read it.
kam_address = sa.Table(
    "kam_address",
    sa.MetaData(),
    sa.Column("grp", sa.Integer),
    sa.Column("ip_addr", sa.String),
    sa.Column("mask", sa.Integer),
    sa.Column("port", sa.Integer),
    sa.Column("tag", sa.String),
)


async def acl_version(conn: Conn) -> int:
    return await changes.version(conn, changes.ACL)


async def load(conn: Conn) -> AclSnapshot:
    """The ACL version and every FQDN of an FQDN connection, with what each resolves to today."""
    version = await changes.version(conn, changes.ACL)
    stmt = (
        sa.select(fqdn.c.id, fqdn.c.fqdn, fqdn.c.dns_record_type, fqdn.c.port)
        .join(connection, connection.c.id == fqdn.c.connection_id)
        .where(connection.c.kind == "fqdn")
        .order_by(fqdn.c.id)
    )
    targets = tuple(
        FqdnTarget(fqdn_id=r.id, fqdn=r.fqdn, dns_record_type=r.dns_record_type, port=r.port)
        for r in (await conn.execute(stmt)).all()
    )
    resolved: dict[str, set[Address]] = defaultdict(set)
    rows = await conn.execute(
        sa.select(
            fqdn_address.c.fqdn_id,
            fqdn_address.c.ip_address,
            fqdn_address.c.port,
            fqdn_address.c.srv_priority,
            fqdn_address.c.srv_weight,
        )
    )
    for row in rows.all():
        resolved[row.fqdn_id].add(Address(row.ip_address, row.port, row.srv_priority, row.srv_weight))
    return AclSnapshot(
        version=version,
        fqdns=targets,
        resolved={k: frozenset(v) for k, v in resolved.items()},
        acl_digest=await _acl_digest(conn),
    )


async def _acl_digest(conn: Conn) -> str:
    cols = kam_address.c
    stmt = sa.select(cols.grp, cols.ip_addr, cols.mask, cols.port, cols.tag).order_by(
        cols.ip_addr, cols.port, cols.tag
    )
    digest = hashlib.sha256()
    for row in (await conn.execute(stmt)).all():
        digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


async def store_resolved(conn: Conn, *, fqdn_id: str, addresses: frozenset[Address]) -> bool:
    """Replace what an FQDN resolves to; bump the ACL topic when that changed anything."""
    if (await conn.execute(sa.select(fqdn.c.id).where(fqdn.c.id == fqdn_id))).first() is None:
        return False  # deleted since the snapshot
    cols = fqdn_address.c
    rows = await conn.execute(
        sa.select(cols.ip_address, cols.port, cols.srv_priority, cols.srv_weight).where(
            cols.fqdn_id == fqdn_id
        )
    )
    current = {Address(r.ip_address, r.port, r.srv_priority, r.srv_weight) for r in rows.all()}
    if current == set(addresses):
        return False
    await conn.execute(sa.delete(fqdn_address).where(fqdn_address.c.fqdn_id == fqdn_id))
    stamp = ids.now()
    for address in sorted(addresses):
        await conn.execute(
            sa.insert(fqdn_address).values(
                fqdn_id=fqdn_id,
                ip_address=address.ip_address,
                port=address.port,
                srv_priority=address.priority,
                srv_weight=address.weight,
                resolved_at=stamp,
            )
        )
    await changes.bump(conn, changes.ACL)
    return True
