"""/v2/access_ip_ranges: create and delete answer the bare object, lists the usual page
(https://developers.telnyx.com/api-reference/ip-ranges/create-new-access-ip-range)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request

from trunkline.http import envelope
from trunkline.http.deps import Body, Caller, Db, page_of
from trunkline.http.gate import AccessGate
from trunkline.http.openapi import request_body
from trunkline.http.params import FilterText
from trunkline.resources import access_ip_ranges
from trunkline.resources.access_ip_ranges import AccessIpRange, AccessIpRangeCreate, Filters
from trunkline.store.paging import Page

router = APIRouter(prefix="/access_ip_ranges", tags=["Access IP ranges"])
One = {"model": AccessIpRange}


def range_filters(
    cidr: Annotated[
        FilterText | None, Query(alias="filter[cidr_block]", description="Exact CIDR block.")
    ] = None,
    startswith: Annotated[FilterText | None, Query(alias="filter[cidr_block][startswith]")] = None,
    endswith: Annotated[FilterText | None, Query(alias="filter[cidr_block][endswith]")] = None,
    contains: Annotated[FilterText | None, Query(alias="filter[cidr_block][contains]")] = None,
    created: Annotated[
        FilterText | None,
        Query(alias="filter[created_at]", description="ISO-8601; equal at the precision given."),
    ] = None,
    gt: Annotated[FilterText | None, Query(alias="filter[created_at][gt]")] = None,
    gte: Annotated[FilterText | None, Query(alias="filter[created_at][gte]")] = None,
    lt: Annotated[FilterText | None, Query(alias="filter[created_at][lt]")] = None,
    lte: Annotated[FilterText | None, Query(alias="filter[created_at][lte]")] = None,
) -> Filters:
    return access_ip_ranges.filters(
        {"eq": cidr, "startswith": startswith, "endswith": endswith, "contains": contains},
        {"eq": created, "gt": gt, "gte": gte, "lt": lt, "lte": lte},
    )


def get_gate(request: Request) -> AccessGate:
    gate: AccessGate = request.app.state.front_door.gate
    return gate


Gate = Annotated[AccessGate, Depends(get_gate)]


@router.get("", summary="List access IP ranges", responses={200: {"model": envelope.DataPage[AccessIpRange]}})
async def list_ranges(
    caller: Caller,
    db: Db,
    page: Annotated[Page, Depends(page_of(20))],
    filters: Annotated[Filters, Depends(range_filters)],
) -> envelope.JsonBytes:
    records, result = await access_ip_ranges.list_(db, caller.user_id, page, filters)
    return envelope.page(records, result)


@router.post(
    "",
    summary="Create an access IP range",
    responses={200: One},
    openapi_extra=request_body(AccessIpRangeCreate),
)
async def create_range(
    caller: Caller, db: Db, body: Body, gate: Gate, after: BackgroundTasks
) -> envelope.JsonBytes:
    record = await access_ip_ranges.create(db, caller.user_id, body)
    # Background tasks run after the response, so after the commit: the gate loads the range at once.
    after.add_task(gate.changed)
    return envelope.bare(record)


@router.delete("/{access_ip_range_id}", summary="Delete an access IP range", responses={200: One})
async def delete_range(
    caller: Caller, db: Db, access_ip_range_id: str, gate: Gate, after: BackgroundTasks
) -> envelope.JsonBytes:
    record = await access_ip_ranges.delete(db, caller.user_id, access_ip_range_id)
    after.add_task(gate.changed)
    return envelope.bare(record)
