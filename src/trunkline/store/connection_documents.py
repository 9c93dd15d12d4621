"""GET of a connection by id whatever its kind (`/v2/connections/{id}`): the stored document, read with
one statement built once, as store/connections.py reads a connection of one kind (`get_document`)."""

from __future__ import annotations

import sqlalchemy as sa

from trunkline.store import ids
from trunkline.store.db import Conn, first_value
from trunkline.store.schema import connection

_DOCUMENT = sa.select(connection.c.document).where(
    connection.c.id == sa.bindparam("id"), connection.c.user_id == sa.bindparam("user_id")
)


async def get_document(conn: Conn, *, user_id: str, id: str) -> str | None:
    """The stored record (JSON text) of a connection of this account, of any kind, or None."""
    if not ids.is_numeric_id(id):
        return None
    document: str | None = await first_value(conn, _DOCUMENT, {"id": id, "user_id": user_id})
    return document
