"""Queries for call records (the `call_record` table, filled by the SIP edge): the detail-record search,
a connection's active calls, and the newest records for `trunkline calls list`.

Timestamps are stored as fixed-width ISO-8601 UTC text (store/schema.py), so every time bound here is
text in the same format, compared as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from trunkline.store.db import Conn
from trunkline.store.paging import Page, PageResult, fetch_page
from trunkline.store.schema import call_record, connection

FINISHED = "finished"
# A record's `status`, trunkline's mapping of its state (docs/calls.md):
#   in-progress  not finished yet (ringing or answered)
#   completed    finished after it was answered
#   rejected     finished unanswered, refused by trunkline's edge with a Telnyx D-code (e.g. D13)
#   failed       finished unanswered otherwise: busy, no answer, cancelled, an error upstream
STATUSES = ("completed", "failed", "rejected", "in-progress")
SORTABLE = ("started_at", "finished_at", "answered_at")

c = call_record.c
# The connection's current name; null once the connection is gone (records outlive it). Matched on the
# account too, so a record never shows a name from another account.
CONNECTION_NAME = (
    sa.select(connection.c.connection_name)
    .where(connection.c.id == c.connection_id, connection.c.user_id == c.user_id)
    .scalar_subquery()
    .label("connection_name")
)
COLUMNS = (call_record, CONNECTION_NAME)
# Not finished, as two ranges rather than `!=`: both engines then read only the unfinished entries of
# ix_call_record_connection_id_state instead of every record the connection ever had.
NOT_FINISHED = sa.or_(c.state < FINISHED, c.state > FINISHED)


def status_of(row: RowMapping | Mapping[str, Any]) -> str:
    """The status of one record (the mapping above); `status_condition` is the same rule in SQL."""
    if row["state"] != FINISHED:
        return "in-progress"
    if row["answered_at"] is not None:
        return "completed"
    return "rejected" if row["d_code"] is not None else "failed"


def status_condition(status: str) -> sa.ColumnElement[bool]:
    if status == "in-progress":
        return NOT_FINISHED
    finished = c.state == FINISHED
    if status == "completed":
        return sa.and_(finished, c.answered_at.is_not(None))
    if status == "rejected":
        return sa.and_(finished, c.answered_at.is_(None), c.d_code.is_not(None))
    if status == "failed":
        return sa.and_(finished, c.answered_at.is_(None), c.d_code.is_(None))
    raise ValueError(f"unknown status {status!r}")


@dataclass(frozen=True, slots=True)
class Bounds:
    """Time bounds on one timestamp column, each a stored-format timestamp or None."""

    gte: str | None = None
    gt: str | None = None
    lte: str | None = None
    lt: str | None = None

    def conditions(self, column: sa.ColumnElement[Any]) -> list[sa.ColumnElement[bool]]:
        found = []
        if self.gte is not None:
            found.append(column >= self.gte)
        if self.gt is not None:
            found.append(column > self.gt)
        if self.lte is not None:
            found.append(column <= self.lte)
        if self.lt is not None:
            found.append(column < self.lt)
        return found


@dataclass(frozen=True, slots=True)
class Search:
    """What a search matches; every field that is set must hold. `user_id` None: every account (the CLI)."""

    user_id: str | None
    started_at: Sequence[Bounds] = ()
    finished_at: Sequence[Bounds] = ()
    answered_at: Sequence[Bounds] = ()
    equals: Sequence[tuple[str, str]] = ()  # (column name, value)
    status: str | None = None

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = []
        if self.user_id is not None:
            where.append(c.user_id == self.user_id)
        for name, bounds in (
            ("started_at", self.started_at),
            ("finished_at", self.finished_at),
            ("answered_at", self.answered_at),
        ):
            for bound in bounds:
                where += bound.conditions(c[name])
        where += [c[name] == value for name, value in self.equals]
        if self.status is not None:
            where.append(status_condition(self.status))
        return where


def order_by(sort: Sequence[tuple[str, bool]]) -> list[Any]:
    """ORDER BY for (column, descending) keys, ties broken by id in the first key's direction: the
    default, started_at descending, is then ix_call_record_user_id_started_at_id read backwards.
    Nullable columns put NULLs first ascending and last descending on both engines (store/paging.py)."""
    keys: list[Any] = []
    for name, descending in sort:
        column = c[name]
        key = sa.desc(column) if descending else sa.asc(column)
        if column.nullable:
            key = key.nulls_last() if descending else key.nulls_first()
        keys.append(key)
    first_descending = sort[0][1] if sort else True
    keys.append(sa.desc(c.id) if first_descending else sa.asc(c.id))
    return keys


def search_statement(search: Search, sort: Sequence[tuple[str, bool]], limit: int) -> sa.Select[Any]:
    """The first page's statement: what `search` runs for page 1 (and what tests EXPLAIN)."""
    return sa.select(*COLUMNS).where(*search.conditions()).order_by(*order_by(sort)).limit(limit)


async def search(conn: Conn, search: Search, *, sort: Sequence[tuple[str, bool]], page: Page) -> PageResult:
    """One page of matching records (with `connection_name`) and the exact total."""
    return await fetch_page(
        conn, call_record, where=search.conditions(), order_by=order_by(sort), page=page, columns=COLUMNS
    )


async def newest(conn: Conn, search: Search, *, limit: int) -> Sequence[RowMapping]:
    """The `limit` newest matching records, newest first (no total: the CLI's list)."""
    stmt = search_statement(search, [("started_at", True)], limit)
    rows: Sequence[RowMapping] = (await conn.execute(stmt)).mappings().all()
    return rows


ACTIVE_ORDER = (c.started_at, c.id)


def active_conditions(*, user_id: str, connection_id: str) -> list[sa.ColumnElement[bool]]:
    """A connection's unfinished calls. The account is matched as `user_id || ''`, which no index
    serves (only a bare column compared with a value can use one, https://www.sqlite.org/optoverview.html):
    with a plain `user_id = ?`, SQLite's planner walks the account's whole history by
    ix_call_record_user_id_started_at_id to save a sort, instead of reading the connection's few open
    entries in ix_call_record_connection_id_state. Both engines then read only those entries."""
    return [c.connection_id == connection_id, NOT_FINISHED, c.user_id.concat("") == user_id]


async def active_on_connection(conn: Conn, *, user_id: str, connection_id: str, page: Page) -> PageResult:
    """One page of a connection's unfinished calls, oldest first, and their total."""
    where = active_conditions(user_id=user_id, connection_id=connection_id)
    return await fetch_page(conn, call_record, where=where, order_by=ACTIVE_ORDER, page=page)
