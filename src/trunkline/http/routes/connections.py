"""/v2/connections and the three typed connection resources, served from one spec table."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from trunkline.errors import InvalidParameter
from trunkline.http import envelope
from trunkline.http.deps import AppSettings, Body, Caller, Db, marks_read, page_of
from trunkline.http.openapi import request_body
from trunkline.http.params import FilterText
from trunkline.resources import connections, registrations
from trunkline.resources.connections import KindSpec
from trunkline.resources.connections.records import RECORDS, Connection
from trunkline.store.paging import Page

Sort = Literal["created_at", "-created_at", "connection_name", "-connection_name", "active", "-active"]
ListPage = Annotated[Page, Depends(page_of(250))]


async def connection_filters(
    name_contains: Annotated[
        FilterText | None,
        Query(
            alias="filter[connection_name][contains]",
            description="Case-insensitive substring, 3+ characters.",
        ),
    ] = None,
    fqdn: Annotated[FilterText | None, Query(alias="filter[fqdn]")] = None,
    profile_id: Annotated[FilterText | None, Query(alias="filter[outbound_voice_profile_id]")] = None,
    # The older spelling Telnyx still documents
    # (https://developers.telnyx.com/api-reference/connections/list-connections).
    profile_id_dotted: Annotated[
        FilterText | None,
        Query(alias="filter[outbound.outbound_voice_profile_id]", include_in_schema=False),
    ] = None,
) -> dict[str, Any]:
    if name_contains is not None and len(name_contains) < 3:
        raise InvalidParameter(
            "filter[connection_name][contains] needs at least 3 characters.",
            pointer="/filter/connection_name/contains",
            parameter="filter[connection_name][contains]",
        )
    return {
        "connection_name_contains": name_contains,
        "fqdn": fqdn,
        "outbound_voice_profile_id": profile_id if profile_id is not None else profile_id_dotted,
    }


Filters = Annotated[dict[str, Any], Depends(connection_filters)]
SortParam = Annotated[Sort | None, Query(description="Sort key; prefix '-' for descending.")]


def _enveloped(generic: Any, record: type[BaseModel]) -> Any:
    """`generic[record]`, parametrised at run time (a type checker reads a subscript as a type)."""
    return generic[record]


def make_router(spec: KindSpec) -> APIRouter:
    """The five routes of one connection kind."""
    router = APIRouter(prefix=f"/{spec.path}", tags=[f"{spec.title}s"])
    one = {"model": _enveloped(envelope.Data, RECORDS[spec.kind])}
    many = {"model": _enveloped(envelope.DataPage, RECORDS[spec.kind])}
    noun = spec.title.lower()

    @router.get("", summary=f"List {noun}s", responses={200: many}, operation_id=f"list_{spec.path}")
    async def list_(
        caller: Caller, db: Db, page: ListPage, filters: Filters, sort: SortParam = None
    ) -> envelope.JsonBytes:
        docs, result = await connections.list_documents(
            db, caller.user_id, spec, page, filters, sort or "-created_at"
        )
        return envelope.page_raw(docs, result)

    @router.post(
        "",
        summary=f"Create a {noun}",
        status_code=201,
        responses={201: one},
        operation_id=f"create_{spec.path}",
        openapi_extra=request_body(spec.create),
    )
    async def create(caller: Caller, db: Db, body: Body, settings: AppSettings) -> envelope.JsonBytes:
        record = await connections.create(db, caller.user_id, spec, body, realm=settings.sip_realm)
        return envelope.data(record, status=201)

    @router.get(
        "/{id}", summary=f"Retrieve a {noun}", responses={200: one}, operation_id=f"retrieve_{spec.path}"
    )
    async def retrieve(caller: Caller, db: Db, id: str) -> envelope.JsonBytes:
        return envelope.data_raw(await connections.get_document(db, caller.user_id, spec, id))

    @router.patch(
        "/{id}",
        summary=f"Update a {noun}",
        responses={200: one},
        operation_id=f"update_{spec.path}",
        openapi_extra=request_body(spec.update, required=False),
    )
    async def update(
        caller: Caller, db: Db, id: str, body: Body, settings: AppSettings
    ) -> envelope.JsonBytes:
        return envelope.data(
            await connections.update(db, caller.user_id, spec, id, body, realm=settings.sip_realm)
        )

    @router.delete(
        "/{id}", summary=f"Delete a {noun}", responses={200: one}, operation_id=f"delete_{spec.path}"
    )
    async def delete(caller: Caller, db: Db, id: str) -> envelope.JsonBytes:
        return envelope.data(await connections.delete(db, caller.user_id, spec, id))

    return router


credential_router = make_router(connections.CREDENTIAL)
fqdn_router = make_router(connections.FQDN)
ip_router = make_router(connections.IP)


@credential_router.post(
    "/{id}/actions/check_registration_status",
    summary="Check a credential connection's registration status",
    dependencies=[Depends(marks_read)],
    responses={200: {"model": envelope.Data[registrations.RegistrationStatus]}},
)
async def check_registration_status(caller: Caller, db: Db, id: str, request: Request) -> envelope.JsonBytes:
    edge = request.app.state.edge_view
    return envelope.data(await registrations.check(db, caller.user_id, id, edge))


any_router = APIRouter(prefix="/connections", tags=["Connections"])


@any_router.get(
    "", summary="List connections of every kind", responses={200: {"model": envelope.DataPage[Connection]}}
)
async def list_connections(
    caller: Caller, db: Db, page: ListPage, filters: Filters, sort: SortParam = None
) -> envelope.JsonBytes:
    docs, result = await connections.list_documents(
        db, caller.user_id, None, page, filters, sort or "-created_at"
    )
    return envelope.page([connections.slim(d) for d in docs], result)


@any_router.get(
    "/{id}",
    summary="Retrieve a connection of any kind",
    responses={200: {"model": envelope.Data[Connection]}},
)
async def retrieve_connection(caller: Caller, db: Db, id: str) -> envelope.JsonBytes:
    return envelope.data(await connections.get_slim(db, caller.user_id, id))


routers = [any_router, credential_router, fqdn_router, ip_router]
