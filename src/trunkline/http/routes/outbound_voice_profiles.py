"""/v2/outbound_voice_profiles"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from trunkline.http import envelope
from trunkline.http.deps import Body, Caller, Db, page_of
from trunkline.http.openapi import request_body
from trunkline.http.params import FilterText
from trunkline.resources import outbound_voice_profiles as profiles
from trunkline.store.paging import Page

# The twelve values Telnyx's spec and SDK list; anything else is a 422 "Invalid sorting value"
# (https://developers.telnyx.com/api-reference/outbound-voice-profiles/get-all-outbound-voice-profiles).
Sort = Literal[
    "enabled",
    "-enabled",
    "created_at",
    "-created_at",
    "name",
    "-name",
    "service_plan",
    "-service_plan",
    "traffic_type",
    "-traffic_type",
    "usage_payment_method",
    "-usage_payment_method",
]

router = APIRouter(prefix="/outbound_voice_profiles", tags=["Outbound voice profiles"])
One = {"model": envelope.Data[profiles.OutboundVoiceProfile]}


@router.get(
    "",
    summary="List outbound voice profiles",
    responses={200: {"model": envelope.DataPage[profiles.OutboundVoiceProfile]}},
)
async def list_outbound_voice_profiles(
    caller: Caller,
    db: Db,
    page: Annotated[Page, Depends(page_of(20))],
    name_contains: Annotated[
        FilterText | None,
        Query(alias="filter[name][contains]", description="Case-insensitive substring."),
    ] = None,
    sort: Annotated[Sort, Query(description="Sort key; prefix '-' for descending.")] = "-created_at",
) -> envelope.JsonBytes:
    records, result = await profiles.list_(db, caller.user_id, page, name_contains=name_contains, sort=sort)
    return envelope.page(records, result)


# 200, not 201, as Telnyx's spec declares for this create
# (https://developers.telnyx.com/api-reference/outbound-voice-profiles/create-an-outbound-voice-profile).
@router.post(
    "",
    summary="Create an outbound voice profile",
    responses={200: One},
    openapi_extra=request_body(profiles.OutboundVoiceProfileCreate),
)
async def create_outbound_voice_profile(caller: Caller, db: Db, body: Body) -> envelope.JsonBytes:
    return envelope.data(await profiles.create(db, caller.user_id, body))


@router.get("/{id}", summary="Retrieve an outbound voice profile", responses={200: One})
async def retrieve_outbound_voice_profile(caller: Caller, db: Db, id: str) -> envelope.JsonBytes:
    return envelope.data(await profiles.get(db, caller.user_id, id))


@router.patch(
    "/{id}",
    summary="Update an outbound voice profile",
    responses={200: One},
    openapi_extra=request_body(profiles.OutboundVoiceProfileUpdate),
)
async def update_outbound_voice_profile(caller: Caller, db: Db, id: str, body: Body) -> envelope.JsonBytes:
    return envelope.data(await profiles.update(db, caller.user_id, id, body))


@router.delete("/{id}", summary="Delete an outbound voice profile", responses={200: One})
async def delete_outbound_voice_profile(caller: Caller, db: Db, id: str) -> envelope.JsonBytes:
    return envelope.data(await profiles.delete(db, caller.user_id, id))
