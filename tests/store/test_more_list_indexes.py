"""The lists of IPs, FQDNs, outbound voice profiles and access IP ranges, answered from migration 0009's
indexes, give the answers the plain predicates give, with exact totals, on both engines.

Each check compares a list's pages and `total` with a plain query of the same meaning (no index
hint, no counter), as tests/store/test_list_indexes.py does for connections; on SQLite the query
plans are checked to read an index that starts with the account.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from alembic import command

from tests.store.test_list_indexes import FILTERS, NAMES
from trunkline.store import access_ip_ranges, connections, fqdns, ids, ips, migrate
from trunkline.store import outbound_voice_profiles as profiles
from trunkline.store.db import Conn, Database
from trunkline.store.paging import Page, PageResult
from trunkline.store.schema import access_ip_range, fqdn, ip, outbound_voice_profile

PROFILE_SORTS = ["created_at", "name", "enabled", "traffic_type", "service_plan", "usage_payment_method"]


def _run(database_url: str, body: Callable[[Conn], Awaitable[Any]], *, write: bool = False) -> Any:
    async def go() -> Any:
        db = Database(database_url)
        try:
            async with db.transaction(write=write) as conn:
                return await body(conn)
        finally:
            await db.dispose()

    return asyncio.run(go())


def _stamp(n: int) -> str:
    # Pairs share a creation time, so ties are broken by id.
    return f"2026-01-01T00:{n // 120 % 60:02d}:{n // 2 % 60:02d}.000Z"


@pytest.fixture(scope="module")
def account(database_url: str) -> Iterator[str]:
    """One account (and a second, whose rows must never show) with rows of every listed kind."""
    user_id, other = (f"more-{uuid.uuid4().hex[:10]}" for _ in range(2))

    async def seed(conn: Conn) -> None:
        for owner in (user_id, other):
            conns = []
            for c in range(3):
                conns.append(ids.numeric_id())
                stamp = _stamp(c)
                await connections.insert(
                    conn,
                    id=conns[-1],
                    user_id=owner,
                    kind="ip" if c < 2 else "fqdn",
                    connection_name=f"c{c}",
                    active=True,
                    document="{}",
                    created_at=stamp,
                    updated_at=stamp,
                )
            for n in range(40):
                stamp = _stamp(n)
                host = f"10.{owner == other:d}.{n % 5}.{n}"
                await ips.insert(
                    conn,
                    id=ids.uuid_id(),
                    user_id=owner,
                    connection_id=conns[n % 2] if n % 7 else None,
                    ip_address=host,
                    port=(5060, 5061, 5080)[n % 3],
                    created_at=stamp,
                    updated_at=stamp,
                )
                await fqdns.insert(
                    conn,
                    id=ids.numeric_id(),
                    user_id=owner,
                    connection_id=conns[2] if n % 2 else conns[0],
                    fqdn=f"pbx{n % 6}.example.com",
                    dns_record_type=("a", "srv")[n % 2],
                    port=None if n % 2 else (5060, 5061)[n % 4 // 2],
                    created_at=stamp,
                    updated_at=stamp,
                )
                await access_ip_ranges.insert(
                    conn,
                    id=ids.numeric_id(),
                    user_id=owner,
                    # Valid networks only: every server on the session's database loads them (http/gate.py).
                    cidr_block=f"198.51.{n}.0/24" if n % 2 == 0 else f"2001:db{8 if n % 3 else 9}:{n}::/64",
                    description=None,
                    status="added",
                    created_at=stamp,
                    updated_at=stamp,
                )
            for n, name in enumerate(x for x in NAMES if x is not None):
                stamp = _stamp(n)
                await profiles.insert(
                    conn,
                    id=ids.numeric_id(),
                    user_id=owner,
                    name=name,
                    enabled=n % 3 != 0,
                    traffic_type=("conversational", "short_duration")[n % 2],
                    service_plan=("global", "us")[n % 4 // 3],
                    usage_payment_method=("rate-deck", "tariff")[n % 5 // 3],
                    concurrent_call_limit=None,
                    document="{}",
                    created_at=stamp,
                    updated_at=stamp,
                )

    _run(database_url, seed, write=True)
    yield user_id


async def _plain(
    conn: Conn, table: sa.Table, where: Sequence[sa.ColumnElement[bool]], order: list[Any]
) -> list[str]:
    stmt = sa.select(table.c.id).where(*where).order_by(*order)
    return list((await conn.execute(stmt)).scalars().all())


async def _every_page(
    list_page: Callable[[Page], Awaitable[PageResult]], size: int
) -> tuple[list[str], set[int]]:
    """The ids of every page in order, and the totals the pages gave."""
    got: list[str] = []
    totals: set[int] = set()
    number = 1
    while True:
        result = await list_page(page=Page(number, size))
        totals.add(result.total)
        got += [row["id"] for row in result.rows]
        if number >= max(result.total_pages, 1):
            return got, totals
        number += 1


def _check(database_url: str, table: sa.Table, cases: list[tuple[dict[str, Any], list[Any], Any]]) -> None:
    """Each case: the list function's keyword filters, the plain WHERE terms, and the list function."""

    async def body(conn: Conn) -> None:
        for filters, where, list_ in cases:
            order = [table.c.created_at, table.c.id]
            expected = await _plain(conn, table, where, order)
            for size in (250, 3):
                got, totals = await _every_page(functools.partial(list_, conn, **filters), size)
                assert (got, totals) == (expected, {len(expected)}), (filters, size)

    _run(database_url, body)


