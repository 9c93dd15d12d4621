"""/v2/fqdns"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from trunkline.http import envelope
from trunkline.http.deps import Body, Caller, Db, page_of
from trunkline.http.openapi import request_body
from trunkline.http.params import FilterText
from trunkline.resources import fqdns
from trunkline.store.paging import Page

router = APIRouter(prefix="/fqdns", tags=["FQDNs"])
One = {"model": envelope.Data[fqdns.Fqdn]}


@router.get("", summary="List FQDNs", responses={200: {"model": envelope.DataPage[fqdns.Fqdn]}})
async def list_fqdns(
    caller: Caller,
    db: Db,
    page: Annotated[Page, Depends(page_of(250))],
    connection_id: Annotated[FilterText | None, Query(alias="filter[connection_id]")] = None,
    fqdn: Annotated[FilterText | None, Query(alias="filter[fqdn]")] = None,
    port: Annotated[int | None, Query(alias="filter[port]", ge=1, le=65535)] = None,
    dns_record_type: Annotated[fqdns.DnsRecordType | None, Query(alias="filter[dns_record_type]")] = None,
) -> envelope.JsonBytes:
    filters = {"connection_id": connection_id, "fqdn": fqdn, "port": port, "dns_record_type": dns_record_type}
    records, result = await fqdns.list_(db, caller.user_id, page, filters)
    return envelope.page(records, result)


@router.post(
    "",
    summary="Create an FQDN",
    status_code=201,
    responses={201: One},
    openapi_extra=request_body(fqdns.FqdnCreate),
)
async def create_fqdn(caller: Caller, db: Db, body: Body) -> envelope.JsonBytes:
    return envelope.data(await fqdns.create(db, caller.user_id, body), status=201)


@router.get("/{id}", summary="Retrieve an FQDN", responses={200: One})
async def retrieve_fqdn(caller: Caller, db: Db, id: str) -> envelope.JsonBytes:
    return envelope.data(await fqdns.get(db, caller.user_id, id))


@router.patch(
    "/{id}",
    summary="Update an FQDN",
    responses={200: One},
    openapi_extra=request_body(fqdns.FqdnUpdate, required=False),
)
async def update_fqdn(caller: Caller, db: Db, id: str, body: Body) -> envelope.JsonBytes:
    return envelope.data(await fqdns.update(db, caller.user_id, id, body))


@router.delete("/{id}", summary="Delete an FQDN", responses={200: One})
async def delete_fqdn(caller: Caller, db: Db, id: str) -> envelope.JsonBytes:
    return envelope.data(await fqdns.delete(db, caller.user_id, id))
