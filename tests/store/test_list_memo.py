"""What lists remember (store/list_memo.py: a filter's total, the rows at the edges of pages served)
never changes an answer, on both engines: every page of every order and filter equals the plainly sorted
rows, warm or cold, and a write is seen by the next list that starts after it commits, in this process
or another one (a second `Database` is a second process's memo).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from trunkline.store import access_ip_ranges, connections, ids, ips, migrate, outbound_voice_profiles
from trunkline.store.db import Database
from trunkline.store.paging import Page
from trunkline.store.schema import access_ip_range, list_version

SIZE = 1_234
SORTS = ["-created_at", "created_at", "connection_name", "-connection_name", "active", "-active"]
FILTERS: list[dict[str, Any]] = [
    {},
    {"kind": "credential"},
    {"name_contains": "sales"},  # every tenth
    {"name_contains": "0007"},  # a handful: driven by the trigram table on SQLite
    {"name_contains": "s", "kind": "ip"},  # shorter than a trigram
]
# (number, size): the first page, neighbours, pages of other sizes that start between the edges of
# pages served before, a deep one, the last page, and past the end.
PAGES = [(1, 20), (5, 20), (6, 20), (7, 20), (3, 250), (31, 7), (50, 20), (62, 20), (63, 20), (99, 20)]


def _name(i: int) -> str | None:
    if i % 97 == 0:
        return None  # the NULL names sort first ascending, last descending
    # Pairs share a name, and pairs share a stamp, so every tie-break is used.
    return f"{'sales' if i % 10 == 0 else 'office'}-{i // 2:05d}"


def _stamp(i: int) -> str:
    return f"2026-01-01T{i // 2 // 3600:02d}:{i // 2 // 60 % 60:02d}:{i // 2 % 60:02d}.000Z"


@pytest.fixture(scope="module")
def account(database_url: str) -> Iterator[str]:
    user_id = f"memo-{uuid.uuid4().hex[:10]}"

    async def go() -> None:
        db = Database(database_url)
        try:
            async with db.transaction(write=True) as conn:
                for i in range(SIZE):
                    await _insert(conn, user_id, i)
        finally:
            await db.dispose()

    asyncio.run(go())
    yield user_id


async def _insert(conn: Any, user_id: str, i: int, *, name: str | None = None) -> str:
    id = ids.numeric_id()
    await connections.insert(
        conn,
        id=id,
        user_id=user_id,
        kind=("credential", "ip", "fqdn")[i % 3],
        connection_name=name if name is not None else _name(i),
        active=i % 4 != 0,
        document="{}",
        created_at=_stamp(i),
        updated_at=_stamp(i),
    )
    return id


async def _everything(db: Database, user_id: str) -> list[dict[str, Any]]:
    """Every row of the account, read whole once: the truth the pages are checked against."""
    async with db.transaction() as conn:
        result = await connections.list_(conn, user_id=user_id, page=Page(1, 10**6))
    return [dict(row) for row in result.rows]


def _expected(rows: list[dict[str, Any]], sort: str, filters: dict[str, Any]) -> list[str]:
    """The ids `sort` and `filters` mean, sorted here in Python: NULL names first ascending and last
    descending, ties by creation, then id (docs/lists.md)."""
    kept = [
        r
        for r in rows
        if ("kind" not in filters or r["kind"] == filters["kind"])
        and (
            "name_contains" not in filters
            or (r["connection_name"] is not None and filters["name_contains"] in r["connection_name"])
        )
    ]
    descending = sort.startswith("-")
    key = sort.lstrip("-")

    def order(r: dict[str, Any]) -> tuple[Any, ...]:
        value = r[key]
        if key == "created_at":
            return (value, r["id"])
        # Ascending: (False, …) for NULL puts it first; descending reverses the whole tuple's order,
        # which puts it last.
        return ((value is not None, value if value is not None else ""), r["created_at"], r["id"])

    return [r["id"] for r in sorted(kept, key=order, reverse=descending)]


async def _page(db: Database, user_id: str, number: int, size: int, sort: str, filters: dict[str, Any]):
    async with db.transaction() as conn:
        result = await connections.list_(conn, user_id=user_id, page=Page(number, size), sort=sort, **filters)
    return [row["id"] for row in result.rows], result.total


@pytest.mark.parametrize("sort", SORTS)
def test_every_page_is_the_plainly_sorted_rows_cold_and_warm(
    database_url: str, account: str, sort: str
) -> None:
    async def go() -> None:
        db = Database(database_url)
        try:
            rows = await _everything(db, account)
            assert len(rows) == SIZE
            for filters in FILTERS:
                expected = _expected(rows, sort, filters)
                # In order (each page learns its edges, the next ones start from them), then deepest
                # first (each starts from the nearest edge learned before it), then again.
                in_order = sorted(PAGES, key=lambda p: (p[0] - 1) * p[1])
                for rounds in (in_order, in_order[::-1], PAGES):
                    for number, size in rounds:
                        got = await _page(db, account, number, size, sort, filters)
                        start = (number - 1) * size
                        want = (expected[start : start + size], len(expected))
                        assert got == want, (filters, number, size)
            assert db._memo.held > 4 * len(FILTERS)  # it did remember rows, and kept them
        finally:
            await db.dispose()

    asyncio.run(go())


def test_a_write_is_seen_by_the_next_list_here_and_in_another_process(database_url: str) -> None:
    user_id = f"memo-{uuid.uuid4().hex[:10]}"
    sort, deep = "connection_name", (8, 20)  # offset 140: past the first anchor

    async def go() -> None:
        reader, writer = Database(database_url), Database(database_url)
        try:
            async with writer.transaction(write=True) as conn:
                made = [await _insert(conn, user_id, i) for i in range(300)]

            async def check(db: Database) -> None:
                rows = await _everything(writer, user_id)
                for filters in ({}, {"name_contains": "sales"}):
                    expected = _expected(rows, sort, filters)
                    start = (deep[0] - 1) * deep[1]
                    got = await _page(db, user_id, *deep, sort, filters)
                    assert got == (expected[start : start + deep[1]], len(expected)), filters

            await check(reader)  # learned by the reader
            await check(writer)
            # Through the other Database (another process): an insert that sorts before the deep page,
            async with writer.transaction(write=True) as conn:
                await _insert(conn, user_id, 1, name="office-00000 sales")
            await check(reader)
            # a rename out of the filter and an update of the sort key,
            async with writer.transaction(write=True) as conn:
                await connections.update(conn, id=made[10], connection_name="office-renamed")
                await connections.update(conn, id=made[20], connection_name="aaa-first")
            await check(reader)
            # a delete,
            async with writer.transaction(write=True) as conn:
                await connections.delete(conn, id=made[30])
            await check(reader)
            # and the same in the reader's own process.
            async with reader.transaction(write=True) as conn:
                await connections.delete(conn, id=made[40])
                await _insert(conn, user_id, 2, name="sales-0")
            await check(reader)
            await check(writer)
        finally:
            await reader.dispose()
            await writer.dispose()

    asyncio.run(go())


def test_racing_writers_and_readers_end_with_the_exact_answer(database_url: str) -> None:
    """Readers list while writers insert and rename: every total a reader sees lies between the
    totals before and after, and once the writers are done every reader sees the exact rows."""
    user_id = f"memo-{uuid.uuid4().hex[:10]}"
    writers, each = 8, 10

    async def go() -> None:
        dbs = [Database(database_url) for _ in range(3)]
        try:
            async with dbs[0].transaction(write=True) as conn:
                for i in range(400):
                    await _insert(conn, user_id, i)
            before = len(
                _expected(await _everything(dbs[0], user_id), "-created_at", {"name_contains": "sales"})
            )
            done = asyncio.Event()
            seen: list[int] = []

            async def write(w: int) -> None:
                db = dbs[w % len(dbs)]
                for n in range(each):
                    async with db.transaction(write=True) as conn:
                        await _insert(conn, user_id, 10 * (w * each + n), name=f"sales-race-{w}-{n}")

            async def read(r: int) -> None:
                db = dbs[r % len(dbs)]
                while not done.is_set():
                    _, total = await _page(db, user_id, 7, 20, "-created_at", {"name_contains": "sales"})
                    seen.append(total)
                    await asyncio.sleep(0)

            readers = [asyncio.create_task(read(r)) for r in range(6)]
            await asyncio.gather(*(write(w) for w in range(writers)))
            done.set()
            await asyncio.gather(*readers)
            after = before + writers * each
            assert seen and all(before <= total <= after for total in seen)
            rows = await _everything(dbs[1], user_id)
            for db in dbs:
                for sort in ("-created_at", "connection_name"):
                    expected = _expected(rows, sort, {"name_contains": "sales"})
                    assert len(expected) == after
                    for number in (1, 6, 7, 10):
                        got = await _page(db, user_id, number, 20, sort, {"name_contains": "sales"})
                        assert got == (expected[(number - 1) * 20 : number * 20], after)
        finally:
            for db in dbs:
                await db.dispose()

    asyncio.run(go())


def test_accounts_never_share_what_was_learned(database_url: str) -> None:
    ours, theirs = (f"memo-{uuid.uuid4().hex[:10]}" for _ in range(2))

    async def go() -> None:
        db = Database(database_url)
        try:
            async with db.transaction(write=True) as conn:
                for i in range(250):
                    await _insert(conn, ours, i)
                for i in range(130):
                    await _insert(conn, theirs, i)
            for user_id, n in ((ours, 250), (theirs, 130)):
                for _ in range(2):
                    ids_, total = await _page(db, user_id, 6, 20, "-created_at", {"name_contains": "office"})
                    office = sum(1 for i in range(n) if (_name(i) or "").startswith("office"))
                    assert total == office
                    rows = await _everything(db, user_id)
                    assert {r["user_id"] for r in rows} == {user_id}
                    assert set(ids_) <= {r["id"] for r in rows}
        finally:
            await db.dispose()

    asyncio.run(go())


def test_the_other_lists_answer_alike_warm_and_after_writes(database_url: str) -> None:
    """IPs (by connection and port), access ranges (a cidr pattern, a created_at range) and profiles
    (a name filter, a sort): every page equals the rows sorted here, warm, and after writes through
    another process's Database."""
    user_id = f"memo-{uuid.uuid4().hex[:10]}"
    octet = uuid.uuid4().int % 200 + 20  # IP addresses and ports are unique server-wide

    async def seed(conn: Any, n: int, start: int = 0) -> None:
        for i in range(start, start + n):
            stamp = _stamp(i)
            await ips.insert(
                conn,
                id=ids.numeric_id(),
                user_id=user_id,
                connection_id=None,
                ip_address=f"10.{octet}.{i // 250}.{i % 250}",
                port=5060 + i % 3,
                created_at=stamp,
                updated_at=stamp,
            )
            await conn.execute(
                sa.insert(access_ip_range).values(
                    id=ids.numeric_id(),
                    user_id=user_id,
                    cidr_block=f"{10 + i % 7}.{i // 250}.{i % 250}.0/24",
                    status="added",
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
            await outbound_voice_profiles.insert(
                conn,
                id=ids.numeric_id(),
                user_id=user_id,
                name=_name(i + 1) or "nameless",
                enabled=i % 2 == 0,
                traffic_type="conversational",
                service_plan="global",
                usage_payment_method="rate-deck",
                document="{}",
                created_at=stamp,
                updated_at=stamp,
            )

    def truth(rows: list[dict[str, Any]], keep: Any, key: Any, descending: bool = False) -> list[str]:
        return [r["id"] for r in sorted(filter(keep, rows), key=key, reverse=descending)]

    by_creation = (lambda r: (r["created_at"], r["id"]), False)
    lists: list[tuple[Any, dict[str, Any], Any, tuple[Any, bool]]] = [
        (ips.list_, {"port": 5061}, lambda r: r["port"] == 5061, by_creation),
        (
            access_ip_ranges.list_,
            {"cidr": [("startswith", "12.")]},
            lambda r: r["cidr_block"].startswith("12."),
            by_creation,
        ),
        (
            access_ip_ranges.list_,
            {"created_at": [("gte", _stamp(100))]},
            lambda r: r["created_at"] >= _stamp(100),
            by_creation,
        ),
        (
            outbound_voice_profiles.list_,
            {"name_contains": "sales", "sort": "-name"},
            lambda r: "sales" in r["name"],
            (lambda r: (r["name"], r["created_at"], r["id"]), True),
        ),
        (
            outbound_voice_profiles.list_,
            {"sort": "enabled"},
            lambda r: True,
            (lambda r: (r["enabled"], r["created_at"], r["id"]), False),
        ),
    ]

    async def check(db: Database, rows_of: dict[Any, list[dict[str, Any]]]) -> None:
        for list_, filters, keep, (key, descending) in lists:
            expected = truth(rows_of[list_], keep, key, descending)
            for number, size in ((1, 20), (3, 20), (4, 20), (2, 50), (9, 7), (4, 20), (40, 20)):
                async with db.transaction() as conn:
                    result = await list_(conn, user_id=user_id, page=Page(number, size), **filters)
                start = (number - 1) * size
                got = ([r["id"] for r in result.rows], result.total)
                assert got == (expected[start : start + size], len(expected)), (filters, number, size)

    async def everything(db: Database) -> dict[Any, list[dict[str, Any]]]:
        out = {}
        async with db.transaction() as conn:
            for list_ in (ips.list_, access_ip_ranges.list_, outbound_voice_profiles.list_):
                result = await list_(conn, user_id=user_id, page=Page(1, 10**6))
                out[list_] = [dict(r) for r in result.rows]
        return out

    async def go() -> None:
        reader, writer = Database(database_url), Database(database_url)
        try:
            async with writer.transaction(write=True) as conn:
                await seed(conn, 240)
            await check(reader, await everything(writer))
            await check(reader, await everything(writer))  # warm
            async with writer.transaction(write=True) as conn:
                await seed(conn, 9, start=240)
            first = await everything(writer)
            async with writer.transaction(write=True) as conn:
                for list_, table in (
                    (ips.list_, ips),
                    (outbound_voice_profiles.list_, outbound_voice_profiles),
                ):
                    await table.delete(conn, id=first[list_][5]["id"])
                await conn.execute(
                    sa.delete(access_ip_range).where(
                        access_ip_range.c.id == first[access_ip_ranges.list_][7]["id"]
                    )
                )
                await outbound_voice_profiles.update(
                    conn, id=first[outbound_voice_profiles.list_][3]["id"], name="zz sales"
                )
            await check(reader, await everything(writer))
        finally:
            await reader.dispose()
            await writer.dispose()

    asyncio.run(go())


def test_the_version_migration_on_a_database_in_use(fresh_url: str) -> None:
    """Up from 0012 with rows in place: the versions start at 0 and every kind of write moves them;
    down again, writes still work without the triggers; up again, the lists are exact."""
    cfg = migrate.alembic_config(fresh_url)
    migrate.upgrade(fresh_url, "0012")
    user_id = f"memo-{uuid.uuid4().hex[:10]}"

    async def version(db: Database) -> int:
        async with db.transaction() as conn:
            stmt = sa.select(list_version.c.writes).where(
                list_version.c.table_name == "connection", list_version.c.user_id == user_id
            )
            return (await conn.execute(stmt)).scalar_one_or_none() or 0

    async def write(n: int) -> list[str]:
        db = Database(fresh_url)
        try:
            async with db.transaction(write=True) as conn:
                return [await _insert(conn, user_id, i) for i in range(n)]
        finally:
            await db.dispose()

    async def up_and_in_use() -> None:
        db = Database(fresh_url)
        try:
            assert await version(db) == 0
            sales = sum(1 for i in range(50) if "sales" in (_name(i) or ""))
            _, total = await _page(db, user_id, 2, 20, "connection_name", {"name_contains": "sales"})
            assert total == sales
            async with db.transaction(write=True) as conn:
                made = await _insert(conn, user_id, 1000)  # a sales name
            seen = [await version(db)]
            async with db.transaction(write=True) as conn:
                await connections.update(conn, id=made, connection_name="office-x")
            seen.append(await version(db))
            async with db.transaction(write=True) as conn:
                await connections.delete(conn, id=made)
            seen.append(await version(db))
            assert 0 < seen[0] < seen[1] < seen[2], seen
            _, total = await _page(db, user_id, 2, 20, "connection_name", {"name_contains": "sales"})
            assert total == sales
        finally:
            await db.dispose()

    asyncio.run(write(50))
    migrate.upgrade(fresh_url)
    asyncio.run(up_and_in_use())
    command.downgrade(cfg, "0012")
    asyncio.run(write(10))  # no trigger left behind that names the dropped table
    migrate.upgrade(fresh_url)

    async def exact() -> None:
        db = Database(fresh_url)
        try:
            rows = await _everything(db, user_id)
            assert len(rows) == 60
            expected = _expected(rows, "connection_name", {"name_contains": "sales"})
            for _ in range(2):
                got = await _page(db, user_id, 1, 4, "connection_name", {"name_contains": "sales"})
                assert got == (expected[:4], len(expected))
        finally:
            await db.dispose()

    asyncio.run(exact())


def test_requests_arriving_while_a_filter_is_counted_wait_for_that_count(
    database_url: str, account: str
) -> None:
    """32 requests at once for a filter not counted yet count it once, not once each: on PostgreSQL
    they would otherwise all count side by side."""
    counts: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "count(" in statement.lower():
            counts.append(statement)

    async def go() -> None:
        db = Database(database_url)
        engine = db._lite.engine if db._lite is not None else db._async.sync_engine  # type: ignore[union-attr]
        sa.event.listen(engine, "before_cursor_execute", seen)
        try:
            results = await asyncio.gather(
                *(_page(db, account, 3, 20, "-created_at", {"name_contains": "office"}) for _ in range(32))
            )
            assert len({total for _, total in results}) == 1
            assert len(counts) == 1, counts
        finally:
            sa.event.remove(engine, "before_cursor_execute", seen)
            await db.dispose()

    asyncio.run(go())


def test_requests_arriving_while_a_page_is_first_read_wait_for_that_read(
    database_url: str, account: str
) -> None:
    """32 requests at once for a deep page nobody read yet walk to it once: the others start from the
    row that walk learned."""
    walks: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        # The walk from the first row: an OFFSET as deep as the page, with no row-value bound.
        if "OFFSET" in statement and "(connection.connection_name, connection.created_at" not in statement:
            walks.append(statement)

    async def go() -> None:
        db = Database(database_url)
        engine = db._lite.engine if db._lite is not None else db._async.sync_engine  # type: ignore[union-attr]
        sa.event.listen(engine, "before_cursor_execute", seen)
        try:
            results = await asyncio.gather(
                *(_page(db, account, 30, 20, "connection_name", {}) for _ in range(32))
            )
            assert len({tuple(ids_) for ids_, _ in results}) == 1
            assert len(walks) == 1, walks
        finally:
            sa.event.remove(engine, "before_cursor_execute", seen)
            await db.dispose()

    asyncio.run(go())
