"""Outbound voice profiles: the limits and destinations that outbound calls of linked connections obey.

Fields, enums and defaults: Telnyx's spec and SDK
(https://developers.telnyx.com/api-reference/outbound-voice-profiles/create-an-outbound-voice-profile).
The record is kept as a JSON document beside the columns lists sort on; `connections_count` is never
stored, it is counted on read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import ConfigDict, Field
from sqlalchemy.engine import RowMapping

from trunkline.errors import ResourceInUse, ResourceNotFound
from trunkline.resources._base import Tags, TelnyxModel, deep_merge, partial_model, validate
from trunkline.resources.connections.models import Uuid
from trunkline.store import connections as store_connections
from trunkline.store import ids
from trunkline.store import outbound_voice_profiles as store
from trunkline.store.db import Conn
from trunkline.store.locks import Lock
from trunkline.store.paging import Page, PageResult

RECORD_TYPE: Final = "outbound_voice_profile"
DEFAULT_DESTINATIONS = ["US", "CA"]

# SPEC: minLength 3. The column holds 255 characters, and PostgreSQL text cannot hold a NUL.
ProfileName = Annotated[str, Field(min_length=3, max_length=255, pattern=r"^[^\x00]*$")]
# "formatted in alpha2" (SDK): the ISO 3166-1 shape; the registry itself changes and is not checked.
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
# USD as a decimal string (SPEC example "100.00"), so amounts never pass through a float.
Usd = Annotated[str, Field(pattern=r"^[0-9]{1,10}(\.[0-9]{1,2})?$")]
E164 = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{1,14}$")]
# SPEC declares `format: time`, its prose says HH:MM and its examples read "08:00:00.00Z": accept all
# three spellings of a UTC time of day.
TimeOfDay = Annotated[
    str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]00:00)?$")
]
# Null means no limit, so 0 is refused (`enabled: false` is how to block calls); the upper bound keeps
# the value inside the integer column on every engine.
CallLimit = Annotated[int, Field(ge=1, le=100_000)]


class CallRecording(TelnyxModel):
    # Telnyx's spec gives the type no default; an unset type records nothing (trunkline's reading).
    call_recording_type: Literal["all", "none", "by_caller_phone_number"] = "none"
    call_recording_caller_phone_numbers: list[E164] = Field(default_factory=list, max_length=100)
    call_recording_channels: Literal["single", "dual"] = "single"
    call_recording_format: Literal["wav", "mp3"] = "wav"


class CallingWindow(TelnyxModel):
    start_time: TimeOfDay | None = None
    end_time: TimeOfDay | None = None
    calls_per_cld: int | None = Field(None, ge=0, le=1_000_000)


class OutboundVoiceProfileCreate(TelnyxModel):
    name: ProfileName
    enabled: bool = True
    traffic_type: Literal["conversational"] = "conversational"
    service_plan: Literal["global"] = "global"
    usage_payment_method: Literal["rate-deck"] = "rate-deck"
    concurrent_call_limit: CallLimit | None = None
    daily_spend_limit: Usd | None = None
    daily_spend_limit_enabled: bool = False
    max_destination_rate: float | None = Field(None, ge=0, allow_inf_nan=False)
    whitelisted_destinations: list[CountryCode] = Field(
        default_factory=lambda: list(DEFAULT_DESTINATIONS), max_length=300
    )
    billing_group_id: Uuid | None = None
    tags: Tags = Field(default_factory=list)
    call_recording: CallRecording = Field(default_factory=CallRecording)
    calling_window: CallingWindow | None = None


class OutboundVoiceProfileUpdate(partial_model(OutboundVoiceProfileCreate)):  # type: ignore[misc]
    """PATCH body: nested objects merge; `name` stays required, as in Telnyx's spec and SDK."""

    name: ProfileName


class OutboundVoiceProfile(OutboundVoiceProfileCreate):
    """The record, for our OpenAPI document (responses are built from the stored document)."""

    model_config = ConfigDict(strict=False, extra="allow")

    id: str
    record_type: Literal["outbound_voice_profile"] = RECORD_TYPE
    connections_count: int
    created_at: str
    updated_at: str


