"""/v2/ips"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from trunkline.http import envelope
from trunkline.http.deps import Body, Caller, Db, page_of
from trunkline.http.openapi import request_body
from trunkline.http.params import FilterText
from trunkline.resources import ips
from trunkline.store.paging import Page

router = APIRouter(prefix="/ips", tags=["IPs"])
Responses = {"model": envelope.Data[ips.Ip]}


@router.get("", summary="List IPs", responses={200: {"model": envelope.DataPage[ips.Ip]}})
async def list_ips(
    caller: Caller,
    db: Db,
    page: Annotated[Page, Depends(page_of(250))],
    connection_id: Annotated[FilterText | None, Query(alias="filter[connection_id]")] = None,
    ip_address: Annotated[FilterText | None, Query(alias="filter[ip_address]")] = None,
    port: Annotated[int | None, Query(alias="filter[port]", ge=1, le=65535)] = None,
) -> envelope.JsonBytes:
    filters = {"connection_id": connection_id, "ip_address": ip_address, "port": port}
    records, result = await ips.list_(db, caller.user_id, page, filters)
    return envelope.page(records, result)


@router.post(
    "",
    summary="Create an IP",
    status_code=201,
    responses={201: Responses},
    openapi_extra=request_body(ips.IpCreate),
)
async def create_ip(caller: Caller, db: Db, body: Body) -> envelope.JsonBytes:
    return envelope.data(await ips.create(db, caller.user_id, body), status=201)


@router.get("/{id}", summary="Retrieve an IP", responses={200: Responses})
async def retrieve_ip(caller: Caller, db: Db, id: str) -> envelope.JsonBytes:
    return envelope.data(await ips.get(db, caller.user_id, id))


@router.patch(
    "/{id}", summary="Update an IP", responses={200: Responses}, openapi_extra=request_body(ips.IpUpdate)
)
async def update_ip(caller: Caller, db: Db, id: str, body: Body) -> envelope.JsonBytes:
    return envelope.data(await ips.update(db, caller.user_id, id, body))


@router.delete("/{id}", summary="Delete an IP", responses={200: Responses})
async def delete_ip(caller: Caller, db: Db, id: str) -> envelope.JsonBytes:
    return envelope.data(await ips.delete(db, caller.user_id, id))
