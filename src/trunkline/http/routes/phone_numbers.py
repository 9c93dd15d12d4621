"""/v2/phone_numbers: the account's numbers, as the operator added them (resources/phone_numbers.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from trunkline.http import envelope
from trunkline.http.deps import Body, Caller, Db, page_of
from trunkline.http.openapi import request_body
from trunkline.http.params import FilterText
from trunkline.resources import phone_numbers
from trunkline.store.paging import Page

router = APIRouter(prefix="/phone_numbers", tags=["Phone Numbers"])
One = {"model": envelope.Data[phone_numbers.PhoneNumber]}

Text = FilterText | None
NAME = phone_numbers.VOICE_NAME
THREE = " At least three characters, case-insensitive."
UNSUPPORTED = "; ".join(f"{name} ({why})" for name, why in phone_numbers.NOT_SUPPORTED.items())


async def number_filters(
    phone_number: Annotated[
        Text,
        Query(
            alias="filter[phone_number]",
            description="Three or more digits, matched anywhere in the number (no '+').",
        ),
    ] = None,
    connection_id: Annotated[Text, Query(alias="filter[connection_id]")] = None,
    tag: Annotated[Text, Query(alias="filter[tag]", description="Numbers with this tag, exactly.")] = None,
    without_tags: Annotated[
        Text, Query(alias="filter[without_tags]", description="'true': numbers without tags; else ignored.")
    ] = None,
    status: Annotated[Text, Query(alias="filter[status]", description="Numbers here are active.")] = None,
    country_iso_alpha2: Annotated[
        list[FilterText] | None,
        Query(alias="filter[country_iso_alpha2]", description="ISO 3166-1 alpha-2 codes, comma-separated."),
    ] = None,
    number_type: Annotated[
        Text, Query(alias="filter[number_type][eq]", description=", ".join(phone_numbers.NUMBER_TYPES))
    ] = None,
    customer_reference: Annotated[Text, Query(alias="filter[customer_reference]")] = None,
    billing_group_id: Annotated[
        Text, Query(alias="filter[billing_group_id]", description="'null': numbers without one.")
    ] = None,
    name_eq: Annotated[
        Text, Query(alias=f"{NAME}[eq]", description="The connection's name, exactly.")
    ] = None,
    name_contains: Annotated[Text, Query(alias=f"{NAME}[contains]", description=THREE.strip())] = None,
    name_starts_with: Annotated[Text, Query(alias=f"{NAME}[starts_with]", description=THREE.strip())] = None,
    name_ends_with: Annotated[Text, Query(alias=f"{NAME}[ends_with]", description=THREE.strip())] = None,
) -> dict[str, str | list[str]]:
    """The filter values given, by parameter name."""
    given: dict[str, str | list[str] | None] = {
        "filter[phone_number]": phone_number,
        "filter[connection_id]": connection_id,
        "filter[tag]": tag,
        "filter[without_tags]": without_tags,
        "filter[status]": status,
        "filter[country_iso_alpha2]": country_iso_alpha2,
        "filter[number_type][eq]": number_type,
        "filter[customer_reference]": customer_reference,
        "filter[billing_group_id]": billing_group_id,
        f"{NAME}[eq]": name_eq,
        f"{NAME}[contains]": name_contains,
        f"{NAME}[starts_with]": name_starts_with,
        f"{NAME}[ends_with]": name_ends_with,
    }
    return {name: value for name, value in given.items() if value is not None}


@router.get(
    "",
    summary="List phone numbers",
    description="The account's numbers, newest first unless sorted. Telnyx filters not supported here,"
    f" each answered with 400: {UNSUPPORTED}.",
    responses={200: {"model": envelope.DataPage[phone_numbers.PhoneNumber]}},
)
async def list_phone_numbers(
    *,
    caller: Caller,
    db: Db,
    request: Request,
    page: Annotated[Page, Depends(page_of(20))],
    filters: Annotated[dict[str, str | list[str]], Depends(number_filters)],
    sort: Annotated[
        Literal["purchased_at", "phone_number", "connection_name", "usage_payment_method"] | None,
        Query(description="Ascending. usage_payment_method is not supported here (422)."),
    ] = None,
    handle_messaging_profile_error: Annotated[
        Literal["true", "false"] | None,
        Query(description="Accepted; numbers here have no messaging profile to fail loading."),
    ] = None,
) -> envelope.JsonBytes:
    records, result = await phone_numbers.list_(
        db, caller.user_id, page, filters=filters, names=request.query_params.keys(), sort=sort
    )
    return envelope.page(records, result)


@router.get("/{id}", summary="Retrieve a phone number", responses={200: One})
async def retrieve_phone_number(caller: Caller, db: Db, id: str) -> envelope.JsonBytes:
    return envelope.data(await phone_numbers.get(db, caller.user_id, id))


@router.patch(
    "/{id}",
    summary="Update a phone number",
    responses={200: One},
    openapi_extra=request_body(phone_numbers.PhoneNumberUpdate),
)
async def update_phone_number(caller: Caller, db: Db, id: str, body: Body) -> envelope.JsonBytes:
    return envelope.data(await phone_numbers.update(db, caller.user_id, id, body))


@router.delete("/{id}", summary="Delete a phone number", responses={200: One})
async def delete_phone_number(caller: Caller, db: Db, id: str) -> envelope.JsonBytes:
    return envelope.data(await phone_numbers.delete(db, caller.user_id, id))
