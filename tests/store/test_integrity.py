"""A uniqueness race that only the database catches still answers 422 with the field's pointer."""

from __future__ import annotations

import asyncio

import pytest

from trunkline.errors import DuplicateResource, ResourceInUse
from trunkline.store import connections, ids, outbound_voice_profiles
from trunkline.store.db import Database


def _insert(database_url: str, user_name: str) -> None:
    async def go() -> None:
        db = Database(database_url)
        try:
            async with db.transaction(write=True) as conn:
                stamp = ids.now()
                await connections.insert(
                    conn,
                    id=ids.numeric_id(),
                    user_id="race",
                    kind="credential",
                    connection_name="r",
                    active=True,
                    user_name=user_name,
                    user_name_key=user_name.lower(),
                    document="{}",
                    created_at=stamp,
                    updated_at=stamp,
                )
        finally:
            await db.dispose()

    asyncio.run(go())


def test_duplicate_user_name_from_the_database_points_at_user_name(database_url: str) -> None:
    name = f"race{ids.numeric_id()[-8:]}"
    _insert(database_url, name)
    with pytest.raises(DuplicateResource) as err:
        _insert(database_url, name.upper())
    assert err.value.pointer == "/user_name"
    assert err.value.code == "10012"


def test_deleting_a_profile_the_database_still_sees_referenced_is_in_use(database_url: str) -> None:
    """The net under the resources' own count: a RESTRICT foreign key failing a DELETE is 10015."""

    async def go() -> None:
        db = Database(database_url)
        try:
            async with db.transaction(write=True) as conn:
                stamp, profile_id = ids.now(), ids.numeric_id()
                await outbound_voice_profiles.insert(
                    conn,
                    id=profile_id,
                    user_id="race",
                    name="held",
                    enabled=True,
                    traffic_type="conversational",
                    service_plan="global",
                    usage_payment_method="rate-deck",
                    concurrent_call_limit=None,
                    document="{}",
                    created_at=stamp,
                    updated_at=stamp,
                )
                await connections.insert(
                    conn,
                    id=ids.numeric_id(),
                    user_id="race",
                    kind="ip",
                    active=True,
                    outbound_voice_profile_id=profile_id,
                    document="{}",
                    created_at=stamp,
                    updated_at=stamp,
                )
            with pytest.raises(ResourceInUse):
                async with db.transaction(write=True) as conn:
                    await outbound_voice_profiles.delete(conn, id=profile_id)
        finally:
            await db.dispose()

    asyncio.run(go())
