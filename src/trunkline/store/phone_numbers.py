"""Queries for the phone number inventory (the `phone_number` table, docs/numbers.md).

A number's `connection_id` is a column (the SIP edge routes by it, and deleting a connection sets it
to NULL); the rest of its Telnyx record is the JSON `document`. Every read gives the connection's
name beside the row, as `connection_name`, from the connection itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import RowMapping

from trunkline.store import ids
from trunkline.store.db import Conn, first_row
from trunkline.store.locks import Lock, delete_row, locking
from trunkline.store.paging import Page, PageResult, fetch_page
from trunkline.store.schema import connection, phone_number

# The name of the number's connection: NULL when it has none. Locking reads select the number's row
# alone (`locked`), so that their FOR clause can only ever apply to it.
CONNECTION_NAME = (
    sa.select(connection.c.connection_name)
    .where(connection.c.id == phone_number.c.connection_id)
    .scalar_subquery()
)

# Rows per multi-row INSERT: far inside either engine's bound-parameter limit (7 a row).
_CHUNK = 500


_WITH_NAME = sa.select(phone_number, CONNECTION_NAME.label("connection_name"))


SORTS = ("purchased_at", "phone_number", "connection_name")


@dataclass(frozen=True)
class Search:
    """What a list filters on; None (or empty) filters nothing."""

    phone_number_digits: str | None = None  # the number's digits contain these
    connection_id: str | None = None
    tag: str | None = None
    without_tags: bool = False
    status: str | None = None
    countries: Sequence[str] = field(default_factory=tuple)
    number_type: str | None = None
    customer_reference: str | None = None
    billing_group_id: str | None = None
    billing_group_null: bool = False
    connection_name_eq: str | None = None
    connection_name_contains: str | None = None
    connection_name_starts_with: str | None = None
    connection_name_ends_with: str | None = None


async def insert(conn: Conn, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _CHUNK):
        await conn.execute(sa.insert(phone_number).values(list(rows[start : start + _CHUNK])))


async def get(conn: Conn, *, user_id: str, id: str) -> RowMapping | None:
    """A number of this account, with its connection's name."""
    if not ids.is_numeric_id(id):
        return None
    stmt = _WITH_NAME.where(phone_number.c.id == id, phone_number.c.user_id == user_id)
    return (await conn.execute(stmt)).mappings().first()


# GET by id, a statement built once (as store/connections.py's `_DOCUMENT_OF_KIND`): the columns the
# record is made of, and the connection's name, read through `first_row` (on SQLite, straight on sqlite3).
_RECORD_COLUMNS = ("id", "phone_number", "connection_id", "document", "created_at", "updated_at")
_RECORD_KEYS = (*_RECORD_COLUMNS, "connection_name")
_RECORD = sa.select(
    *(phone_number.c[name] for name in _RECORD_COLUMNS), CONNECTION_NAME.label("connection_name")
).where(phone_number.c.id == sa.bindparam("id"), phone_number.c.user_id == sa.bindparam("user_id"))


async def get_record(conn: Conn, *, user_id: str, id: str) -> dict[str, Any] | None:
    """What `get` gives (the columns the record needs, and `connection_name`), as a dict: GET by id."""
    if not ids.is_numeric_id(id):
        return None
    row = await first_row(conn, _RECORD, {"id": id, "user_id": user_id})
    return None if row is None else dict(zip(_RECORD_KEYS, row, strict=True))


async def locked(conn: Conn, *, user_id: str, id: str, lock: Lock) -> RowMapping | None:
    """A number of this account (its row alone), locked as `lock` says (store/locks.py)."""
    if not ids.is_numeric_id(id):
        return None
    stmt = sa.select(phone_number).where(phone_number.c.id == id, phone_number.c.user_id == user_id)
    return (await conn.execute(locking(stmt, lock))).mappings().first()


async def connection_name(conn: Conn, *, connection_id: str | None) -> str | None:
    if connection_id is None:
        return None
    stmt = sa.select(connection.c.connection_name).where(connection.c.id == connection_id)
    name: str | None = (await conn.execute(stmt)).scalar_one_or_none()
    return name


async def find_numbers(
    conn: Conn, *, numbers: Sequence[str], lock: Lock | None = None
) -> Sequence[RowMapping]:
    """The rows holding these +E.164 numbers, in any account (numbers are unique across the server),
    in id order: the order several rows of one table are locked in (store/locks.py)."""
    if not numbers:
        return []
    stmt = (
        sa.select(phone_number)
        .where(phone_number.c.phone_number.in_(list(numbers)))
        .order_by(phone_number.c.id)
    )
    return (await conn.execute(locking(stmt, lock))).mappings().all()


