"""Migration 0012's `profile_connection_count` stays equal to a GROUP BY over the connections, on both
engines: through inserts, deletes and every kind of profile change, through concurrent writers (a real
race on PostgreSQL, which must neither deadlock nor lose a change), and through an upgrade of a
database that already holds connections, a downgrade and an upgrade again.

Each check compares the counter, whole, with the plain count it replaces (store/connections.py
`count_by_profile` read a GROUP BY before), as tests/store/test_more_list_indexes.py compares totals.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from alembic import command

from trunkline.store import connections, ids, migrate
from trunkline.store import outbound_voice_profiles as profiles
from trunkline.store.db import Conn, Database
from trunkline.store.schema import connection, profile_connection_count

# Writers in the race: transactions that each add connections to one profile, and tasks whose
# transactions each move one connection, as a PATCH does (resources/connections).
INSERTERS = 16
INSERTS_EACH = 6
MOVERS = 8
MOVES_EACH = 12


def _run(database_url: str, body: Callable[[Conn], Awaitable[Any]], *, write: bool = False) -> Any:
    async def go() -> Any:
        db = Database(database_url)
        try:
            async with db.transaction(write=write) as conn:
                return await body(conn)
        finally:
            await db.dispose()

    return asyncio.run(go())


async def _profile(conn: Conn, user_id: str) -> str:
    id, stamp = ids.numeric_id(), ids.now()
    await profiles.insert(
        conn,
        id=id,
        user_id=user_id,
        name=f"profile-{id}",
        enabled=True,
        traffic_type="conversational",
        service_plan="global",
        usage_payment_method="rate-deck",
        concurrent_call_limit=None,
        document="{}",
        created_at=stamp,
        updated_at=stamp,
    )
    return id


def _connection_row(user_id: str, profile: str | None) -> dict[str, Any]:
    stamp = ids.now()
    return {
        "id": ids.numeric_id(),
        "user_id": user_id,
        "kind": "credential",
        "connection_name": None,
        "active": True,
        "outbound_voice_profile_id": profile,
        "document": "{}",
        "created_at": stamp,
        "updated_at": stamp,
    }


async def _connection(conn: Conn, user_id: str, profile: str | None) -> str:
    row = _connection_row(user_id, profile)
    await connections.insert(conn, **row)
    return str(row["id"])


async def _truth(conn: Conn) -> dict[str, int]:
    """The plain count: a GROUP BY over every connection that names a profile."""
    column = connection.c.outbound_voice_profile_id
    stmt = sa.select(column, sa.func.count()).where(column.is_not(None)).group_by(column)
    return {row[0]: int(row[1]) for row in (await conn.execute(stmt)).all()}


async def _assert_exact(conn: Conn, watched: Sequence[str]) -> dict[str, int]:
    """The whole counter (its zeros aside) is the plain count, and `count_by_profile` reads it."""
    truth = await _truth(conn)
    kept = {
        row[0]: int(row[1])
        for row in (
            await conn.execute(sa.select(profile_connection_count).where(profile_connection_count.c.n != 0))
        )
    }
    assert kept == truth
    counted = await connections.count_by_profile(conn, profile_ids=watched)
    assert {p: counted.get(p, 0) for p in watched} == {p: truth.get(p, 0) for p in watched}
    return {p: truth.get(p, 0) for p in watched}


def test_the_counter_follows_inserts_moves_and_deletes(database_url: str) -> None:
    user_id = f"pcc-{uuid.uuid4().hex[:10]}"

    async def body(conn: Conn) -> None:
        a, b, c, d = [await _profile(conn, user_id) for _ in range(4)]
        watched = [a, b, c, d]
        on_a = [await _connection(conn, user_id, a) for _ in range(5)]
        on_b = [await _connection(conn, user_id, b) for _ in range(3)]
        unset = [await _connection(conn, user_id, None) for _ in range(2)]
        assert await _assert_exact(conn, watched) == {a: 5, b: 3, c: 0, d: 0}

        await connections.update(conn, id=on_a[0], outbound_voice_profile_id=b)  # to another profile
        await connections.update(conn, id=on_b[0], outbound_voice_profile_id=None)  # to none
        await connections.update(conn, id=unset[0], outbound_voice_profile_id=c)  # from none
        await connections.update(conn, id=on_a[1], outbound_voice_profile_id=a)  # to the same one
        await connections.update(conn, id=on_a[2], connection_name="renamed")  # another column
        assert await _assert_exact(conn, watched) == {a: 4, b: 3, c: 1, d: 0}

        # Several rows in one statement, in both directions at once.
        await conn.execute(
            sa.update(connection)
            .where(connection.c.id.in_([on_a[3], on_b[1], unset[1]]))
            .values(outbound_voice_profile_id=sa.case((connection.c.id == on_b[1], a), else_=d))
        )
        assert await _assert_exact(conn, watched) == {a: 4, b: 2, c: 1, d: 2}
        await conn.execute(
            sa.insert(connection).values([_connection_row(user_id, p) for p in (c, c, d, None)])
        )
        assert await _assert_exact(conn, watched) == {a: 4, b: 2, c: 3, d: 3}

        assert await connections.delete(conn, id=on_a[4])
        assert await connections.delete(conn, id=on_b[0])  # names no profile now
        doomed = sa.select(connection.c.id).where(connection.c.outbound_voice_profile_id == c)
        await conn.execute(sa.delete(connection).where(connection.c.id.in_(doomed)))
        assert await _assert_exact(conn, watched) == {a: 3, b: 2, c: 0, d: 3}

        # A profile goes once no connection names it, and its counter row with it (ON DELETE CASCADE).
        for id in (on_a[0], on_b[2]):
            await connections.update(conn, id=id, outbound_voice_profile_id=a)
        assert await _assert_exact(conn, watched) == {a: 5, b: 0, c: 0, d: 3}
        assert await profiles.delete(conn, id=b)
        assert await profiles.delete(conn, id=c)
        left = sa.select(profile_connection_count.c.outbound_voice_profile_id).where(
            profile_connection_count.c.outbound_voice_profile_id.in_([b, c])
        )
        assert (await conn.execute(left)).all() == []
        assert await _assert_exact(conn, watched) == {a: 5, b: 0, c: 0, d: 3}

    _run(database_url, body, write=True)

    async def committed(conn: Conn) -> None:
        await _assert_exact(conn, [])

    _run(database_url, committed)


def test_concurrent_creates_and_moves_leave_the_counter_exact(database_url: str, backend: str) -> None:
    """Writers at once, each transaction on a connection of its own: on PostgreSQL they contend for the
    same two counter rows (a SQLite writer holds the database's write lock, store/sqlite.py)."""
    user_id = f"race-{uuid.uuid4().hex[:10]}"

    async def seed(conn: Conn) -> tuple[str, str, list[list[str]]]:
        a, b = await _profile(conn, user_id), await _profile(conn, user_id)
        moved = [
            [await _connection(conn, user_id, (a, b)[(m + k) % 2]) for k in range(3)] for m in range(MOVERS)
        ]
        return a, b, moved

    a, b, moved = _run(database_url, seed, write=True)
    pg = backend == "postgresql"

    async def race() -> None:
        # A pool per writer on PostgreSQL, so that every one of them holds a connection of its own.
        writers = INSERTERS + MOVERS
        dbs = [Database(database_url) for _ in range(writers)] if pg else [Database(database_url)] * writers
        # All begun before any writes, so that the writes overlap; on SQLite transactions take turns.
        start = asyncio.Barrier(writers) if pg else None

        async def begun(conn: Conn) -> None:
            await conn.execute(sa.select(sa.literal(1)))
            if start is not None:
                await start.wait()

        async def inserter(db: Database) -> None:
            async with db.transaction(write=True) as conn:
                await begun(conn)
                for _ in range(INSERTS_EACH):
                    await _connection(conn, user_id, a)
                    await asyncio.sleep(0)

        async def mover(db: Database, mine: list[str], m: int) -> None:
            first = True
            for k in range(MOVES_EACH):
                id = mine[k % len(mine)]
                target = (a, b, None)[(m + k) % 3]
                async with db.transaction(write=True) as conn:
                    if first:
                        await begun(conn)
                        first = False
                    await connections.update(conn, id=id, outbound_voice_profile_id=target)
                await asyncio.sleep(0)

        try:
            await asyncio.gather(
                *(inserter(db) for db in dbs[:INSERTERS]),
                *(
                    mover(db, mine, m)
                    for m, (db, mine) in enumerate(zip(dbs[INSERTERS:], moved, strict=True))
                ),
            )
        finally:
            for db in set(dbs):
                await db.dispose()

    asyncio.run(race())

    async def check(conn: Conn) -> None:
        counts = await _assert_exact(conn, [a, b])
        column = connection.c.outbound_voice_profile_id
        mine = sa.select(sa.func.count()).where(connection.c.user_id == user_id, column.in_([a, b]))
        assert sum(counts.values()) == (await conn.execute(mine)).scalar_one()
        assert counts[a] >= INSERTERS * INSERTS_EACH

    _run(database_url, check)


def _objects(url: str, backend: str) -> set[str]:
    """The migration's table, triggers and (PostgreSQL) functions that the database holds."""
    if backend == "sqlite":

        async def listed(conn: Conn) -> set[str]:
            stmt = sa.text("SELECT name FROM sqlite_master WHERE name LIKE 'profile_connection_count%'")
            return {row[0] for row in (await conn.execute(stmt)).all()}

        return set(_run(url, listed))

    async def pg() -> set[str]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT relname FROM pg_class WHERE relname = 'profile_connection_count'"
                " UNION ALL SELECT tgname FROM pg_trigger WHERE tgname LIKE 'profile_connection_count%'"
                " UNION ALL SELECT proname FROM pg_proc WHERE proname LIKE 'profile_connection_count%'"
            )
            return {r[0] for r in rows}
        finally:
            await conn.close()

    return asyncio.run(pg())


