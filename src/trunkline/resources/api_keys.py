"""API keys: minted at random, shown once, kept only as a digest; each belongs to one account."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import RowMapping

from trunkline.errors import InvalidParameter, ResourceNotFound
from trunkline.store import api_keys as store
from trunkline.store import ids
from trunkline.store.db import Conn

PREFIX = "KEY"
# A key given by its owner (`serve --api-key`, TRUNKLINE_BOOTSTRAP_KEY): a bearer token must survive an
# Authorization header and a shell unquoted, so printable ASCII without spaces (RFC 6750, b64token is
# narrower still; this is what the header parser here accepts after strip()).
GIVEN_KEY_MIN, GIVEN_KEY_MAX = 20, 200


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


def derived_key_id(key: str) -> str:
    """The id under which a given key that is not shaped like ours is stored: the same key always
    maps to the same id, so creating it again finds it. Ids of minted keys have the same shape
    (`KEY` + 20 upper-case hex digits); the hash is domain-separated from the stored digest."""
    return PREFIX + hashlib.sha256(b"trunkline key id\0" + key.encode()).hexdigest()[:20].upper()


def id_for(key: str) -> str:
    """The id a key is stored under: its own id part when shaped like ours, else `derived_key_id`."""
    return key_id_of(key) or derived_key_id(key)


def check_given_key(key: str) -> None:
    """Raise InvalidParameter unless `key` may be used as an API key chosen by its owner."""
    if not GIVEN_KEY_MIN <= len(key) <= GIVEN_KEY_MAX:
        raise InvalidParameter(
            f"An API key must be {GIVEN_KEY_MIN} to {GIVEN_KEY_MAX} characters long; this one has"
            f" {len(key)}. Choose a longer random one, e.g. `python -c 'import secrets;"
            " print(secrets.token_urlsafe(32))'`."
        )
    bad = sorted({c for c in key if not "!" <= c <= "~"})
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5])
        raise InvalidParameter(
            f"An API key may hold only printable ASCII characters without spaces; this one holds {shown}."
        )


async def create_given(
    conn: Conn, *, key: str, user_id: str, read_only: bool = False, description: str | None = None
) -> NewKey:
    """Store a key chosen by its owner (only its digest, as for minted keys); idempotent: the same key
    for the same account and mode is found, not duplicated. Refused when malformed, or when its id is
    taken by another key, another account's or a revoked one."""
    check_given_key(key)
    key_id = id_for(key)
    row = await store.get(conn, id=key_id)
    if row is None:
        return await _insert(conn, key_id, key, user_id=user_id, read_only=read_only, description=description)
    if not hmac.compare_digest(row["secret_hash"], digest(key)):
        raise InvalidParameter(f"Another API key already has the id {key_id}; choose another key.")
    if row["revoked_at"] is not None:
        raise InvalidParameter(f"This API key ({key_id}) was revoked; choose another key.")
    if row["user_id"] != user_id or bool(row["read_only"]) != read_only:
        mode = "read-only" if row["read_only"] else "read-write"
        raise InvalidParameter(
            f"This API key ({key_id}) already exists as a {mode} key of account {row['user_id']}; use that"
            " account, or choose another key."
        )
    return NewKey(key_id=key_id, user_id=user_id, read_only=read_only, secret=key)


async def create(
    conn: Conn, *, user_id: str, read_only: bool = False, description: str | None = None
) -> NewKey:
    key_id = PREFIX + secrets.token_hex(10).upper()
    secret = f"{key_id}_{secrets.token_urlsafe(32)}"
    return await _insert(conn, key_id, secret, user_id=user_id, read_only=read_only, description=description)


async def _insert(
    conn: Conn, key_id: str, secret: str, *, user_id: str, read_only: bool, description: str | None
) -> NewKey:
    """Store a key as its digest; the secret itself stays in the returned object only."""
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
    if len(key) > GIVEN_KEY_MAX:
        return None
    row = await store.get(conn, id=id_for(key))
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