async def inventory(conn: Conn, *, user_id: str | None) -> Sequence[RowMapping]:
    """Every number (of one account, when `user_id` is given), in account then number order."""
    stmt = _WITH_NAME.order_by(phone_number.c.user_id, phone_number.c.phone_number)
    if user_id is not None:
        stmt = stmt.where(phone_number.c.user_id == user_id)
    return (await conn.execute(stmt)).mappings().all()


def _document_text(dialect: str, key: str) -> sa.ColumnElement[Any]:
    """A top-level text field of the stored document (NULL when it is null or absent)."""
    if dialect == "postgresql":
        text: sa.ColumnElement[Any] = sa.cast(phone_number.c.document, postgresql.JSON)[key].astext
        return text
    extracted: sa.ColumnElement[Any] = sa.func.json_extract(phone_number.c.document, f"$.{key}")
    return extracted


def _has_tag(dialect: str, tag: str) -> sa.ColumnElement[bool]:
    if dialect == "postgresql":
        return sa.cast(phone_number.c.document, postgresql.JSONB)["tags"].contains([tag])
    each = sa.func.json_each(phone_number.c.document, "$.tags").table_valued("value")
    return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == tag))


def _no_tags(dialect: str) -> sa.ColumnElement[bool]:
    if dialect == "postgresql":
        tags = sa.cast(phone_number.c.document, postgresql.JSON)["tags"]
        return sa.func.coalesce(sa.func.json_array_length(tags), 0) == 0
    return sa.func.coalesce(sa.func.json_array_length(phone_number.c.document, "$.tags"), 0) == 0


def _where(dialect: str, user_id: str, search: Search) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = [phone_number.c.user_id == user_id]
    if search.phone_number_digits is not None:
        where.append(phone_number.c.phone_number.contains(search.phone_number_digits, autoescape=True))
    if search.connection_id is not None:
        where.append(phone_number.c.connection_id == search.connection_id)
    if search.tag is not None:
        where.append(_has_tag(dialect, search.tag))
    if search.without_tags:
        where.append(_no_tags(dialect))
    for key, value in (
        ("status", search.status),
        ("phone_number_type", search.number_type),
        ("customer_reference", search.customer_reference),
        ("billing_group_id", search.billing_group_id),
    ):
        if value is not None:
            where.append(_document_text(dialect, key) == value)
    if search.billing_group_null:
        where.append(_document_text(dialect, "billing_group_id").is_(None))
    if search.countries:
        where.append(_document_text(dialect, "country_iso_alpha2").in_(list(search.countries)))
    name = CONNECTION_NAME
    if search.connection_name_eq is not None:
        where.append(name == search.connection_name_eq)
    # Case-insensitive, `%` and `_` literal (SQLite's lower() folds ASCII letters only).
    lowered = sa.func.lower(name)
    if search.connection_name_contains is not None:
        where.append(lowered.contains(search.connection_name_contains.lower(), autoescape=True))
    if search.connection_name_starts_with is not None:
        where.append(lowered.startswith(search.connection_name_starts_with.lower(), autoescape=True))
    if search.connection_name_ends_with is not None:
        where.append(lowered.endswith(search.connection_name_ends_with.lower(), autoescape=True))
    return where


def _order(sort: str | None) -> list[Any]:
    """Telnyx's default, newest first; or ascending by a sort key, ties by creation then id."""
    if sort is None:
        return [phone_number.c.created_at.desc(), phone_number.c.id.desc()]
    ties = [phone_number.c.created_at.asc(), phone_number.c.id.asc()]
    if sort == "purchased_at":  # a number's purchased_at is when it was added: its created_at
        return ties
    if sort == "phone_number":
        return [phone_number.c.phone_number.asc(), phone_number.c.id.asc()]
    if sort == "connection_name":
        # Numbers without a connection first, on both engines (store/paging.py's rule).
        return [CONNECTION_NAME.asc().nulls_first(), *ties]
    raise ValueError(f"unknown sort {sort!r}")


async def list_(
    conn: Conn, *, user_id: str, page: Page, search: Search, sort: str | None = None
) -> PageResult:
    return await fetch_page(
        conn,
        phone_number,
        where=_where(conn.dialect, user_id, search),
        order_by=_order(sort),
        page=page,
        columns=[phone_number, CONNECTION_NAME.label("connection_name")],
    )


async def update(conn: Conn, *, id: str, **values: Any) -> None:
    await conn.execute(sa.update(phone_number).where(phone_number.c.id == id).values(**values))


async def delete(conn: Conn, *, id: str) -> bool:
    return await delete_row(conn, phone_number, id)


async def lock_on_connection(conn: Conn, *, connection_id: str) -> None:
    """Lock a connection's numbers before the connection itself, in id order (store/locks.py): for a
    writer that deletes the connection, whose foreign key then sets their connection_id to NULL."""
    stmt = (
        sa.select(phone_number.c.id)
        .where(phone_number.c.connection_id == connection_id)
        .order_by(phone_number.c.id)
    )
    await conn.execute(locking(stmt, Lock.UPDATE))
