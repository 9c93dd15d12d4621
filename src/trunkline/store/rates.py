"""Queries for the rate deck (tables `rate` and `rate_deck`): one deck for the whole server.

A deck is replaced whole. Its rates are first staged, batch after batch, in a temporary table private to
the connection (`stage`, `stage_rates`), where repeated prefixes show up with the line they first came
from; then one transaction swaps the deck (`replace_from_stage`): it deletes the old rates and copies
the staged ones in with a single statement, so the deck's writers wait only for that copy, not for the
file to be read. `replace_deck` does it all in the caller's transaction. Readers, the SIP edge among
them, see the old deck until that transaction commits and the new one after, never a mix or an empty
table: on SQLite a reader keeps the snapshot it began with while a writer works
(https://www.sqlite.org/wal.html), on PostgreSQL a statement sees only what was committed before it
began (https://www.postgresql.org/docs/current/transaction-iso.html#XACT-READ-COMMITTED).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

import orjson
import sqlalchemy as sa

from trunkline.rating import Rate, candidate_prefixes
from trunkline.store import ids
from trunkline.store.db import Conn, insert_on_conflict
from trunkline.store.schema import rate, rate_deck

# Rates per batch: a batch is all the memory an import holds, however long the deck.
BATCH = 5_000
DECK_ID = 1


@dataclass(frozen=True, slots=True)
class DeckInfo:
    rates: int
    source: str | None
    imported_at: str


class DuplicatePrefix(ValueError):
    """`replace_deck` was given one prefix twice."""

    def __init__(self, prefix: str) -> None:
        super().__init__(f"prefix {prefix!r} is in the deck twice")
        self.prefix = prefix


async def deck_info(conn: Conn) -> DeckInfo | None:
    """The loaded deck's size, source and import time; None when no deck is loaded (rate rules off)."""
    stmt = sa.select(rate_deck.c.rates, rate_deck.c.source, rate_deck.c.imported_at).where(
        rate_deck.c.id == DECK_ID
    )
    row = (await conn.execute(stmt)).first()
    return None if row is None else DeckInfo(rates=row[0], source=row[1], imported_at=row[2])


async def _lock(conn: Conn) -> None:
    # Two imports (or an import and a clear) at once would each delete what they see and insert into
    # the other's rows. SHARE ROW EXCLUSIVE conflicts with itself and with every write, not with the
    # ACCESS SHARE of a plain SELECT, so writers of the deck queue while the edge reads on
    # (https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES). SQLite needs
    # nothing: a writer holds the database's write lock from BEGIN IMMEDIATE (store/sqlite.py).
    if conn.dialect == "postgresql":
        await conn.execute(sa.text("LOCK TABLE rate IN SHARE ROW EXCLUSIVE MODE"))


async def _delete_all(conn: Conn) -> int | None:
    """Delete the deck in the caller's transaction; the number of rates it had, None when none."""
    await _lock(conn)
    previous = await deck_info(conn)
    # DELETE, not TRUNCATE: TRUNCATE takes an ACCESS EXCLUSIVE lock (the edge's reads would wait for
    # the swap) and is not MVCC-safe, so a reader's older snapshot would find the table empty
    # (https://www.postgresql.org/docs/current/sql-truncate.html).
    await conn.execute(sa.delete(rate))
    await conn.execute(sa.delete(rate_deck))
    return None if previous is None else previous.rates


