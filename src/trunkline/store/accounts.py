"""An account's records as a whole: deleted with set-based statements (reset), read out and written
back in bulk, and the server-wide uniqueness checks a restore needs (resources/state.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from trunkline.store import changes, webhook_outbox
from trunkline.store.access_ip_ranges import TOPIC as ACCESS_TOPIC
from trunkline.store.db import Conn
from trunkline.store.locks import Lock, locking
from trunkline.store.schema import (
    access_ip_range,
    call_record,
    connection,
    fqdn,
    ip,
    outbound_voice_profile,
    phone_number,
    sip_credential,
    virtual_registration,
)

# Children before parents: the order store/locks.py sets for every writer. A concurrent IP or FQDN
# write holds its own row before its connection's, a connection write holds the connection before its
# profile's REFERENCE lock, so taking the rows in this order makes no cycle with any of them.
# Phone numbers first: a connection's DELETE sets its numbers' connection_id to NULL (a child row
# locked after the parent), and a PATCH of a number locks the number before the connection it names.
_LOCK_ORDER = (phone_number, ip, fqdn, connection, outbound_voice_profile)


async def wipe(conn: Conn, *, user_id: str | None) -> dict[str, int]:
    """Delete the account's records (every account's when `user_id` is None); API keys stay, and so
    do its phone numbers (the operator's inventory: `trunkline numbers`), unassigned with their
    connections. Its call records go, and its webhook events, delivered or not (store/webhook_outbox.py).

    One statement per table. On PostgreSQL the rows are first locked table by table in the order
    above, each table's rows in id order, so two resets of one account, or a reset and an API write,
    wait for each other instead of deadlocking. A connection's credentials, resolved FQDN addresses
    and virtual registration go with it by foreign-key cascade; they are deleted explicitly first so
    that the counts are exact.
    """

    def mine(table: sa.Table) -> list[sa.ColumnElement[bool]]:
        return [] if user_id is None else [table.c.user_id == user_id]

    if conn.dialect == "postgresql":
        for table in _LOCK_ORDER:
            stmt = sa.select(table.c.id).where(*mine(table)).order_by(table.c.id)
            await conn.execute(locking(stmt, Lock.DELETE))

    async def delete(table: sa.Table) -> int:
        return int((await conn.execute(sa.delete(table).where(*mine(table)))).rowcount)

    counts = {
        "registrations": await delete(virtual_registration),
        "ips": await delete(ip),
        "fqdns": await delete(fqdn),
        "connections": await delete(connection),
        "outbound_voice_profiles": await delete(outbound_voice_profile),
        "access_ip_ranges": await delete(access_ip_range),
        "call_records": await delete(call_record),
        "webhook_events": await webhook_outbox.wipe(conn, user_id=user_id),
    }
    if counts["ips"] or counts["fqdns"] or counts["connections"]:
        await changes.bump(conn, changes.ACL)  # a running SIP edge reloads its address ACL
    if counts["access_ip_ranges"]:
        await changes.bump(conn, ACCESS_TOPIC)  # every API process reloads its access gate
    return counts


# Rows per multi-row INSERT and values per IN list: far inside SQLite's 32,766 bound parameters and
# PostgreSQL's 32,767 (https://www.sqlite.org/limits.html#max_variable_number).
_CHUNK = 200


def _chunks(values: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


async def rows_of(conn: Conn, table: sa.Table, *, user_id: str) -> Sequence[RowMapping]:
    """Every row of the account in `table`, oldest first."""
    order = [table.c.created_at, *table.primary_key.columns]
    stmt = sa.select(table).where(table.c.user_id == user_id).order_by(*order)
    return (await conn.execute(stmt)).mappings().all()


async def credentials_of(conn: Conn, *, user_id: str) -> Sequence[RowMapping]:
    """The SIP digests of the account's connections, in connection creation order."""
    stmt = (
        sa.select(sip_credential)
        .join(connection, connection.c.id == sip_credential.c.connection_id)
        .where(connection.c.user_id == user_id)
        .order_by(connection.c.created_at, connection.c.id)
    )
    return (await conn.execute(stmt)).mappings().all()


async def insert_rows(conn: Conn, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(rows):
        await conn.execute(sa.insert(table).values(chunk))


async def taken(conn: Conn, column: sa.Column[Any], values: Iterable[Any]) -> set[Any]:
    """Which of `values` some row already holds in `column`."""
    found: set[Any] = set()
    for chunk in _chunks(sorted(set(values))):
        found.update((await conn.execute(sa.select(column).where(column.in_(chunk)))).scalars().all())
    return found


async def taken_addresses(conn: Conn, pairs: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which (IP address, port) pairs an IP record already holds."""
    found: set[tuple[str, int]] = set()
    for chunk in _chunks(sorted(set(pairs))):
        stmt = sa.select(ip.c.ip_address, ip.c.port).where(sa.tuple_(ip.c.ip_address, ip.c.port).in_(chunk))
        found.update((r[0], r[1]) for r in (await conn.execute(stmt)).all())
    return found


async def taken_fqdns(conn: Conn, pairs: Iterable[tuple[str, int | None]]) -> set[tuple[str, int | None]]:
    """Which (host name key, port) pairs an FQDN record already holds; keys as store/fqdns.py makes
    them (lowercase, no trailing dot)."""
    wanted = set(pairs)
    found: set[tuple[str, int | None]] = set()
    names = sorted({name for name, _ in wanted})
    for chunk in _chunks(names):
        keys = [*chunk, *(n + "." for n in chunk)]
        stmt = sa.select(fqdn.c.fqdn, fqdn.c.port).where(sa.func.lower(fqdn.c.fqdn).in_(keys))
        for name, port in (await conn.execute(stmt)).all():
            pair = (name.lower().removesuffix("."), port)
            if pair in wanted:
                found.add(pair)
    return found


async def taken_subdomains(conn: Conn, subdomains: Iterable[str]) -> set[str]:
    """Which SIP subdomains a connection's stored document already names (`inbound.sip_subdomain` has
    no column: documents are compact JSON written by orjson, so the key and value appear verbatim)."""
    found: set[str] = set()
    for sub in sorted(set(subdomains)):
        needle = f'"sip_subdomain":"{sub}"'
        stmt = (
            sa.select(connection.c.id).where(connection.c.document.contains(needle, autoescape=True)).limit(1)
        )
        if (await conn.execute(stmt)).first() is not None:
            found.add(sub)
    return found