def test_ip_filters_give_the_plain_answers(database_url: str, account: str) -> None:
    some_connection = _run(
        database_url,
        lambda conn: _scalar(
            conn,
            sa.select(ip.c.connection_id).where(ip.c.user_id == account, ip.c.connection_id.is_not(None)),
        ),
    )
    base = [ip.c.user_id == account]
    cases = [
        ({}, base),
        ({"connection_id": some_connection}, [*base, ip.c.connection_id == some_connection]),
        ({"ip_address": "10.0.3.8"}, [*base, ip.c.ip_address == "10.0.3.8"]),
        ({"ip_address": "10.1.3.8"}, [*base, ip.c.ip_address == "10.1.3.8"]),  # the other account's
        ({"port": 5061}, [*base, ip.c.port == 5061]),
        (
            {"connection_id": some_connection, "port": 5080},
            [*base, ip.c.connection_id == some_connection, ip.c.port == 5080],
        ),
    ]
    _check(
        database_url,
        ip,
        [(f, w, lambda conn, **kw: ips.list_(conn, user_id=account, **kw)) for f, w in cases],
    )


def test_fqdn_filters_give_the_plain_answers(database_url: str, account: str) -> None:
    some_connection = _run(
        database_url,
        lambda conn: _scalar(conn, sa.select(fqdn.c.connection_id).where(fqdn.c.user_id == account)),
    )
    base = [fqdn.c.user_id == account]
    cases = [
        ({}, base),
        ({"connection_id": some_connection}, [*base, fqdn.c.connection_id == some_connection]),
        ({"fqdn_equals": "pbx3.example.com"}, [*base, fqdn.c.fqdn == "pbx3.example.com"]),
        ({"port": 5061}, [*base, fqdn.c.port == 5061]),
        ({"dns_record_type": "srv"}, [*base, fqdn.c.dns_record_type == "srv"]),
        ({"dns_record_type": "a", "port": 5060}, [*base, fqdn.c.dns_record_type == "a", fqdn.c.port == 5060]),
    ]
    _check(
        database_url,
        fqdn,
        [(f, w, lambda conn, **kw: fqdns.list_(conn, user_id=account, **kw)) for f, w in cases],
    )


def test_access_ip_range_filters_give_the_plain_answers(database_url: str, account: str) -> None:
    base = [access_ip_range.c.user_id == account]
    column = access_ip_range.c.cidr_block
    stamps = access_ip_range.c.created_at
    cases = [
        ({}, base),
        ({"cidr": [("eq", "198.51.4.0/24")]}, [*base, column == "198.51.4.0/24"]),
        ({"cidr": [("startswith", "2001:")]}, [*base, column.startswith("2001:", autoescape=True)]),
        ({"cidr": [("endswith", "/64")]}, [*base, column.endswith("/64", autoescape=True)]),
        ({"cidr": [("contains", "db8:1")]}, [*base, column.contains("db8:1", autoescape=True)]),
        (
            {"created_at": [("gte", _stamp(10)), ("lt", _stamp(30))]},
            [*base, stamps >= _stamp(10), stamps < _stamp(30)],
        ),
        ({"created_at": [("eq", _stamp(7))]}, [*base, stamps == _stamp(7)]),
    ]
    _check(
        database_url,
        access_ip_range,
        [(f, w, lambda conn, **kw: access_ip_ranges.list_(conn, user_id=account, **kw)) for f, w in cases],
    )