async def get(conn: Conn, user_id: str, id: str) -> dict[str, Any]:
    # The hot path: the document and its count in one statement built once
    # (store/outbound_voice_profiles.py, `get_document`), the record as `_records` makes it.
    found = await store.get_document(conn, user_id=user_id, id=id)
    if found is None:
        raise ResourceNotFound(f"Outbound voice profile {id} not found.")
    document, count = found
    return {**orjson.loads(document), "connections_count": count}


async def list_(
    conn: Conn, user_id: str, page: Page, *, name_contains: str | None, sort: str
) -> tuple[list[dict[str, Any]], PageResult]:
    result = await store.list_(conn, user_id=user_id, page=page, name_contains=name_contains, sort=sort)
    return await _records(conn, result.rows), result


async def create(conn: Conn, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
    settings = validate(OutboundVoiceProfileCreate, body).model_dump(mode="json")
    stamp = ids.now()
    record = {"id": ids.numeric_id(), "record_type": RECORD_TYPE, **settings}
    record.update(created_at=stamp, updated_at=stamp)
    await store.insert(conn, id=record["id"], user_id=user_id, created_at=stamp, **columns(record))
    return {**record, "connections_count": 0}


async def update(conn: Conn, user_id: str, id: str, body: dict[str, Any]) -> dict[str, Any]:
    row = await _get_row(conn, user_id, id, lock=Lock.UPDATE)
    patch = validate(OutboundVoiceProfileUpdate, body).model_dump(mode="json", exclude_unset=True)
    stored = orjson.loads(row["document"])
    # The merged profile is validated whole, so defaults fill nested objects the PATCH created.
    settings = validate(OutboundVoiceProfileCreate, deep_merge(stored, patch)).model_dump(mode="json")
    record = {**stored, **settings, "updated_at": ids.now()}
    await store.update(conn, id=id, **columns(record))
    return {**record, "connections_count": await _count(conn, id)}


async def delete(conn: Conn, user_id: str, id: str) -> dict[str, Any]:
    """Delete a profile no connection uses; refused (422 `10015`) while any does.

    The lock makes the count hold until the delete: a connection that is being pointed at this profile
    holds a REFERENCE lock on it (store/locks.py), so one of the two waits for the other to commit.
    """
    row = await _get_row(conn, user_id, id, lock=Lock.DELETE)
    count = await _count(conn, id)
    if count:
        noun = "connection uses" if count == 1 else "connections use"
        raise ResourceInUse(
            f"Outbound voice profile {id} cannot be deleted: {count} {noun} it."
            " Point them at another profile (outbound.outbound_voice_profile_id) first."
        )
    if not await store.delete(conn, id=id):
        raise ResourceNotFound(f"Outbound voice profile {id} not found.")
    return {**orjson.loads(row["document"]), "connections_count": 0}


async def _get_row(conn: Conn, user_id: str, id: str, *, lock: Lock | None = None) -> RowMapping:
    # Our ids are digits (store/ids.py); anything else names nothing, and PostgreSQL refuses a NUL.
    row = await store.get(conn, user_id=user_id, id=id, lock=lock)
    if row is None:
        raise ResourceNotFound(f"Outbound voice profile {id} not found.")
    return row


async def _count(conn: Conn, id: str) -> int:
    return (await store_connections.count_by_profile(conn, profile_ids=[id])).get(id, 0)


async def _records(conn: Conn, rows: Sequence[RowMapping]) -> list[dict[str, Any]]:
    """Stored documents with `connections_count`, counted for the whole page in one query.

    The count needs no account filter: a connection may only reference a profile of its own account.
    """
    counts = await store_connections.count_by_profile(conn, profile_ids=[r["id"] for r in rows])
    return [{**orjson.loads(r["document"]), "connections_count": counts.get(r["id"], 0)} for r in rows]


def columns(record: dict[str, Any]) -> dict[str, Any]:
    """What lists filter and sort on, beside the document."""
    return {
        "name": record["name"],
        "enabled": record["enabled"],
        "traffic_type": record["traffic_type"],
        "service_plan": record["service_plan"],
        "usage_payment_method": record["usage_payment_method"],
        "concurrent_call_limit": record["concurrent_call_limit"],
        "document": orjson.dumps(record).decode(),
        "updated_at": record["updated_at"],
    }
