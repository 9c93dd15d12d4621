"""Page requests and the two queries every list makes, one for the page and one for the total, and
what a list remembers of both between requests (store/list_memo.py)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from trunkline.store.db import Conn, first_value
from trunkline.store.list_memo import Anchors, Keys, Learned
from trunkline.store.schema import account_row_count, list_version


@dataclass(frozen=True, slots=True)
class Page:
    number: int = 1
    size: int = 250

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


@dataclass(frozen=True, slots=True)
class PageResult:
    rows: Sequence[RowMapping]
    total: int
    page: Page

    @property
    def total_pages(self) -> int:
        return -(-self.total // self.page.size)


@dataclass(frozen=True, slots=True)
class Order:
    """A list order: its columns (the key, created_at, id; or created_at, id), all one direction."""

    columns: tuple[sa.Column[Any], ...]
    descending: bool

    @property
    def signature(self) -> tuple[Any, ...]:
        return (*(c.name for c in self.columns), self.descending)

    def clauses(self) -> list[Any]:
        direction = sa.desc if self.descending else sa.asc
        keys: list[Any] = []
        for column in self.columns:
            key = direction(column)
            if column.nullable:
                # NULLs first ascending and last descending on both engines (PostgreSQL's default is
                # the reverse of SQLite's). Only on nullable columns: NOT NULL ones keep their index
                # order.
                key = key.nulls_last() if self.descending else key.nulls_first()
            keys.append(key)
        return keys

    def from_(self, keys: Keys) -> sa.ColumnElement[bool]:
        """The row whose sort keys are `keys` and every row after it, as a row-value comparison an
        index on the order's columns serves (https://www.sqlite.org/rowvalue.html#row_value_comparisons,
        https://www.postgresql.org/docs/current/functions-comparisons.html#ROW-WISE-COMPARISON)."""
        values = [sa.bindparam(None, v, type_=c.type) for c, v in zip(self.columns, keys, strict=True)]
        later: Callable[[Any, Any], sa.ColumnElement[bool]] = operator.le if self.descending else operator.ge
        whole = later(sa.tuple_(*self.columns), sa.tuple_(*values))
        first = self.columns[0]
        if not first.nullable:
            return whole
        # Only the key can be NULL (created_at and id never are). A comparison with NULL is never
        # true, so the NULL rows are placed by hand: before every value ascending, after every value
        # descending (`clauses`).
        rest = later(sa.tuple_(*self.columns[1:]), sa.tuple_(*values[1:]))
        if keys[0] is None:
            if self.descending:
                return sa.and_(first.is_(None), rest)
            return sa.or_(first.is_(None) & rest, first.is_not(None))
        return sa.or_(whole, first.is_(None)) if self.descending else whole

    def keys_of(self, row: RowMapping) -> Keys | None:
        """The sort keys of a fetched row, or None when the row lacks one of the order's columns."""
        try:
            return tuple(row[c.name] for c in self.columns)
        except KeyError:
            return None


def sort_order(table: sa.Table, sort: str) -> Order:
    """The order for `sort` ("name" ascending, "-name" descending), ties broken by creation, then id."""
    descending = sort.startswith("-")
    column = table.c[sort.lstrip("-")]
    if column.name == "created_at":
        # The same order without the repeated key, which keeps SQLite from sorting the ties itself.
        return Order((column, table.c.id), descending)
    return Order((column, table.c.created_at, table.c.id), descending)


def account_total(table: sa.Table, user_id: str) -> sa.Select[int]:
    """The number of `table` rows the account holds, from `account_row_count` (exact: migration 0009's
    triggers): the total of an unfiltered list, for `fetch_page`'s `count`."""
    # PostgreSQL's sum() of a bigint is a numeric: cast back, so the total is an int on both engines.
    held = sa.cast(sa.func.coalesce(sa.func.sum(account_row_count.c.n), 0), sa.BigInteger)
    return sa.select(held).where(
        account_row_count.c.table_name == table.name, account_row_count.c.user_id == user_id
    )


# The version of an account's rows of a table (migration 0013), which what a list learned is kept for.
_VERSION = sa.select(list_version.c.writes).where(
    list_version.c.table_name == sa.bindparam("table_name"), list_version.c.user_id == sa.bindparam("user_id")
)


@dataclass(frozen=True, slots=True)
class Remember:
    """Keep what this list learns (store/list_memo.py): the account, and what its filter is (any
    hashable that names the filter's values; the table and the order are added)."""

    user_id: str
    filter: Hashable


