"""List queries answered from indexes give the answers the plain predicates give, on both engines.

`filter[connection_name][contains]` goes through a trigram index (PostgreSQL pg_trgm, SQLite FTS5's
trigram tokenizer, https://www.sqlite.org/fts5.html#the_trigram_tokenizer), but its meaning stays
what it was: `lower(connection_name) LIKE '%' || lower(value) || '%'` with `%` and `_` taken literally,
where SQLite's `lower()` and `LIKE` fold ASCII letters only
(https://www.sqlite.org/lang_corefunc.html#lower, https://www.sqlite.org/lang_expr.html#like). These tests
compare every answer with that plain predicate, and pin a few answers outright.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
import sqlalchemy as sa
from alembic import command

from trunkline.store import connections, ids, migrate
from trunkline.store.db import Database
from trunkline.store.paging import Page
from trunkline.store.schema import connection

NAMES = [
    "Sales-East",
    "sales_west",
    "SALES",
    "100%off",
    "100 off",
    "x_y",
    "xzy",
    "CAFÉ",
    "café",
    "Café Crème",
    "İstanbul",
    "straße",
    "STRASSE",
    "ab",
    "a",
    "",
    None,
    'say "hi"',
    "semi;colon OR NOT",
    "日本語の名前",
    "Ǆemal",
    "ǆemal",
    "K-kelvin",  # the Kelvin sign: Python lowers it to an ASCII k
]

FILTERS = [
    "sal",
    "SAL",
    "les",
    "sales-",
    "s_w",
    "%of",
    "0%o",
    "100",
    "x_y",
    "_y",
    "caf",
    "CAF",
    "café",
    "CAFÉ",
    "afé",
    "ist",
    "İst",
    "stanbul",
    "ße",
    "strasse",
    "ab",
    "abc",
    "a",
    '"hi"',
    'y "',
    "OR NOT",
    "NOT",
    ";co",
    "本語の",
    "ǆem",
    "Ǆem",
    "kel",
    "K-k",
    "zzz",
    "e-e",
]


@pytest.fixture(scope="module")
def seeded(database_url: str) -> Iterator[tuple[str, str]]:
    user_id = f"idx-{uuid.uuid4().hex[:10]}"
    other = f"idx-{uuid.uuid4().hex[:10]}"

    async def go() -> None:
        db = Database(database_url)
        try:
            async with db.transaction(write=True) as conn:
                for n, name in enumerate(NAMES * 2):
                    owner = user_id if n < len(NAMES) else other
                    # Same creation time for pairs, so ties are broken by id.
                    stamp = f"2026-01-01T00:00:{n // 2 % 60:02d}.000Z"
                    await connections.insert(
                        conn,
                        id=ids.numeric_id(),
                        user_id=owner,
                        kind=("credential", "ip", "fqdn")[n % 3],
                        connection_name=name,
                        active=n % 4 != 0,
                        document="{}",
                        created_at=stamp,
                        updated_at=stamp,
                    )
        finally:
            await db.dispose()

    asyncio.run(go())
    yield user_id, other


async def _plain_ids(database_url: str, user_id: str, value: str, kind: str | None) -> list[str]:
    """The ids the plain predicate finds, newest first: what `contains` meant before the indexes."""
    where = [
        connection.c.user_id == user_id,
        sa.func.lower(connection.c.connection_name).contains(value.lower(), autoescape=True),
    ]
    if kind is not None:
        where.append(connection.c.kind == kind)
    stmt = (
        sa.select(connection.c.id)
        .where(*where)
        .order_by(connection.c.created_at.desc(), connection.c.id.desc())
    )
    db = Database(database_url)
    try:
        async with db.transaction() as conn:
            return list((await conn.execute(stmt)).scalars().all())
    finally:
        await db.dispose()


async def _listed(
    database_url: str, user_id: str, *, page: Page, sort: str = "-created_at", **filters: object
) -> tuple[list[str], int]:
    db = Database(database_url)
    try:
        async with db.transaction() as conn:
            result = await connections.list_(conn, user_id=user_id, page=page, sort=sort, **filters)  # type: ignore[arg-type]
            return [row["id"] for row in result.rows], result.total
    finally:
        await db.dispose()


@pytest.mark.parametrize("kind", [None, "credential"])
def test_contains_gives_what_the_plain_predicate_gives(
    database_url: str, seeded: tuple[str, str], kind: str | None
) -> None:
    user_id, _ = seeded

    async def go() -> None:
        for value in FILTERS:
            expected = await _plain_ids(database_url, user_id, value, kind)
            got, total = await _listed(
                database_url, user_id, page=Page(1, 250), kind=kind, name_contains=value
            )
            assert (got, total) == (expected, len(expected)), value
            # A later page, so that the count is a query of its own.
            got, total = await _listed(database_url, user_id, page=Page(2, 1), kind=kind, name_contains=value)
            assert (got, total) == (expected[1:2], len(expected)), value

    asyncio.run(go())


def test_contains_answers_pinned(database_url: str, seeded: tuple[str, str], backend: str) -> None:
    user_id, _ = seeded

    async def names(value: str) -> set[str]:
        got, _ = await _listed(database_url, user_id, page=Page(1, 250), name_contains=value)
        by_id = {}
        db = Database(database_url)
        try:
            async with db.transaction() as conn:
                rows = await conn.execute(
                    sa.select(connection.c.id, connection.c.connection_name).where(
                        connection.c.user_id == user_id
                    )
                )
                by_id = {row.id: row.connection_name for row in rows}
        finally:
            await db.dispose()
        return {by_id[i] for i in got}

    async def go() -> None:
        assert await names("sal") == {"Sales-East", "sales_west", "SALES"}
        # % and _ are literal characters, not wildcards.
        assert await names("%of") == {"100%off"}
        assert await names("x_y") == {"x_y"}
        assert await names("s_w") == {"sales_west"}
        # Quotes and FTS5 query syntax are plain text.
        assert await names('"hi"') == {'say "hi"'}
        assert await names("OR NOT") == {"semi;colon OR NOT"}
        # Names shorter than the filter never match it.
        assert await names("abc") == set()
        assert await names("本語の") == {"日本語の名前"}
        # ASCII folds on both engines.
        assert await names("CAF") == {"CAFÉ", "café", "Café Crème"}
        if backend == "sqlite":
            # SQLite's lower() and LIKE fold ASCII only: "CAFÉ" keeps its É.
            assert await names("café") == {"café", "Café Crème"}
            assert await names("CAFÉ") == {"café", "Café Crème"}
        else:
            assert await names("café") == {"CAFÉ", "café", "Café Crème"}

    asyncio.run(go())


@pytest.mark.parametrize(
    "sort", ["created_at", "-created_at", "connection_name", "-connection_name", "active", "-active"]
)
@pytest.mark.parametrize("kind", [None, "ip"])
def test_sorts_and_pages_are_those_of_the_plain_order(
    database_url: str, seeded: tuple[str, str], sort: str, kind: str | None
) -> None:
    user_id, _ = seeded

    async def go() -> None:
        everything, total = await _listed(database_url, user_id, page=Page(1, 250), sort=sort, kind=kind)
        column = sort.lstrip("-")
        db = Database(database_url)
        try:
            async with db.transaction() as conn:
                where = [connection.c.user_id == user_id]
                if kind is not None:
                    where.append(connection.c.kind == kind)
                rows = (await conn.execute(sa.select(connection).where(*where))).mappings().all()
        finally:
            await db.dispose()

        def key(row: sa.RowMapping) -> tuple[object, ...]:
            value = row[column]
            # NULLs first ascending, last descending (store/paging.py).
            return (value is not None, value if value is not None else "", row["created_at"], row["id"])

        expected = [r["id"] for r in sorted(rows, key=key, reverse=sort.startswith("-"))]
        if column == "connection_name":
            # Text order is the engine's collation; compare as the engine sorts, checked by pages.
            expected = everything
        assert total == len(rows)
        assert everything == expected
        pages = []
        for number in range(1, total // 7 + 2):
            got, page_total = await _listed(database_url, user_id, page=Page(number, 7), sort=sort, kind=kind)
            assert page_total == total
            pages += got
        assert pages == everything

    asyncio.run(go())


def test_counts_stay_exact_through_inserts_updates_and_deletes(database_url: str) -> None:
    user_id = f"cnt-{uuid.uuid4().hex[:10]}"

    async def go() -> None:
        db = Database(database_url)
        try:
            made = []
            async with db.transaction(write=True) as conn:
                for n in range(30):
                    made.append(ids.numeric_id())
                    stamp = ids.now()
                    await connections.insert(
                        conn,
                        id=made[-1],
                        user_id=user_id,
                        kind=("credential", "ip")[n % 2],
                        connection_name=f"count-{n}",
                        active=True,
                        document="{}",
                        created_at=stamp,
                        updated_at=stamp,
                    )
            async with db.transaction(write=True) as conn:
                for id in made[:5]:
                    await connections.delete(conn, id=id)
                await connections.update(conn, id=made[6], kind="fqdn", connection_name="renamed-one")
            async with db.transaction() as conn:
                for kind in (None, "credential", "ip", "fqdn"):
                    where = [connection.c.user_id == user_id]
                    if kind is not None:
                        where.append(connection.c.kind == kind)
                    stmt = sa.select(sa.func.count()).select_from(connection).where(*where)
                    expected = (await conn.execute(stmt)).scalar_one()
                    page = await connections.list_(conn, user_id=user_id, page=Page(2, 2), kind=kind)
                    assert (type(page.total), page.total) == (int, expected), kind
                renamed = await connections.list_(
                    conn, user_id=user_id, page=Page(1, 20), name_contains="renamed"
                )
                assert [row["id"] for row in renamed.rows] == [made[6]]
                gone = await connections.list_(
                    conn, user_id=user_id, page=Page(1, 20), name_contains="count-1"
                )
                assert made[1] not in {row["id"] for row in gone.rows}
                assert made[6] not in {row["id"] for row in gone.rows}
        finally:
            await db.dispose()

    asyncio.run(go())


def test_the_migration_indexes_a_database_that_already_holds_connections(
    fresh_url: str, backend: str
) -> None:
    """Upgrade from 0004 with rows in place, down again and up again: search and counts are whole."""
    cfg = migrate.alembic_config(fresh_url)
    migrate.upgrade(fresh_url, "0004")
    user_id = "live-account"

    async def insert_rows() -> None:
        db = Database(fresh_url)
        try:
            async with db.transaction(write=True) as conn:
                for n in range(40):
                    await connections.insert(
                        conn,
                        id=ids.numeric_id(),
                        user_id=user_id,
                        kind=("credential", "ip", "fqdn")[n % 3],
                        connection_name=None if n == 7 else f"{'sales' if n % 4 == 0 else 'office'}-{n}",
                        active=True,
                        document="{}",
                        created_at=f"2026-01-01T00:00:{n:02d}.000Z",
                        updated_at=f"2026-01-01T00:00:{n:02d}.000Z",
                    )
        finally:
            await db.dispose()

    async def check() -> None:
        db = Database(fresh_url)
        try:
            async with db.transaction() as conn:
                everything = await connections.list_(conn, user_id=user_id, page=Page(2, 3))
                assert everything.total == 40
                ips = await connections.list_(conn, user_id=user_id, page=Page(2, 3), kind="ip")
                assert ips.total == 13
                sales = await connections.list_(conn, user_id=user_id, page=Page(2, 3), name_contains="SALES")
                assert sales.total == 10
        finally:
            await db.dispose()

    asyncio.run(insert_rows())
    migrate.upgrade(fresh_url)
    asyncio.run(check())
    command.downgrade(cfg, "0004")
    migrate.upgrade(fresh_url)
    asyncio.run(check())
    if backend == "postgresql":

        async def indexes() -> dict[str, tuple[bool, str]]:
            conn = await asyncpg.connect(fresh_url)
            try:
                rows = await conn.fetch(
                    "SELECT c.relname, i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i"
                    " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'connection'::regclass"
                )
                return {r[0]: (r[1], r[2]) for r in rows}
            finally:
                await conn.close()

        found = asyncio.run(indexes())
        assert all(valid for valid, _ in found.values())
        assert "gin (lower((connection_name)::text) gin_trgm_ops)" in found["ix_connection_name_trgm"][1]
        assert (
            "connection_name NULLS FIRST" in found["ix_connection_user_id_connection_name_created_at_id"][1]
        )
        assert "ix_connection_user_id_created_at" not in found