# The staging table. A TEMP table belongs to one connection and vanishes with it: on PostgreSQL it also
# goes at the end of the transaction that made it (ON COMMIT DROP,
# https://www.postgresql.org/docs/current/sql-createtable.html), since a pooled connection outlives the
# command; on SQLite it lives in the connection's own temporary database
# (https://www.sqlite.org/lang_createtable.html), whose writes take no lock on the database file, so
# rates can be staged outside the write lock.
_STAGE_COLUMNS = (
    "prefix VARCHAR(15) PRIMARY KEY, rate VARCHAR(32) NOT NULL, description VARCHAR(255),"
    " line INTEGER NOT NULL"
)
_STAGE = {
    "sqlite": [
        "DROP TABLE IF EXISTS temp.rate_import",
        f"CREATE TEMP TABLE rate_import ({_STAGE_COLUMNS})",
    ],
    "postgresql": [f"CREATE TEMP TABLE rate_import ({_STAGE_COLUMNS}) ON COMMIT DROP"],
}
# A batch travels as one JSON parameter and is unpacked by the database: one statement of one
# parameter per batch, compiled once, where a multi-row VALUES would be compiled anew for every batch
# (measured: ten times slower) and the Conn protocol takes one parameter set, not executemany's list.
# SQLite's JSON functions are built in (https://www.sqlite.org/json1.html), as migration 0006's views
# already require; PostgreSQL's are in the core (https://www.postgresql.org/docs/current/functions-json.html).
_STAGED = {
    "sqlite": sa.text(
        "SELECT prefix, line FROM rate_import WHERE prefix IN (SELECT value FROM json_each(:prefixes))"
    ),
    "postgresql": sa.text(
        "SELECT prefix, line FROM rate_import"
        " WHERE prefix IN (SELECT json_array_elements_text(CAST(:prefixes AS json)))"
    ),
}
_STAGE_INSERT = {
    "sqlite": sa.text(
        "INSERT INTO rate_import (prefix, rate, description, line) SELECT json_extract(value, '$[0]'),"
        " json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]')"
        " FROM json_each(:rows) WHERE true ON CONFLICT DO NOTHING"
    ),
    "postgresql": sa.text(
        "INSERT INTO rate_import (prefix, rate, description, line)"
        " SELECT r ->> 0, r ->> 1, r ->> 2, CAST(r ->> 3 AS INTEGER)"
        " FROM json_array_elements(CAST(:rows AS json)) AS r ON CONFLICT DO NOTHING"
    ),
}
# In prefix order: the primary key's index is then built front to back.
_COPY = sa.text(
    "INSERT INTO rate (prefix, rate, description)"
    " SELECT prefix, rate, description FROM rate_import ORDER BY prefix"
)


@dataclass(frozen=True, slots=True)
class Repeat:
    """A staged rate whose prefix an earlier one has: its line, and the earlier one's."""

    line: int
    first_line: int
    prefix: str


async def stage(conn: Conn) -> None:
    """Make this connection's staging table, empty, for a new deck (see `_STAGE`)."""
    for statement in _STAGE[conn.dialect]:
        await conn.execute(sa.text(statement))


async def stage_rates(conn: Conn, batch: Sequence[tuple[int, Rate]]) -> list[Repeat]:
    """Stage one batch of (line, rate), at most BATCH of them, each rate as `trunkline.rating` parses it;
    the lines must differ.

    Returns the rates whose prefix is staged already (from an earlier batch, or earlier in this one),
    which are not staged again. Memory holds one batch, however long the deck. A good batch is one
    statement; only when fewer rows went in than were given does a second one ask which were there.
    """
    if len(batch) > BATCH:
        raise ValueError(f"at most {BATCH} rates a batch, got {len(batch)}")
    first: dict[str, tuple[int, Rate]] = {}
    repeats: list[Repeat] = []
    for line, item in batch:
        earlier = first.setdefault(item.prefix, (line, item))
        if earlier[0] != line:
            repeats.append(Repeat(line, earlier[0], item.prefix))
    rows = [[*item, line] for line, item in first.values()]
    if not rows:
        return repeats
    added = (await conn.execute(_STAGE_INSERT[conn.dialect], {"rows": orjson.dumps(rows).decode()})).rowcount
    if added < len(rows):
        # A staged row that is not this batch's came from an earlier batch: it kept its place.
        probe = {"prefixes": orjson.dumps(list(first)).decode()}
        for prefix, line in await conn.execute(_STAGED[conn.dialect], probe):
            if line != first[prefix][0]:
                repeats.append(Repeat(first[prefix][0], line, prefix))
    return sorted(repeats, key=lambda repeat: repeat.line)


@dataclass(frozen=True, slots=True)
class DeckChange:
    previous: int | None
    rates: int


async def replace_from_stage(conn: Conn, *, source: str | None) -> DeckChange:
    """Swap the deck for the staged rates, in the caller's (write) transaction: from its commit on,
    rate rules are on with the new deck. ValueError when nothing is staged: no deck at all
    (`clear_deck`) is how rate rules are turned off."""
    staged = (await conn.execute(sa.text("SELECT COUNT(*) FROM rate_import"))).scalar_one()
    if not staged:
        raise ValueError("a deck needs at least one rate; clear the deck to turn rate rules off")
    previous = await _delete_all(conn)
    await conn.execute(_COPY)
    values = {"rates": staged, "source": None if source is None else source[:255], "imported_at": ids.now()}
    insert = insert_on_conflict(conn, rate_deck).values(id=DECK_ID, **values)
    await conn.execute(
        insert.on_conflict_do_update(
            index_elements=[rate_deck.c.id], set_={name: insert.excluded[name] for name in values}
        )
    )
    if conn.dialect == "sqlite":
        await conn.execute(sa.text("DROP TABLE temp.rate_import"))
    return DeckChange(previous=previous, rates=staged)