def test_the_migration_counts_a_database_that_already_holds_connections(fresh_url: str, backend: str) -> None:
    """Upgrade from 0011 with connections in place, down to 0011, change them, up again: exact each time."""
    cfg = migrate.alembic_config(fresh_url)
    migrate.upgrade(fresh_url, "0011")
    user_id = "live-account"
    made: dict[str, Any] = {}

    async def insert_rows(conn: Conn) -> None:
        made["profiles"] = [await _profile(conn, user_id) for _ in range(3)]
        made["connections"] = [
            await _connection(conn, user_id, (*made["profiles"], None)[n % 4]) for n in range(30)
        ]

    async def check(conn: Conn) -> None:
        made["counts"] = await _assert_exact(conn, made["profiles"])

    _run(fresh_url, insert_rows, write=True)
    migrate.upgrade(fresh_url)
    _run(fresh_url, check)
    p0, p1, p2 = made["profiles"]
    assert made["counts"] == {p0: 8, p1: 8, p2: 7}
    triggers = {f"profile_connection_count_{event}" for event in ("insert", "delete", "update")}
    functions = (
        {f"profile_connection_count_{f}" for f in ("add", "remove", "move")}
        if backend == "postgresql"
        else set()
    )
    assert _objects(fresh_url, backend) == {"profile_connection_count", *triggers, *functions}

    command.downgrade(cfg, "0011")
    assert _objects(fresh_url, backend) == set()

    async def change_rows(conn: Conn) -> None:
        # Writes the counter does not see (no triggers at 0011): the next upgrade's backfill must.
        for id in made["connections"][:4]:
            await connections.update(conn, id=id, outbound_voice_profile_id=p2)
        assert await connections.delete(conn, id=made["connections"][4])
        await _connection(conn, user_id, p1)

    _run(fresh_url, change_rows, write=True)
    migrate.upgrade(fresh_url)
    _run(fresh_url, check)
    assert made["counts"] == {p0: 6, p1: 8, p2: 10}
    assert _objects(fresh_url, backend) == {"profile_connection_count", *triggers, *functions}