@pytest.mark.parametrize("sort", [s for key in PROFILE_SORTS for s in (key, "-" + key)])
def test_profile_sorts_and_pages_are_those_of_the_plain_order(
    database_url: str, account: str, sort: str
) -> None:
    key = outbound_voice_profile.c[sort.lstrip("-")]
    direction = sa.desc if sort.startswith("-") else sa.asc
    order = [
        direction(key),
        direction(outbound_voice_profile.c.created_at),
        direction(outbound_voice_profile.c.id),
    ]
    if key.name == "created_at":
        order = [direction(key), direction(outbound_voice_profile.c.id)]

    async def body(conn: Conn) -> None:
        expected = await _plain(
            conn, outbound_voice_profile, [outbound_voice_profile.c.user_id == account], order
        )
        for size in (250, 4):
            got, totals = await _every_page(
                functools.partial(profiles.list_, conn, user_id=account, sort=sort), size
            )
            assert (got, totals) == (expected, {len(expected)}), size

    _run(database_url, body)


def test_profile_name_contains_gives_what_the_plain_predicate_gives(database_url: str, account: str) -> None:
    table = outbound_voice_profile

    async def body(conn: Conn) -> None:
        for value in [*FILTERS, "s", "é", "%"]:
            where = [
                table.c.user_id == account,
                sa.func.lower(table.c.name).contains(value.lower(), autoescape=True),
            ]
            expected = await _plain(conn, table, where, [table.c.created_at.desc(), table.c.id.desc()])
            for size in (250, 1):
                got, totals = await _every_page(
                    functools.partial(profiles.list_, conn, user_id=account, name_contains=value), size
                )
                assert (got, totals) == (expected, {len(expected)}), (value, size)

    _run(database_url, body)


async def _scalar(conn: Conn, stmt: sa.Select[Any]) -> Any:
    return (await conn.execute(stmt.limit(1))).scalar_one()


# SQLite's EXPLAIN QUERY PLAN only: PostgreSQL's plans depend on its statistics.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_plans_read_an_index_that_starts_with_the_account(
    database_url: str, account: str, backend: str
) -> None:
    statements = {
        "ix_ip_user_id_created_at_id": sa.select(ip.c.id)
        .where(ip.c.user_id == account)
        .order_by(ip.c.created_at, ip.c.id),
        "ix_ip_user_id_port_created_at_id": sa.select(ip.c.id)
        .where(ip.c.user_id == account, ip.c.port == 5060)
        .order_by(ip.c.created_at, ip.c.id),
        "ix_fqdn_user_id_dns_record_type_created_at_id": sa.select(fqdn.c.id)
        .where(fqdn.c.user_id == account, fqdn.c.dns_record_type == "a")
        .order_by(fqdn.c.created_at, fqdn.c.id),
        "ix_outbound_voice_profile_user_id_traffic_type": sa.select(outbound_voice_profile.c.id)
        .where(outbound_voice_profile.c.user_id == account)
        .order_by(
            outbound_voice_profile.c.traffic_type.desc(),
            outbound_voice_profile.c.created_at.desc(),
            outbound_voice_profile.c.id.desc(),
        ),
        "ix_access_ip_range_user_id_created_at_id": sa.select(access_ip_range.c.id)
        .where(access_ip_range.c.user_id == account, access_ip_range.c.created_at >= _stamp(3))
        .order_by(access_ip_range.c.created_at, access_ip_range.c.id),
    }

    async def body(conn: Conn) -> None:
        for index, stmt in statements.items():
            sql = stmt.compile(compile_kwargs={"literal_binds": True})
            plan = " ".join(str(row[-1]) for row in await conn.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}")))
            assert f"USING COVERING INDEX {index}" in plan and "TEMP B-TREE" not in plan, (index, plan)

    _run(database_url, body)