async def replace_deck(conn: Conn, rates: Iterable[Rate], *, source: str | None) -> DeckChange:
    """Replace the whole deck with `rates`, all in the caller's write transaction (roll it back on
    error). Raises DuplicatePrefix at a prefix given twice, and ValueError for an empty deck."""
    await stage(conn)
    batch: list[tuple[int, Rate]] = []
    for position, item in enumerate(rates, start=1):
        batch.append((position, item))
        if len(batch) == BATCH:
            if repeats := await stage_rates(conn, batch):
                raise DuplicatePrefix(repeats[0].prefix)
            batch.clear()
    if batch and (repeats := await stage_rates(conn, batch)):
        raise DuplicatePrefix(repeats[0].prefix)
    return await replace_from_stage(conn, source=source)


async def clear_deck(conn: Conn) -> int | None:
    """Remove the deck: rate rules off. Returns how many rates it had, None when none was loaded."""
    return await _delete_all(conn)


async def lookup(conn: Conn, digits: str) -> Rate | None:
    """The rate of the longest prefix of `digits` in the deck, None when none matches.

    One query: the primary key index answers the IN list of the number's 15 or fewer prefixes.
    """
    candidates = candidate_prefixes(digits)
    if not candidates:
        return None
    stmt = (
        sa.select(rate.c.prefix, rate.c.rate, rate.c.description)
        .where(rate.c.prefix.in_(candidates))
        .order_by(sa.func.length(rate.c.prefix).desc())
        .limit(1)
    )
    row = (await conn.execute(stmt)).first()
    return None if row is None else Rate(row[0], row[1], row[2])


def _starting_with(digits: str) -> sa.ColumnElement[bool]:
    """Prefixes that start with `digits`, as a range on the primary key so that both engines read it
    from the index: from `digits` up to the next run of digits as long or shorter (44: up to 45; 4499:
    up to 45; 99: no end). Made of digits only, so it holds under any collation PostgreSQL's database
    may have, where punctuation such as ':' (the character after '9' in ASCII) need not sort after
    digits."""
    stem = digits.rstrip("9")
    if not stem:
        return rate.c.prefix >= digits
    return sa.and_(rate.c.prefix >= digits, rate.c.prefix < stem[:-1] + str(int(stem[-1]) + 1))


async def list_rates(
    conn: Conn, *, prefix: str | None = None, after: str | None = None, limit: int | None = None
) -> list[Rate]:
    """Rates in prefix order: those starting with `prefix` (all when None), after the prefix `after`."""
    stmt = sa.select(rate.c.prefix, rate.c.rate, rate.c.description).order_by(rate.c.prefix)
    if prefix:
        stmt = stmt.where(_starting_with(prefix))
    if after is not None:
        stmt = stmt.where(rate.c.prefix > after)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [Rate(row[0], row[1], row[2]) for row in (await conn.execute(stmt)).all()]


async def iter_rates(
    conn: Conn, *, prefix: str | None = None, limit: int | None = None, page: int = BATCH
) -> AsyncIterator[tuple[str, Rate]]:
    """Rates in prefix order, a page at a time (a deck of a million rates is never all in memory), each
    with the `imported_at` of the deck it belongs to.

    Each page is one statement, which reads the rates and the deck's stamp from one snapshot; on
    PostgreSQL, where every statement outside a write transaction has a snapshot of its own, a stamp
    that changes from one page to the next tells the caller that the deck was replaced meanwhile.
    """
    after: str | None = None
    left = limit
    while left is None or left > 0:
        size = page if left is None else min(page, left)
        stmt = (
            sa.select(rate.c.prefix, rate.c.rate, rate.c.description, rate_deck.c.imported_at)
            .select_from(rate.join(rate_deck, rate_deck.c.id == DECK_ID))
            .order_by(rate.c.prefix)
            .limit(size)
        )
        if prefix:
            stmt = stmt.where(_starting_with(prefix))
        if after is not None:
            stmt = stmt.where(rate.c.prefix > after)
        rows = (await conn.execute(stmt)).all()
        for row in rows:
            yield row[3], Rate(row[0], row[1], row[2])
        if len(rows) < size:
            return
        after = rows[-1][0]
        if left is not None:
            left -= len(rows)