async def fetch_page(
    conn: Conn,
    table: sa.Table,
    *,
    where: Sequence[sa.ColumnElement[bool]],
    order_by: Order | Sequence[Any],
    page: Page,
    columns: Sequence[Any] | None = None,
    count: sa.Select[int] | None = None,
    by_ids: bool = False,
    remember: Remember | None = None,
    driven: Sequence[sa.ColumnElement[bool]] | None = None,
    scope: sa.Select[int] | None = None,
    _first: bool = True,
) -> PageResult:
    """One page of `table` rows matching `where`, in `order_by` order, with the total count.

    `count`, when given, is a cheaper statement for the same total (a maintained counter). `by_ids`:
    find the page's ids first on the first page too, for a `where` whose matches must be sorted (a
    trigram filter's candidates), so that the sort holds ids and keys, not whole rows (measured on
    SQLite, 100,000 of 1,000,000 rows matching: 870-1,010 → 600-680 ms).

    `remember`: keep the total and the rows at the pages' edges (store/list_memo.py), for an `Order`.
    Then `driven`, when given, is the same filter led by an index that finds its few rows (SQLite's
    trigram table, store/search.py), and `scope` counts the rows the list holds unfiltered: the filter
    is counted the driven way, and a page is read the driven way only when its matches are too few for
    walking the order's index to find a page's worth soon (`_drive`).
    """
    order = order_by if isinstance(order_by, Order) else None
    clauses = order_by.clauses() if isinstance(order_by, Order) else list(order_by)
    learned = None
    offset, limit = page.offset, page.size
    if remember is not None and order is not None:
        counted = count if count is not None else _count(table, driven if driven is not None else where)
        learned, total = await _learned(conn, table, remember, counted)
        # Start from the nearest row at or before the page that an earlier page showed.
        known, keys = learned.anchors.setdefault(order.signature, Anchors()).at_or_before(page.offset)
        if (keys is None or known != page.offset) and _first:
            # Requests for this page that arrive while it is first read wait for that read, then
            # start from the row it learned, instead of each walking to it (on PostgreSQL, side by
            # side, on every core).
            async with learned.first_read(order.signature, page.offset):
                return await fetch_page(
                    conn,
                    table,
                    where=where,
                    order_by=order_by,
                    page=page,
                    columns=columns,
                    count=count,
                    by_ids=by_ids,
                    remember=remember,
                    driven=driven,
                    scope=scope,
                    _first=False,
                )
        offset = page.offset - known
        # The total says how many rows the page holds: the walk stops at the last, rather than
        # searching on to the end for rows that are not there (a rare match's page would read them all).
        limit = min(page.size, total - page.offset)
        if limit <= 0:
            return PageResult(rows=[], total=total, page=page)
        if driven is not None and scope is not None:
            # A known row is a match the walk starts on: only the rows after it must be searched for.
            sought = offset + limit - (1 if keys is not None else 0)
            if await _drive(conn, learned, total, scope, sought):
                where, by_ids = driven, True
        if keys is not None:
            where = [*where, order.from_(keys)]
    stmt = sa.select(*(columns or [table])).order_by(*clauses)
    if (offset or by_ids) and "id" in table.c:
        # A deep page: find its ids first, from the index the order walks (covering where it holds
        # the filter and the order, as every list order's index does: store/schema.py), then read
        # only those rows; the rows of the pages before it are never fetched. `order_by` ends with
        # the id, so the page is the same as with OFFSET on the rows themselves.
        ids = sa.select(table.c.id).where(*where).order_by(*clauses).limit(limit).offset(offset)
        stmt = stmt.where(table.c.id.in_(ids))
    else:
        stmt = stmt.where(*where).limit(limit)
    rows = (await conn.execute(stmt)).mappings().all()
    if learned is not None and order is not None and rows:
        # The page's first and last rows: the same page again, the next one, or one near them, starts
        # there.
        for position, row in ((page.offset, rows[0]), (page.offset + len(rows) - 1, rows[-1])):
            if (keys := order.keys_of(row)) is not None:
                conn.memo.anchor(learned, order.signature, position, keys)
    if learned is not None:
        return PageResult(rows=rows, total=total, page=page)  # the total was known before the page
    if page.number == 1 and len(rows) < page.size:
        total = len(rows)  # the whole result fits on the first page: no second query needed
    else:
        total = (await conn.execute(count if count is not None else _count(table, where))).scalar_one()
    return PageResult(rows=rows, total=total, page=page)


def _count(table: sa.Table, where: Sequence[sa.ColumnElement[bool]]) -> sa.Select[int]:
    return sa.select(sa.func.count()).select_from(table).where(*where)


async def _learned(
    conn: Conn, table: sa.Table, remember: Remember, count: sa.Select[int]
) -> tuple[Learned, int]:
    """What this process knows of the list at the account's current version, its total counted now if
    it was not known yet. The version is read first (store/list_memo.py says why)."""
    version = await first_value(conn, _VERSION, {"table_name": table.name, "user_id": remember.user_id})
    learned = conn.memo.learned((table.name, remember.user_id, remember.filter), version or 0)
    total = learned.total
    if total is None:
        async with learned.counting:
            total = learned.total
            if total is None:
                total = learned.total = (await conn.execute(count)).scalar_one()
    return learned, total


async def _drive(conn: Conn, learned: Learned, total: int, scope: sa.Select[int], sought: int) -> bool:
    """Whether `sought` matches of a filter with `total` are cheaper found from the narrowing index
    (every match, sorted: about `total` rows) than by walking the order's index and testing each row
    (about `sought` / the matches' share of the scope's rows). The scope's size is read once per
    version, as the total is."""
    if learned.held is None:
        learned.held = (await conn.execute(scope)).scalar_one()
    return total * total <= sought * learned.held
