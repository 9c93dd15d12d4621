"""API keys: minted at random, shown once, kept only as a digest; each belongs to one account."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import RowMapping

from trunkline.errors import ResourceNotFound
from trunkline.store import api_keys as store
from trunkline.store import ids
from trunkline.store.db import Conn

PREFIX = "KEY"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: the account (`user_id`) and what the key may do."""

    key_id: str
    user_id: str
    read_only: bool


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    user_id: str
    read_only: bool
    secret: str  # the whole key; it exists only in this object and on the user's screen


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    """The id part of a key (`KEY<hex>_<secret>`), or None when it is not shaped like ours."""
    key_id, sep, secret = key.partition("_")
    if not sep or not secret or not key_id.startswith(PREFIX) or len(key_id) > 32:
        return None
    return key_id


async def create(
    conn: Conn, *, user_id: str, read_only: bool = False, description: str | None = None
) -> NewKey:
    key_id = PREFIX + secrets.token_hex(10).upper()
    secret = f"{key_id}_{secrets.token_urlsafe(32)}"
    await store.insert(
        conn,
        id=key_id,
        user_id=user_id,
        secret_hash=digest(secret),
        read_only=read_only,
        description=description,
        created_at=ids.now(),
    )
    return NewKey(key_id=key_id, user_id=user_id, read_only=read_only, secret=secret)


async def authenticate(conn: Conn, key: str) -> Principal | None:
    """The principal of a live key, or None. The digest comparison is constant-time."""
    key_id = key_id_of(key)
    if key_id is None:
        return None
    row = await store.get(conn, id=key_id)
    if row is None or row["revoked_at"] is not None:
        return None
    if not hmac.compare_digest(row["secret_hash"], digest(key)):
        return None
    return Principal(key_id=row["id"], user_id=row["user_id"], read_only=row["read_only"])


async def list_(conn: Conn, *, user_id: str | None = None) -> Sequence[RowMapping]:
    return await store.list_(conn, user_id=user_id)


async def revoke(conn: Conn, key_id: str) -> None:
    if not await store.revoke(conn, id=key_id, at=ids.now()):
        raise ResourceNotFound(f"No live API key with id {key_id}.")


async def any_exist(conn: Conn) -> bool:
    return await store.count(conn) > 0