def test_counts_stay_exact_through_inserts_moves_and_deletes(database_url: str) -> None:
    user_id, other = (f"cnt-{uuid.uuid4().hex[:10]}" for _ in range(2))

    async def body(conn: Conn) -> None:
        made: dict[str, list[str]] = {"ip": [], "outbound_voice_profile": [], "access_ip_range": []}
        for n in range(12):
            stamp = ids.now()
            made["ip"].append(ids.uuid_id())
            await ips.insert(
                conn,
                id=made["ip"][-1],
                user_id=user_id,
                connection_id=None,
                ip_address=f"192.0.2.{n}",
                port=7000 + n,
                created_at=stamp,
                updated_at=stamp,
            )
            made["outbound_voice_profile"].append(ids.numeric_id())
            await profiles.insert(
                conn,
                id=made["outbound_voice_profile"][-1],
                user_id=user_id,
                name=f"count-{n}",
                enabled=True,
                traffic_type="conversational",
                service_plan="global",
                usage_payment_method="rate-deck",
                concurrent_call_limit=None,
                document="{}",
                created_at=stamp,
                updated_at=stamp,
            )
            made["access_ip_range"].append(ids.numeric_id())
            await access_ip_ranges.insert(
                conn,
                id=made["access_ip_range"][-1],
                user_id=user_id,
                cidr_block=f"192.0.2.{n}/32",
                description=None,
                status="added",
                created_at=stamp,
                updated_at=stamp,
            )
        for id in made["ip"][:3]:
            await ips.delete(conn, id=id)
        await profiles.delete(conn, id=made["outbound_voice_profile"][0])
        await access_ip_ranges.delete(conn, id=made["access_ip_range"][0])
        # Rows that change account move between the counters (nothing does today; the triggers cover it).
        await ips.update(conn, id=made["ip"][5], user_id=other)
        await profiles.update(conn, id=made["outbound_voice_profile"][5], user_id=other, name="moved-away")
        for owner in (user_id, other):
            for table, list_ in (
                (ip, ips.list_),
                (outbound_voice_profile, profiles.list_),
                (access_ip_range, access_ip_ranges.list_),
            ):
                stmt = sa.select(sa.func.count()).select_from(table).where(table.c.user_id == owner)
                expected = (await conn.execute(stmt)).scalar_one()
                page = await list_(conn, user_id=owner, page=Page(2, 2))
                assert (type(page.total), page.total) == (int, expected), (owner, table.name)
        moved = await profiles.list_(conn, user_id=other, page=Page(1, 5), name_contains="moved")
        assert [row["id"] for row in moved.rows] == [made["outbound_voice_profile"][5]]

    _run(database_url, body, write=True)


def test_the_migration_indexes_a_database_that_already_holds_rows(fresh_url: str, backend: str) -> None:
    """Upgrade from 0008 with rows in place, down again and up again: counts and search are whole."""
    cfg = migrate.alembic_config(fresh_url)
    migrate.upgrade(fresh_url, "0008")
    user_id = "live-account"

    async def insert_rows(conn: Conn) -> None:
        for n in range(30):
            stamp = f"2026-01-01T00:00:{n:02d}.000Z"
            await ips.insert(
                conn,
                id=ids.uuid_id(),
                user_id=user_id,
                connection_id=None,
                ip_address=f"203.0.113.{n}",
                port=5060,
                created_at=stamp,
                updated_at=stamp,
            )
            await profiles.insert(
                conn,
                id=ids.numeric_id(),
                user_id=user_id,
                name=f"{'Sales' if n % 3 == 0 else 'office'}-{n}",
                enabled=True,
                traffic_type="conversational",
                service_plan="global",
                usage_payment_method="rate-deck",
                concurrent_call_limit=None,
                document="{}",
                created_at=stamp,
                updated_at=stamp,
            )

    async def check(conn: Conn) -> None:
        assert (await ips.list_(conn, user_id=user_id, page=Page(2, 7))).total == 30
        assert (await profiles.list_(conn, user_id=user_id, page=Page(2, 7))).total == 30
        sales = await profiles.list_(conn, user_id=user_id, page=Page(2, 3), name_contains="SALES")
        assert sales.total == 10
        assert (await access_ip_ranges.list_(conn, user_id=user_id, page=Page(2, 3))).total == 0

    _run(fresh_url, insert_rows, write=True)
    migrate.upgrade(fresh_url)
    _run(fresh_url, check)
    command.downgrade(cfg, "0008")
    migrate.upgrade(fresh_url)
    _run(fresh_url, check)
    if backend == "postgresql":

        async def indexes() -> dict[str, tuple[bool, str]]:
            conn = await asyncpg.connect(fresh_url)
            try:
                rows = await conn.fetch(
                    "SELECT c.relname, i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i"
                    " JOIN pg_class c ON c.oid = i.indexrelid"
                    " WHERE i.indrelid IN ('ip'::regclass, 'fqdn'::regclass,"
                    " 'outbound_voice_profile'::regclass, 'access_ip_range'::regclass)"
                )
                return {r[0]: (r[1], r[2]) for r in rows}
            finally:
                await conn.close()

        found = asyncio.run(indexes())
        assert all(valid for valid, _ in found.values())
        assert "gin (lower((name)::text) gin_trgm_ops)" in found["ix_outbound_voice_profile_name_trgm"][1]
        assert "ix_ip_user_id_created_at" not in found
        assert "ix_fqdn_user_id_dns_record_type_created_at_id" in found
